"""The analysts' views on real DuckDB over real Parquet snapshots of three runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline import layout, schemas, views, warehouse
from pipeline.snapshots import SNAPSHOT_SCHEMA

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


def test_diffs_views_exist_before_any_diff_is_written(tmp_path: Path) -> None:
    three_runs(tmp_path).close()
    reader = views.open_for_reading(tmp_path)
    try:
        for name in ("diffs", "diff_base", "diff_ebay"):
            assert reader.execute(f"select count(*) from {name}").fetchall() == [(0,)]
        names = [d[0] for d in reader.execute("select * from diffs limit 0").description]
    finally:
        reader.close()
    assert names[:2] == ["run_id", "platform"] and "new_price_minor" in names
