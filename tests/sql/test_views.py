"""The analysts' views on real DuckDB: over hand-made snapshots of three runs, over one
transformed run, and over a real demo history (tests/sql/demo.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline import layout, schemas, views, warehouse
from pipeline.snapshots import SNAPSHOT_SCHEMA
from tests.sql.demo import DemoHistory, demo_history

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
# (run, hours after T0, asin, status, price, in_stock)
OBSERVATIONS = [
    ("r1", 0, "B000000001", "ok", 1000, True),
    ("r1", 0, "B000000002", "no_offer", None, False),
    ("r1", 0, "B000000003", "api_error", None, None),
    ("r2", 3, "B000000001", "no_offer", None, False),
    ("r2", 3, "B000000002", "ok", 500, True),
    ("r2", 3, "B000000003", "unknown", None, None),
    ("r3", 6, "B000000001", "no_offer", None, False),
    ("r3", 6, "B000000002", "ok", 520, True),
    ("r3", 6, "B000000003", "ok", 2000, True),
]


def snapshot(run: str, rows: list[tuple]) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            "run_id": [run] * n,
            "asin": [r[2] for r in rows],
            "fetched_at": [T0 + timedelta(hours=r[1]) for r in rows],
            "operation": ["item_offers"] * n,
            "status": [r[3] for r in rows],
            "price_jpy": [r[4] for r in rows],
            "listing_price_jpy": [r[4] for r in rows],
            "shipping_jpy": [0 if r[4] else None for r in rows],
            "points_jpy": [0 if r[4] else None for r in rows],
            "in_stock": [r[5] for r in rows],
            "offer_count": [1 if r[5] else 0 for r in rows],
            "eligible_offer_count": [1 if r[5] else 0 for r in rows],
            "seller_id": [None] * n,
            "is_prime": [None] * n,
            "is_fba": [None] * n,
            "availability_type": [None] * n,
            "max_shipping_hours": [None] * n,
            "error_code": ["InternalFailure" if r[3] == "api_error" else None for r in rows],
            "fallback_from_run": [None] * n,
            "fallback_age_seconds": [None] * n,
        },
        schema=SNAPSHOT_SCHEMA,
    )  # fmt: skip


def three_runs(data_dir: Path) -> duckdb.DuckDBPyConnection:
    con = warehouse.connect(data_dir)
    for run, hours in (("r1", 0), ("r2", 3), ("r3", 6)):
        rows = [o for o in OBSERVATIONS if o[0] == run]
        path = data_dir / f"snapshots/amazon/dt=2026-11-01/run_id={run}/part-0.parquet"
        frame = schemas.Snapshot.validate(snapshot(run, rows))
        warehouse.write_parquet_atomic(frame.drop("run_id"), path)  # the run id: in the path
        con.execute(
            "insert into runs (run_id, command, mode, started_at, outcome, spapi_calls,"
            " fetch_seconds, quota_floor_seconds) values ($r, 'sync', 'sandbox', $t, 'ok', 1, 10.1, 10.0)",
            {"r": run, "t": T0 + timedelta(hours=hours)},
        )
    views.publish(con, data_dir)
    return con


def test_price_history_holds_facts_only(tmp_path: Path) -> None:
    con = three_runs(tmp_path)
    rows = con.execute("select asin, status from price_history order by all").fetchall()
    assert ("B000000003", "api_error") not in rows and ("B000000003", "unknown") not in rows
    assert len(rows) == 7


def test_latest_price_is_the_newest_fact(tmp_path: Path) -> None:
    con = three_runs(tmp_path)
    latest = dict(con.execute("select asin, price from latest_price").fetchall())
    assert latest == {"B000000001": None, "B000000002": 520, "B000000003": 2000}


def test_out_of_stock_episodes_have_a_start_and_an_end(tmp_path: Path) -> None:
    con = three_runs(tmp_path)
    episodes = con.execute(
        "select asin, started_at, ended_at, ongoing from oos_episodes order by asin"
    ).fetchall()
    assert episodes == [
        ("B000000001", T0 + timedelta(hours=3), None, True),
        ("B000000002", T0, T0 + timedelta(hours=3), False),
    ]


def test_fetch_health_counts_errors_and_pace(tmp_path: Path) -> None:
    con = three_runs(tmp_path)
    health = con.execute(
        "select run_id, asins, facts, api_errors, unknowns, pace_vs_floor from fetch_health order by run_id"
    ).fetchall()
    assert health == [("r1", 3, 2, 1, 0, 1.01), ("r2", 3, 2, 0, 1, 1.01), ("r3", 3, 3, 0, 0, 1.01)]


def test_readers_use_the_analytics_copy_while_a_writer_holds_the_warehouse(tmp_path: Path) -> None:
    con = three_runs(tmp_path)  # this process now holds warehouse.duckdb for writing
    reader = textwrap.dedent(
        f"""
        import duckdb
        db = duckdb.connect({str(tmp_path / views.ANALYTICS_NAME)!r}, read_only=True)
        print(db.execute("select count(*) from price_history").fetchall()[0][0])
        print(db.execute("select count(*) from runs").fetchall()[0][0])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", reader], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "3"]
    # and the writer goes on while a reader holds analytics.duckdb open
    holding = textwrap.dedent(
        f"""
        import duckdb, sys, time
        db = duckdb.connect({str(tmp_path / views.ANALYTICS_NAME)!r}, read_only=True)
        print("ready", flush=True)
        sys.stdin.readline()
        print(db.execute("select outcome from runs where run_id = 'r3'").fetchall()[0][0])
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holding], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        con.execute("update runs set outcome = 'held' where run_id = 'r3'")
        assert views.publish(con, tmp_path) is False  # the reader holds it: skipped, no error
        exported = pl.read_parquet(layout.export_path(tmp_path, "runs"))
        assert exported.filter(pl.col("run_id") == "r3")["outcome"].to_list() == ["held"]
        out, _ = holder.communicate("go\n", timeout=30)
        assert out.strip() == "held"  # the open reader sees the fresh export
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()


def test_diffs_views_read_one_shape_with_the_keys_from_the_path(tmp_path: Path) -> None:
    """The neutral ``diffs`` view takes run_id and platform from the files' paths;
    ``diff_base`` and ``diff_ebay`` show the same rows in yen and cents under their names."""
    from pipeline.config import open_workspace
    from pipeline.transform import run as transform_run
    from tests.sql.frames import asin, observation, seed_run

    run = "20261101T000000Z-d1ff00"
    seed_run(
        tmp_path,
        run,
        base=[{"account_id": "shop1", "item_id": 7, "asin": asin(1), "price_jpy": 1300}],
        ebay=[{"account_id": "ebay-main", "sku": "S-1", "asin": asin(1), "price_cents": 2900}],
        snapshot=[observation(asin(1), price_jpy=1000)],
        unique_asins=1,
    )
    with warehouse.opened(tmp_path) as con:
        transform_run(open_workspace(data_dir=tmp_path, environ={}), con, run)
        views.publish(con, tmp_path)
    reader = views.open_for_reading(tmp_path)
    try:
        diffs = reader.execute(
            "select run_id, platform, listing_key, currency, new_price_minor from diffs"
            " order by platform"
        ).fetchall()
        base = reader.execute("select run_id, item_id, new_price_jpy, new_stock from diff_base")
        base_rows = base.fetchall()
        ebay = reader.execute("select run_id, sku, new_price_cents, api from diff_ebay")
        ebay_rows = ebay.fetchall()
    finally:
        reader.close()
    assert diffs == [(run, "base", "7", "JPY", 1400), (run, "ebay", "S-1", "USD", 2999)]
    assert base_rows == [(run, 7, 1400, 1)]
    assert ebay_rows == [(run, "S-1", 2999, "inventory")]


def test_an_ongoing_out_of_stock_episode_lasts_until_its_last_observation(tmp_path: Path) -> None:
    con = three_runs(tmp_path)
    ongoing = con.execute(
        "select last_observed_at, observations, duration_seconds from oos_episodes where ongoing"
    ).fetchall()
    assert ongoing == [(T0 + timedelta(hours=6), 2, 3 * 3600)]


def test_every_view_exists_before_any_file_is_written(tmp_path: Path) -> None:
    """A reader's copy made when only snapshots exist (no diff, listing history or decision):
    every view binds, with its columns, and those over the missing files are empty."""
    three_runs(tmp_path).close()
    from_snapshots = {"snapshots", "price_history", "latest_price", "oos_episodes"}
    reader = views.open_for_reading(tmp_path)
    try:
        counts = {
            name: reader.execute(f"select count(*) from {name}").fetchall()[0][0]
            for name in (*views.SOURCE_VIEWS, *views.ANALYST_VIEWS)
        }
        names = [d[0] for d in reader.execute("select * from diffs limit 0").description]
        listing = [d[0] for d in reader.execute("select * from listing_history").description]
    finally:
        reader.close()
    assert {name for name, count in counts.items() if count} == {
        *from_snapshots,
        "fetch_health",
        "fetch_statuses",
    }
    assert names[:2] == ["run_id", "platform"] and "new_price_minor" in names
    assert listing[:3] == ["run_id", "platform", "priced_at"] and "price_minor" in listing


def _below_cost_run(data_dir: Path) -> str:
    """One run: BASE items at, below and above Amazon's cost of ¥1,000, eBay SKUs either side
    of it at the demo's ¥150 per dollar (666 cents = ¥999, 667 cents = ¥1,000.50)."""
    from pipeline.config import open_workspace
    from pipeline.transform import run as transform_run
    from tests.sql.frames import asin, observation, seed_run

    run = "20261101T000000Z-be10c0"
    seed_run(
        data_dir,
        run,
        base=[
            {"account_id": "shop1", "item_id": 1, "asin": asin(1), "price_jpy": 999},
            {"account_id": "shop1", "item_id": 2, "asin": asin(1), "price_jpy": 1000},
            {"account_id": "shop1", "item_id": 3, "asin": asin(1), "price_jpy": 900, "stock": 0},
            {"account_id": "shop1", "item_id": 4, "asin": asin(2), "price_jpy": 900},
        ],
        ebay=[
            {"account_id": "ebay-main", "sku": "S-1", "asin": asin(1), "price_cents": 666},
            {"account_id": "ebay-main", "sku": "S-2", "asin": asin(1), "price_cents": 667},
        ],
        snapshot=[observation(asin(1), price_jpy=1000), observation(asin(2), "no_offer")],
        unique_asins=2,
    )
    with warehouse.opened(data_dir) as con:
        transform_run(open_workspace(data_dir=data_dir, environ={}), con, run)
        views.publish(con, data_dir)
    return run


def test_below_cost_compares_the_price_in_yen_at_the_runs_rate(tmp_path: Path) -> None:
    run = _below_cost_run(tmp_path)
    reader = views.open_for_reading(tmp_path)
    try:
        below = reader.execute(
            "select listing_key, buyable, below_cost, fx_jpy_per_usd from listing_margins"
            " order by platform, listing_key"
        ).fetchall()
        accounts = reader.execute(
            "select run_id, platform, account_id, currency, listings, buyable_listings,"
            " listings_below_cost from account_margins order by platform"
        ).fetchall()
    finally:
        reader.close()
    assert below == [
        ("1", True, True, None),  # ¥999 < ¥1,000
        ("2", True, False, None),  # at cost is not below it
        ("3", False, False, None),  # not on sale: sells nothing below cost
        ("4", True, None, None),  # Amazon has nothing to buy: no cost to be below
        ("S-1", True, True, Decimal("150.0000")),
        ("S-2", True, False, Decimal("150.0000")),
    ]
    assert accounts == [
        (run, "base", "shop1", "JPY", 4, 3, 1),
        (run, "ebay", "ebay-main", "USD", 2, 2, 1),
    ]


def test_margin_is_current_profit_over_price_per_listing_and_account(tmp_path: Path) -> None:
    _below_cost_run(tmp_path)
    reader = views.open_for_reading(tmp_path)
    try:
        listings = reader.execute(
            "select account_id, price_minor, current_profit_minor, margin, buyable"
            " from listing_margins where current_profit_minor is not null"
        ).fetchall()
        accounts = reader.execute(
            "select account_id, current_profit_minor, margin from account_margins"
        ).fetchall()
    finally:
        reader.close()
    assert listings
    for _, price, profit, margin, _ in listings:  # Decimal: exact, half away from zero
        exact = Decimal(profit) / Decimal(price)
        assert margin == exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    for account, profit, margin in accounts:
        mine = [r for r in listings if r[0] == account and r[4]]
        assert profit == sum(r[2] for r in mine)
        exact = Decimal(profit) / sum(Decimal(r[1]) for r in mine)
        assert margin == exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


# --- on a real demo history (tests/sql/demo.py) ----------------------------------------------


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoHistory:
    return demo_history(tmp_path_factory)


def _read(demo: DemoHistory, sql: str) -> list[tuple]:
    reader = views.open_for_reading(demo.data_dir)
    try:
        return reader.execute(sql).fetchall()
    finally:
        reader.close()


@pytest.mark.slow
def test_listing_history_shows_each_listing_at_every_run_and_the_pushes_in_between(
    demo: DemoHistory,
) -> None:
    per_run = _read(
        demo,
        "select run_id, count(*), count(distinct (platform, account_id, listing_key)),"
        " count(*) filter (where priced_at is null) from listing_history group by run_id",
    )
    listed = dict(_read(demo, "select run_id, listings from runs"))
    assert sorted(r[0] for r in per_run) == demo.runs
    for run, rows, distinct, unpriced in per_run:
        assert rows == distinct == listed[run] and unpriced == 0
    # a change the load applied is the price the next run found
    moved = _read(
        demo,
        "select p.new_price_minor, later.price_minor from pushes as p"
        " join runs as r on r.run_id = p.run_id"
        " join listing_history as later on later.platform = p.platform"
        "  and later.account_id = p.account_id and later.listing_key = p.listing_key"
        " where p.state = 'ok' and p.action = 'change' and later.run_id = ("
        "  select min(run_id) from runs where run_id > p.run_id)",
    )
    assert moved and all(new == found for new, found in moved)


@pytest.mark.slow
def test_holds_carry_the_decision_a_person_took(demo: DemoHistory) -> None:
    second = demo.runs[1]
    rows = _read(
        demo,
        "select platform, listing_key, decision, waiting, decided_in_run_id, decided_at"
        f" from holds where run_id = '{second}' and decision is not null order by decision",
    )
    found = {r[2]: (r[0], r[1]) for r in rows}
    assert found == demo.decided
    assert {r[2]: r[3] for r in rows} == {"approve": False, "hold": True, "reject": False}
    assert {r[4] for r in rows} == {second} and all(r[5] is not None for r in rows)
    undecided = _read(
        demo, f"select count(*) from holds where run_id = '{second}' and decision is null"
    )
    held = _read(demo, f"select count(*) from diffs where run_id = '{second}' and held")
    assert undecided[0][0] == held[0][0] - 3
    last = demo.runs[-1]  # decided before it ran: its held count is what waits now
    waiting = _read(
        demo, f"select count(*) filter (where waiting) from holds where run_id = '{last}'"
    )
    assert waiting == _read(demo, f"select holds from runs where run_id = '{last}'")
    verdicts = _read(demo, "select run_id, platform, tripped, blocking from breaker_verdicts")
    assert {(r[0], r[1]) for r in verdicts} == {(r, p) for r in demo.runs for p in ("base", "ebay")}


@pytest.mark.slow
def test_coverage_of_the_valid_asins_is_whole_on_a_flawless_demo(demo: DemoHistory) -> None:
    health = _read(demo, "select coverage, coverage_of_valid, invalid_asins from fetch_health")
    assert health and all(c < 1 and valid == 1 and bad == 8 for c, valid, bad in health)
    statuses = _read(
        demo,
        "select status, is_fact, sum(asins), list(distinct reason) from fetch_statuses"
        " group by all order by status",
    )
    by_status = {s: (fact, n, reasons) for s, fact, n, reasons in statuses}
    assert by_status["invalid_asin"] == (
        False,
        8 * len(demo.runs),
        ["Amazon says the ASIN does not exist on amazon.co.jp: fix the listing's ASIN."],
    )
    assert by_status["ok"][0] is True
    shares = _read(demo, "select run_id, sum(share) from fetch_statuses group by run_id")
    assert all(abs(total - 1) < 0.001 for _, total in shares)


@pytest.mark.slow
def test_the_fx_rate_is_a_decimal_beside_yen_and_cents(demo: DemoHistory) -> None:
    rates = _read(
        demo,
        "select distinct platform, currency, fx_jpy_per_usd, typeof(fx_jpy_per_usd) from diffs",
    )
    assert sorted(rates, key=str) == sorted(
        [("base", "JPY", None, "DECIMAL(12,4)"), ("ebay", "USD", Decimal(150), "DECIMAL(12,4)")],
        key=str,
    )
    margins = _read(demo, "select distinct currency, fx_jpy_per_usd from account_margins")
    assert sorted(margins, key=str) == sorted([("JPY", None), ("USD", Decimal(150))], key=str)
