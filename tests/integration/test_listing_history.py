"""Every transform keeps the listings as they stood at the run, with its decision for each
(data/listings/run_id=…/platform=…/listings.parquet), and what it priced with (runs.priced_at,
runs.fx_jpy_per_usd): enough to replay the run's decisions from history alone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipeline import layout, snapshots
from pipeline.config import open_workspace
from pipeline.pricing import FxRate
from pipeline.schemas import ListingHistory
from pipeline.transform import compute_diffs, diff_path
from pipeline.warehouse import opened
from tests.integration.test_transform_cli import RUN, _demo_world

CHANGE_COLUMNS = [
    "listing_key",
    "change_kind",
    "new_price_minor",
    "new_quantity",
    "held",
    "change_id",
]


def _history(data_dir: Path, platform: str) -> pl.DataFrame:
    return pl.read_parquet(layout.listing_history_path(data_dir, RUN, platform), glob=False)


def test_a_transform_keeps_every_listing_as_it_stood_with_its_decision(cli, data_dir: Path) -> None:
    _demo_world(data_dir)
    result = cli("--data-dir", str(data_dir), "transform")
    assert result.exit_code == 0, result.output

    base = ListingHistory.validate(_history(data_dir, "base"))
    assert not {"run_id", "platform"} & set(base.columns)  # the path's keys only
    assert base.height == 5  # every listed listing, changed or not
    by_key = {row["listing_key"]: row for row in base.to_dicts()}
    assert by_key["4"]["change_kind"] is None and by_key["4"]["source_says"] == "ignore"
    assert (by_key["1"]["price_minor"], by_key["1"]["new_price_minor"]) == (1300, 1400)
    assert by_key["1"]["cost_jpy"] == 1000 and by_key["1"]["currency"] == "JPY"
    # its changed rows are exactly the run's diff
    diff = pl.read_parquet(diff_path(data_dir, RUN, "base"), glob=False)
    changed = base.filter(pl.col("change_kind").is_not_null()).sort("listing_key")
    assert changed.select(CHANGE_COLUMNS).equals(diff.sort("listing_key").select(CHANGE_COLUMNS))
    ebay = ListingHistory.validate(_history(data_dir, "ebay"))
    assert ebay["currency"].to_list() == ["USD"] and ebay["price_minor"].to_list() == [2900]

    with opened(data_dir) as con:
        priced_at, fx = con.execute(
            "select priced_at, fx_jpy_per_usd from runs where run_id = $r", {"r": RUN}
        ).fetchall()[0]
    assert priced_at is not None and fx == Decimal("150")


def test_the_stored_listings_replay_to_the_same_decisions(cli, data_dir: Path) -> None:
    """What a what-if replay relies on: pricing the stored listings (not the live tables)
    against the stored snapshot at the stored moment and rate gives the run's diff again."""
    _demo_world(data_dir)
    assert cli("--data-dir", str(data_dir), "transform").exit_code == 0
    with opened(data_dir) as con:
        priced_at, fx = con.execute(
            "select priced_at, fx_jpy_per_usd from runs where run_id = $r", {"r": RUN}
        ).fetchall()[0]
        # the live tables move on after the run: the replay must not read them
        con.execute("update listings_base set price_jpy = price_jpy + 111")
    stored = pl.concat(
        [_history(data_dir, p).with_columns(pl.lit(p).alias("platform")) for p in ("base", "ebay")],
        how="vertical_relaxed",
    )
    ws = open_workspace(config=None, data_dir=data_dir, environ={})
    con = duckdb.connect()  # no warehouse at all: history files only
    try:
        # platform_stats reads the run's unique_asins (exports/runs/runs.parquet in a replay)
        con.execute("create table runs as select $r as run_id, 5 as unique_asins", {"r": RUN})
        replayed = compute_diffs(
            con,
            run_id=RUN,
            snapshot=snapshots.read_snapshot(data_dir, RUN),
            settings=ws.settings,
            as_of=priced_at,
            fx=FxRate(fx.normalize(), priced_at, "the run's"),  # 150.0000 → "150", as priced
            stored_listings=stored,
        )
    finally:
        con.close()
    for platform in ("base", "ebay"):
        diff = pl.read_parquet(diff_path(data_dir, RUN, platform), glob=False)
        again = replayed.frames[platform]
        for column in diff.columns:
            if column != "title":
                assert again[column].to_list() == diff[column].to_list(), (platform, column)
