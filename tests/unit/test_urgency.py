"""The urgency model on seeded histories written where fetch writes them (real Parquet, the
real warehouse): volatile and exposed ASINs first, never-observed ones before all, the same
order twice, the max-age sweep's arithmetic, and the speed at 30,000 ASINs × 100 runs."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from pipeline import pool, snapshots, urgency
from pipeline.config import parse_settings
from pipeline.runs import new_run_id
from pipeline.warehouse import opened
from tests.sql.frames import asin, insert_base, snapshot_frame

SETTINGS = parse_settings({"sandbox": {"seed": 42}})
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _history(data_dir: Path, prices: dict[str, list[int]], hours: int) -> None:
    """One snapshot per hour, ``hours`` of them ending an hour before NOW: each ASIN at the
    price its list gives for that run."""
    for run in range(hours):
        at = NOW - timedelta(hours=hours - run)
        rows = [
            {"asin": a, "status": "ok", "price_jpy": p[run], "in_stock": True, "fetched_at": at}
            for a, p in prices.items()
        ]
        run_id = new_run_id(at)
        snapshots.write_snapshot(data_dir, run_id, snapshot_frame(run_id, rows, at))


def _seeded(data_dir: Path, seed: int) -> tuple[list[str], list[str]]:
    """20 volatile ASINs (a new price most hours) and 40 stable ones, one listing each at the
    same price and stock; returns (volatile, stable)."""
    rng = random.Random(seed)
    volatile = [asin(n) for n in range(1, 21)]
    stable = [asin(n) for n in range(21, 61)]
    prices = {a: [1000 + rng.randrange(0, 400) for _ in range(12)] for a in volatile}
    prices.update({a: [1000] * 12 for a in stable})
    _history(data_dir, prices, 12)
    with opened(data_dir) as con:
        insert_base(
            con,
            [
                {"account_id": "shop1", "item_id": n, "asin": a, "price_jpy": 1500, "stock": 2}
                for n, a in enumerate(volatile + stable, start=1)
            ],
        )
    return volatile, stable


def _scores(data_dir: Path, asins: list[str]) -> pl.DataFrame:
    with opened(data_dir) as con:
        return urgency.scores(con, data_dir, asins, SETTINGS, now=NOW)


def test_volatile_asins_rank_before_stable_ones_and_the_order_is_the_same_twice(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    volatile, stable = _seeded(data_dir, seed=16)
    asins = sorted(volatile + stable, reverse=True)  # the input order does not matter
    one, two = _scores(data_dir, asins), _scores(data_dir, asins)
    assert one["asin"].to_list() == two["asin"].to_list()
    assert one["urgency_rank"].to_list() == list(range(1, 61))
    order = one["asin"].to_list()
    assert set(order[:20]) == set(volatile) and set(order[20:]) == set(stable)
    # the stable ones tie exactly: ties go by ASIN
    assert order[20:] == sorted(stable)
    rates = dict(zip(one["asin"], one["change_rate"], strict=True))
    assert min(rates[a] for a in volatile) > 10 * max(rates[a] for a in stable)


def test_exposure_and_never_observed_order_the_asins(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    same = [1000, 1100] * 6  # one history for all three: a change every hour
    _history(data_dir, {asin(1): same, asin(2): same, asin(3): same}, 12)
    with opened(data_dir) as con:
        insert_base(
            con,
            [  # asin 2: more stock at a thinner margin over its last cost (1,100 yen)
                {"account_id": "shop1", "item_id": 1, "asin": asin(1), "price_jpy": 2000, "stock": 1},
                {"account_id": "shop1", "item_id": 2, "asin": asin(2), "price_jpy": 1200, "stock": 5},
                {"account_id": "shop1", "item_id": 3, "asin": asin(3), "price_jpy": 2000, "stock": 1},
                {"account_id": "shop1", "item_id": 4, "asin": asin(9), "price_jpy": 900, "stock": 1},
            ],
        )  # fmt: skip
    ranked = _scores(data_dir, [asin(1), asin(2), asin(3), asin(9)])
    assert ranked["asin"].to_list() == [asin(9), asin(2), asin(1), asin(3)]
    never = ranked.row(0, named=True)
    assert never["last_observed_at"] is None and never["p_changed"] == 1.0


def test_the_sweep_share_and_the_impossible_case_say_their_numbers() -> None:
    # 10,000 ASINs, runs every 16 minutes, max_source_age 12 h: 233 a run, oldest first
    assert urgency.sweep_size(10_000, 960.0, 43_200.0) == 233
    assert urgency.sweep_size(10_000, 30_000.0, 43_200.0) is None  # A ≤ 2P
    lanes = pool.lanes_for("item_offers")
    ranked = pl.DataFrame(
        {
            "asin": [asin(n) for n in range(1, 1001)],
            "last_observed_at": [NOW - timedelta(minutes=n) for n in range(1, 1001)],
            "age_seconds": [60.0 * n for n in range(1, 1001)],
            "urgency_rank": list(range(1, 1001)),
        }
    )
    chosen = urgency.select(
        ranked, lanes, budget_seconds=60.0, overhead_seconds=0.0, max_source_age=3600.0
    )
    assert len(chosen.asins) == pool.capacity(60.0, lanes) == 171
    assert chosen.sweep == 18 and chosen.guarantee_note is None  # ceil(1000·60 / 3480)
    assert chosen.asins[:153] == ranked["asin"].to_list()[:153]  # the rest by urgency
    assert set(chosen.asins[153:]) == set(ranked["asin"].to_list()[-18:])  # the oldest
    too_few = urgency.select(
        ranked, lanes, budget_seconds=60.0, overhead_seconds=0.0, max_source_age=300.0
    )
    assert too_few.guarantee_note is not None
    assert "1,000 ASINs at the pooled 2.50 ASINs/s need 400 s" in too_few.guarantee_note
    assert "max_source_age 300 s" in too_few.guarantee_note


def test_thirty_thousand_asins_with_a_hundred_runs_score_within_three_seconds(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    n, runs = 30_000, 100
    asins = [asin(i) for i in range(1, n + 1)]
    rng = random.Random(30)
    for run in range(runs):
        at = NOW - timedelta(hours=runs - run)
        run_id = new_run_id(at)
        frame = pl.DataFrame(
            {
                "asin": asins,
                "status": ["ok"] * n,
                "price_jpy": [1000 + (i * run if i % 10 == 0 else 0) for i in range(n)],
                "in_stock": [rng.random() > 0.01 for _ in range(n)],
            }
        ).with_columns(
            run_id=pl.lit(run_id),
            fetched_at=pl.lit(at).dt.cast_time_unit("us"),
            operation=pl.lit("item_offers"),
        )
        snapshots.write_snapshot(data_dir, run_id, snapshots.conform(frame))
    with opened(data_dir) as con:
        con.register(
            "seed", pl.DataFrame({"asin": asins, "item_id": list(range(1, n + 1))}).to_arrow()
        )
        con.execute(
            "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
            " status, source, updated_at) select 'shop1', item_id, asin, 1500, 2, true,"
            " 'listed', 'import', now() from seed"
        )
        started = time.perf_counter()
        ranked = urgency.scores(con, data_dir, asins, SETTINGS, now=NOW)
        seconds = time.perf_counter() - started
    assert ranked.height == n
    assert seconds < 3.0, f"scoring took {seconds:.2f} s"


def test_the_run_period_overhead_is_the_median_of_recent_budgeted_runs(tmp_path: Path) -> None:
    """A first full sync that pushed every listing's catch-up (minutes outside its fetch)
    does not stand for the budgeted runs after it: P would overstate the sweep."""
    data_dir = tmp_path / "data"
    start = datetime(2026, 11, 30, tzinfo=UTC)

    def add(con, minutes: int, wall: float, fetch: float, budget: float | None) -> None:
        began = start + timedelta(minutes=minutes)
        con.execute(
            "insert into runs (run_id, command, mode, started_at, finished_at, fetch_seconds,"
            " fetch_budget_seconds, outcome) values ($id, 'sync', 'sandbox', $s, $f, $fetch,"
            " $b, 'ok')",
            {"id": f"r{minutes:04d}", "s": began, "f": began + timedelta(seconds=wall),
             "fetch": fetch, "b": budget},
        )  # fmt: skip

    with opened(data_dir) as con:
        add(con, 0, 300.0, 60.0, None)  # the first full sync: 240 s outside its fetch
        assert urgency.run_overhead_seconds(con) == 240.0  # no budgeted run yet
        for minute, overhead in ((10, 8.0), (20, 12.0), (30, 9.0)):
            add(con, minute, 15.0 + overhead, 15.0, 15.0)
        assert urgency.run_overhead_seconds(con) == 9.0  # the median, the full sync left out
        add(con, 40, 15.0 + 50.0, 15.0, 15.0)  # one slow budgeted run moves it one step
        assert urgency.run_overhead_seconds(con) == 10.5


def test_one_interval_of_history_already_tells_a_volatile_asin_from_a_stable_one(
    tmp_path: Path,
) -> None:
    """Three observations an hour apart: one ASIN changed in each interval, one never. The
    prior (half a change a day) must not outweigh two hours of evidence: a day-long prior
    rated them only 8 x apart, so a budget spent its quota on stable ASINs for a day."""
    data_dir = tmp_path / "data"
    volatile, stable = asin(1), asin(2)
    _history(data_dir, {volatile: [1000, 1100, 1000], stable: [1000, 1000, 1000]}, 3)
    with opened(data_dir) as con:
        insert_base(
            con,
            [
                {"account_id": "shop1", "item_id": n, "asin": a, "price_jpy": 1500, "stock": 2}
                for n, a in enumerate((volatile, stable), start=1)
            ],
        )
    rates = dict(_scores(data_dir, [volatile, stable]).select("asin", "change_rate").iter_rows())
    assert rates[volatile] > 20 * rates[stable]
    # about the truth: a change an hour, and the prior's half a change a day
    assert 0.5 < rates[volatile] * 3600 < 2.0
    assert rates[stable] * 86_400 < 0.5
