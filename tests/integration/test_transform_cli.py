"""`invsync transform` end to end on a real warehouse and real Parquet: diffs written and
validated, history recorded, exit codes, and the doubtful-data rules per change kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipeline.config import open_workspace
from pipeline.schemas import Diff, PricedDiff
from pipeline.transform import diff_path
from pipeline.transform import run as transform_run
from pipeline.warehouse import opened, read_parquet_validated
from tests.sql.frames import asin, observation, seed_run

RUN = "20250601T000000Z-7a7a7a"


def _demo_world(data_dir: Path) -> None:
    seed_run(
        data_dir,
        RUN,
        base=[
            {"account_id": "shop1", "item_id": 1, "asin": asin(1), "price_jpy": 1300},
            {"account_id": "shop1", "item_id": 2, "asin": asin(2), "price_jpy": 1500, "stock": 2},
            {"account_id": "shop2", "item_id": 3, "asin": asin(3), "price_jpy": 1400, "stock": 0},
            {"account_id": "shop2", "item_id": 4, "asin": asin(4), "price_jpy": 1500},
            {"account_id": "shop2", "item_id": 5, "asin": asin(5), "price_jpy": 1500},
        ],
        ebay=[
            {"account_id": "ebay-main", "sku": f"S-{asin(1)}", "asin": asin(1), "price_cents": 2900}
        ],
        snapshot=[
            observation(asin(1), price_jpy=1000),  # → 1,400 yen, $29.99
            observation(asin(2), "no_offer"),  # → out of stock
            observation(asin(3), price_jpy=1000),  # → restock
            observation(asin(4), "api_error"),  # → nothing
            observation(asin(5), price_jpy=1072),  # ×1.3 = 1,393.6 → 1,400: price_down
        ],
        unique_asins=5,
    )


def test_transform_writes_validated_diffs_and_history(cli, data_dir: Path) -> None:
    _demo_world(data_dir)
    result = cli("--data-dir", str(data_dir), "transform")
    assert result.exit_code == 0, result.output
    assert f"Transformed run {RUN}" in result.stdout
    assert "base: 5 listings → 4 to change" in result.stdout
    assert "ebay: 1 listings → 1 to change" in result.stdout

    base = read_parquet_validated(diff_path(data_dir, RUN, "base"), PricedDiff)
    Diff.validate(base)  # what load reads
    assert dict(zip(base["listing_key"], base["change_kind"], strict=True)) == {
        "1": "price_up",
        "2": "out_of_stock",
        "3": "restock",
        "5": "price_down",
    }
    assert base.filter(pl.col("listing_key") == "1")["new_price_minor"].item() == 1400
    assert set(base["currency"]) == {"JPY"}
    ebay = read_parquet_validated(diff_path(data_dir, RUN, "ebay"), PricedDiff)
    Diff.validate(ebay)
    assert ebay["new_price_minor"].to_list() == [2999]
    assert ebay["currency"].to_list() == ["USD"]
    assert ebay["fx_jpy_per_usd"].to_list() == ["150"]  # the sandbox demo rate
    # Both platforms' files hold the same columns, and none that is a key of their path:
    # the folder reads as one Hive dataset, run_id and platform coming from the paths.
    assert base.columns == ebay.columns
    assert not {"run_id", "platform"} & set(base.columns)
    dataset = pl.read_parquet(data_dir / "diffs", hive_partitioning=True)
    assert dataset.height == 5 and set(dataset["platform"]) == {"base", "ebay"}
    assert set(dataset["run_id"]) == {RUN}

    with opened(data_dir) as con:
        counts = con.execute(
            "select (select count(*) from diff_history where run_id = $r and platform = 'base'),"
            " (select count(*) from diff_history where run_id = $r and platform = 'ebay'),"
            " (select diffs from runs where run_id = $r)",
            {"r": RUN},
        ).fetchall()[0]
    assert counts == (4, 1, 5)

    again = cli("--data-dir", str(data_dir), "transform", "--run", RUN)
    assert again.exit_code == 0, again.output
    with opened(data_dir) as con:
        rows = con.execute(
            "select count(*) from diff_history where run_id = $r and platform = 'base'",
            {"r": RUN},
        ).fetchall()
    assert rows[0][0] == 4  # replaced, not doubled


def test_transform_without_a_snapshot_exits_2_naming_fetch(cli, data_dir: Path) -> None:
    with opened(data_dir) as con:
        con.execute(
            "insert into runs (run_id, command, mode, started_at, outcome)"
            " values ($r, 'fetch', 'sandbox', now(), 'failed')",
            {"r": RUN},
        )
    result = cli("--data-dir", str(data_dir), "transform", "--run", RUN)
    assert result.exit_code == 2
    assert "has no Amazon snapshot" in result.stderr and "invsync fetch" in result.stderr


def test_a_stale_fx_rate_stops_ebay_but_base_is_written(cli, data_dir: Path) -> None:
    _demo_world(data_dir)
    config = data_dir.parent / "invsync.toml"
    old = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    config.write_text(f'[fx]\njpy_per_usd = 150\nas_of = {old}\nmax_age = "3d"\n')
    result = cli("--config", str(config), "--data-dir", str(data_dir), "transform")
    assert result.exit_code == 2, result.output
    assert "beyond fx.max_age" in result.stderr and "eBay pricing stopped" in result.stderr
    assert diff_path(data_dir, RUN, "base").is_file()
    assert not diff_path(data_dir, RUN, "ebay").exists()


# What each listing would do on a good `ok` observation, and the observation that does it.
KINDS = {
    "price_up": ({"price_jpy": 1300, "stock": 1}, {"price_jpy": 1000}),
    "price_down": ({"price_jpy": 1500, "stock": 1}, {"price_jpy": 1000}),
    "out_of_stock": ({"price_jpy": 1400, "stock": 2}, {"price_jpy": 1000, "in_stock": False}),
    "restock": ({"price_jpy": 1400, "stock": 0}, {"price_jpy": 1000}),
}
ALLOWED = {
    "ok": set(KINDS),
    "api_error": set(),
    "unknown": set(),
    "fallback": {"price_up", "out_of_stock"},  # only ever safer
}


@pytest.mark.parametrize("status", list(ALLOWED))
def test_doubtful_data_per_change_kind(status: str, data_dir: Path) -> None:
    listings, snapshot = [], []
    for n, (listing, obs) in enumerate(KINDS.values(), start=1):
        listings.append({"account_id": "shop1", "item_id": n, "asin": asin(n), **listing})
        snapshot.append(observation(asin(n), status=status, **obs))
    seed_run(data_dir, RUN, base=listings, snapshot=snapshot, unique_asins=len(KINDS))
    ws = open_workspace(data_dir=data_dir, environ={})
    with opened(data_dir) as con:
        transform_run(ws, con, RUN)
    diff = pl.read_parquet(diff_path(data_dir, RUN, "base"))
    changed = {list(KINDS)[int(item) - 1] for item in diff["listing_key"]}
    assert changed == ALLOWED[status]
    assert set(diff["change_kind"]) == ALLOWED[status]  # each did what it was set up to do
