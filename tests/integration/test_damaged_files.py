"""A damaged file is named, never a bug: an old snapshot that cannot be read is skipped
with one warning by a whole sync; the run's own snapshot or the warehouse, damaged, is exit 2
with a sentence naming the file and the recovery step; `invsync warehouse rebuild` makes a
sync work again."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipeline import layout
from pipeline.snapshots import snapshot_files
from tests.integration.test_sync import SMALL_DEMO, run_ids

pytestmark = pytest.mark.slow

RECOVERY = "docs/operations.md#a-damaged-file"


def demo(home: Path) -> Path:
    (home / "invsync.toml").write_text(SMALL_DEMO + "time_scale = 400\n")
    return home / "data"


def synced(cli, times: int = 1) -> None:
    for _ in range(times):
        result = cli("sync", timeout=300)
        assert result.exit_code in (0, 3), result.output  # 3: the demo holds a few rows


def truncate(path: Path, keep: int = 100) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(keep)


def overwrite_middle(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 4)
        handle.write(b"\xa5" * (size // 2))


def test_a_truncated_old_snapshot_is_skipped_with_one_warning_and_the_sync_completes(
    cli, clean_environment: Path
) -> None:
    data = demo(clean_environment)
    synced(cli, 2)
    old = snapshot_files(data)[0]
    truncate(old)

    third = cli("sync", timeout=300)
    assert third.exit_code in (0, 3), third.output
    assert "bug" not in third.output
    warnings = [line for line in third.stderr.splitlines() if "Skipped the damaged" in line]
    assert len(warnings) == 1, third.stderr  # once per run, not once per reader
    assert str(old.relative_to(clean_environment)) in warnings[0] and RECOVERY in warnings[0]
    newest = run_ids(data)[-1]
    history = cli("history", _an_asin(data, newest))
    assert history.exit_code == 0, history.output
    assert re.search(r": 2 observations, 2 runs", history.stdout)  # the damaged run left out


def _an_asin(data: Path, run_id: str) -> str:
    import polars as pl

    frame = pl.read_parquet(layout.snapshot_path(data, run_id))
    return str(frame.filter(pl.col("status") == "ok")["asin"][0])


@pytest.mark.parametrize("damage", [truncate, overwrite_middle])
def test_a_damaged_run_snapshot_is_exit_2_naming_the_file(
    cli, clean_environment: Path, damage
) -> None:
    data = demo(clean_environment)
    fetched = cli("fetch", "--max-items", "200")
    assert fetched.exit_code == 0, fetched.output
    (own,) = snapshot_files(data)
    damage(own)
    result = cli("transform")
    assert result.exit_code == 2, result.output
    assert str(own.relative_to(clean_environment)) in result.stderr
    assert "invsync fetch" in result.stderr
    assert RECOVERY in result.stderr


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: truncate(p, p.stat().st_size // 2),
        overwrite_middle,
        lambda p: p.write_text("not a database\n"),
    ],
    ids=["truncated", "overwritten", "not-duckdb"],
)
def test_a_damaged_warehouse_is_exit_2_and_rebuild_makes_a_sync_work_again(
    cli, clean_environment: Path, damage
) -> None:
    data = demo(clean_environment)
    synced(cli)
    before = run_ids(data)
    path = data / "warehouse.duckdb"
    damage(path)

    sentence = f"The warehouse {path.relative_to(clean_environment)} is damaged"
    result = cli("sync", timeout=300)  # a sync reads every table: it meets the damage
    assert result.exit_code == 2, result.output
    assert sentence in result.stderr
    assert "invsync warehouse rebuild" in result.stderr and RECOVERY in result.stderr
    looked = cli("runs")  # reads one table: works, or names the damage if it meets it
    assert looked.exit_code == 0 or (looked.exit_code == 2 and sentence in looked.stderr), (
        looked.output
    )

    rebuilt = cli("warehouse", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    # the old file's write-ahead log, when the failed sync left one, moves aside beside it
    aside = [p for p in data.glob("warehouse.duckdb.damaged-*") if p.suffix != ".wal"]
    assert len(aside) == 1
    assert f"Moved the old warehouse to {aside[0].relative_to(clean_environment)}" in rebuilt.stdout
    assert "Lost with the old file" in rebuilt.stdout
    synced(cli)
    after = run_ids(data)
    assert after[: len(before)] == before and len(after) == len(before) + 1  # runs restored
    history = cli("history", _an_asin(data, after[-1]))
    assert history.exit_code == 0 and ": 2 observations, 2 runs" in history.stdout


def test_rebuild_refuses_a_warehouse_that_reads_whole(cli, clean_environment: Path) -> None:
    data = demo(clean_environment)
    synced(cli)
    kept = (data / "warehouse.duckdb").read_bytes()
    result = cli("warehouse", "rebuild")
    assert result.exit_code == 2, result.output
    assert "nothing to rebuild; add --force" in result.stderr
    assert (data / "warehouse.duckdb").read_bytes() == kept
    assert not list(data.glob("warehouse.duckdb.damaged-*"))
    shutil.rmtree(data / "exports")  # --force with no exports: a new, empty warehouse
    forced = cli("warehouse", "rebuild", "--force")
    assert forced.exit_code == 0, forced.output
    assert "Not restored: runs (no export)" in forced.stdout


def overwrite_all_but_the_first_block(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xa5" * (size - 8192))


@pytest.mark.parametrize(
    "damage",
    [overwrite_all_but_the_first_block, lambda p: p.write_text("not a database\n")],
    ids=["overwritten", "not-duckdb"],
)
def test_a_damaged_analysts_database_is_built_anew_by_the_next_sync(
    cli, clean_environment: Path, damage
) -> None:
    """analytics.duckdb holds only views: damaged, it is named and rebuilt, never blamed on
    the warehouse and never left stale in silence."""
    from pipeline import views

    data = demo(clean_environment)
    synced(cli)
    damage(data / views.ANALYTICS_NAME)
    second = cli("sync", timeout=300)
    assert second.exit_code in (0, 3), second.output
    assert "analysts' database data/analytics.duckdb was damaged" in second.stderr
    con = views.open_for_reading(data)
    try:
        runs = con.execute("select count(distinct run_id) from price_history").fetchall()[0][0]
    finally:
        con.close()
    assert runs == 2
