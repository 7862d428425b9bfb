"""A data directory whose path holds glob characters (`[`, `*`, `{`) is a name, not a
pattern: a whole sandbox sync there reads its own files and no other folder's, and a `?`,
under which DuckDB cannot keep a database, is refused with a sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline import views
from pipeline.snapshots import snapshot_files
from tests.integration.test_sync import SMALL_DEMO, run_ids

ODD = "x[1]*{a}"  # unescaped, DuckDB's glob reads x1/, x1-anything{a}/ … and never x[1]*{a}/


@pytest.mark.slow
def test_two_syncs_in_a_folder_named_like_a_glob_read_only_their_own_files(
    cli, clean_environment: Path
) -> None:
    home = clean_environment / ODD
    home.mkdir()
    (home / "invsync.toml").write_text(SMALL_DEMO + "time_scale = 400\n")
    first = cli("sync", cwd=home, timeout=300)
    assert first.exit_code in (0, 3), first.output  # 3: the demo holds a few rows
    data = home / "data"
    # a decoy that the unescaped pattern x[1]*{a} matches: the first snapshot once more
    (own,) = snapshot_files(data)
    decoy = clean_environment / "x1-decoy{a}" / own.relative_to(home)
    decoy.parent.mkdir(parents=True)
    shutil.copy(own, decoy)

    second = cli("sync", cwd=home, timeout=300)
    assert second.exit_code in (0, 3), second.output
    assert "bug" not in second.output
    files = snapshot_files(data)
    assert len(files) == 2
    frames = [pl.read_parquet(f, glob=False) for f in files]
    con = views.open_for_reading(data)
    try:
        rows, runs = con.execute(
            "select count(*), count(distinct run_id) from snapshots"
        ).fetchall()[0]
        diff_runs = {r[0] for r in con.execute("select distinct run_id from diff_rows").fetchall()}
    finally:
        con.close()
    assert (rows, runs) == (sum(f.height for f in frames), 2)
    assert diff_runs == set(run_ids(data))
    asin = frames[1].filter(pl.col("status") == "ok")["asin"][0]
    history = cli("history", asin, cwd=home)
    assert history.exit_code == 0, history.output
    assert f"{asin}: 2 observations, 2 runs" in history.stdout


def test_a_data_directory_under_a_question_mark_is_refused_with_a_sentence(
    cli, clean_environment: Path
) -> None:
    home = clean_environment / "why?"
    home.mkdir()
    (home / "invsync.toml").write_text(SMALL_DEMO + "time_scale = 400\n")
    result = cli("sync", cwd=home)
    assert result.exit_code == 2, result.output
    assert "has a '?' in its path" in result.stderr
    assert "--data-dir or INVSYNC_DATA_DIR" in result.stderr
