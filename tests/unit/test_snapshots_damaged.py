"""Old snapshots that cannot be read — a truncated file, or a sound footer over damaged
pages — are skipped by every reader of history with one warning naming the file, and no
fallback decision is ever taken from them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipeline import snapshots
from pipeline.review import price_history

ASIN = "B000000001"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RUNS = ("20261130T090000Z-aaaaaa", "20261130T100000Z-bbbbbb", "20261130T110000Z-cccccc")


def write_runs(data_dir: Path) -> list[Path]:
    """Three runs that saw ASIN in stock at ¥1,000, ¥2,000 and ¥3,000, plus 500 other
    ASINs each, so every file has pages worth damaging."""
    paths = []
    for hour, (run_id, price) in enumerate(zip(RUNS, (1000, 2000, 3000), strict=True)):
        fetched = NOW - timedelta(hours=3 - hour)
        rows = [
            {"run_id": run_id, "asin": a, "fetched_at": fetched, "operation": "item_offers",
             "status": "ok", "price_jpy": p, "in_stock": True}
            for a, p in [(ASIN, price), *((f"B1{i:08d}", 500 + i) for i in range(500))]
        ]  # fmt: skip
        paths.append(snapshots.write_snapshot(data_dir, run_id, snapshots.snapshot_frame(rows)))
    return paths


def truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(100)


def damage_pages(path: Path) -> None:
    """Overwrite every data page, keep the footer: the footer check passes, a read fails."""
    data = path.read_bytes()
    footer = int.from_bytes(data[-8:-4], "little")
    end = len(data) - 8 - footer
    path.write_bytes(data[:4] + b"\xff" * (end - 4) + data[end:])


def damaged_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Skipped the damaged" in r.getMessage()]


@pytest.mark.parametrize("damage", [truncate, damage_pages], ids=["truncated", "pages"])
def test_fallback_never_comes_from_a_damaged_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage
) -> None:
    first, second, _ = write_runs(tmp_path)
    damage(second)  # the newest source for run 3's fallback
    with caplog.at_level(logging.WARNING, logger="invsync"):
        found = snapshots.last_good_observations(
            tmp_path, [ASIN], now=NOW, max_age_seconds=86_400, exclude_run=RUNS[2]
        )
        again = snapshots.last_good_observations(
            tmp_path, [ASIN], now=NOW, max_age_seconds=86_400, exclude_run=RUNS[2]
        )
    assert found.select("run_id", "price_jpy").rows() == [(RUNS[0], 1000)]
    assert again.equals(found)
    warnings = damaged_warnings(caplog)
    assert len(warnings) == 1 and str(second) in warnings[0]  # once, naming the file
    assert str(first) not in warnings[0]


@pytest.mark.parametrize("damage", [truncate, damage_pages], ids=["truncated", "pages"])
def test_the_review_price_history_skips_a_damaged_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage
) -> None:
    _, second, _ = write_runs(tmp_path)
    damage(second)
    with caplog.at_level(logging.WARNING, logger="invsync"):
        history = price_history(tmp_path, {"base": pl.DataFrame({"asin": [ASIN]})})
    assert history == {ASIN: [1000, 3000]}
    warnings = damaged_warnings(caplog)
    assert len(warnings) == 1 and str(second) in warnings[0]


def test_a_damaged_run_snapshot_is_a_data_error_naming_it(tmp_path: Path) -> None:
    from pipeline.errors import DataError

    *_, own = write_runs(tmp_path)
    damage_pages(own)
    with pytest.raises(DataError) as raised:
        snapshots.read_snapshot(tmp_path, RUNS[2])
    assert str(own) in raised.value.message and "invsync fetch" in raised.value.message
    assert raised.value.exit_code == 2


def test_footer_checks_of_300_snapshots_are_cheap_and_cached(tmp_path: Path) -> None:
    """The footer check reads a few KB per file; the second reader of a run reads none."""
    import time

    from pipeline import warehouse

    frame = snapshots.snapshot_frame(
        [{"run_id": "r", "asin": f"B1{i:08d}", "status": "ok"} for i in range(200)]
    )
    paths = []
    for i in range(300):
        path = tmp_path / f"{i:03d}.parquet"
        frame.write_parquet(path)
        paths.append(path)
    started = time.perf_counter()
    assert warehouse.readable_parquet(paths, "snapshot") == paths
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert warehouse.readable_parquet(paths, "snapshot") == paths
    cached = time.perf_counter() - started
    assert first < 5.0 and cached < first
