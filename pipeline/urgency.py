"""Phase 1, the budgeted run's selection: which listed ASINs a run observes, most urgent first,
and the max-age sweep that keeps every one within ``guardrails.max_source_age``.

Stage: fetch planning (called by :mod:`pipeline.sync` between extract and fetch). Reads the
extract frame, every readable Amazon snapshot (``snapshots/amazon/**``: each ASIN's observed
history), the listing tables (through ``sql/transform/run_listings.sql``) and ``runs`` (the
last fetch's learned rates, the recent runs' overhead); writes nothing — :mod:`pipeline.sync`
records the budget on ``runs`` and the selection is the run's ``fetch_plan``.

The model (docs/fetch.md, "Budgeted runs: urgency and the max-age guarantee"), all in
``sql/urgency_scores.sql``:

* change rate ``λ̂`` per ASIN from its consecutive fact observations (Cho & Garcia-Molina's
  improved estimator, with one prior pseudo-interval of :data:`PRIOR_SECONDS` holding
  :data:`PRIOR_CHANGES`: half a change a day);
* ``P(changed) = 1 − exp(−λ̂ · age)`` since its last observation;
* exposure = Σ over its listings of stock on hand × our price (yen) × a thin-margin weight
  ``10,000 / (500 + margin_bp)``;
* urgency = P × exposure; never-observed ASINs first; ties by ASIN.

A budget of ``T`` seconds of quota time buys :func:`pipeline.pool.capacity` ASINs at the
lanes' learned rates. Of those, ``k = ceil(N · P / (A − 2P))`` (``N`` listed ASINs, ``P`` the
run period: the budget plus the recent runs' overhead, ``A`` max_source_age) go oldest first,
so a sweep reaches every ASIN within ``A``; the rest go by urgency.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline import pool, pricing, snapshots, warehouse
from pipeline.config import Settings
from pipeline.sql import query_frame, run_sql
from pipeline.statuses import GOOD_STATUSES

# The prior: half a change a day, weighed as one pseudo-interval of an hour. An hour, not a
# day: a day-long pseudo-interval outweighed the first day of an ASIN's history, so a volatile
# ASIN and a stable one looked alike (4.1 x apart after one changed and one unchanged
# 22-minute interval, against 63 x with an hour) until a day had passed.
PRIOR_SECONDS = 3_600.0
PRIOR_CHANGES = 0.5 * PRIOR_SECONDS / 86_400.0
RECENT_RUNS = 5  # finished syncs whose overhead (wall time less fetch time) gives P


@dataclass(frozen=True)
class Selection:
    """What one budgeted run observes, and why."""

    asins: list[str]  # the selected valid ASINs, most urgent first
    listed: int  # valid listed ASINs (N)
    capacity: int  # ASINs the budget buys at the lanes' rates
    sweep: int  # of the selected, those taken oldest first for the max-age sweep
    never_observed: int  # listed ASINs with no fact observation yet
    oldest_left_seconds: float | None  # oldest observation among those not selected
    unobserved_left: int  # never-observed ASINs not selected (no observation to carry)
    budget_seconds: float
    period_seconds: float  # P: budget plus the recent runs' overhead
    max_source_age: float  # A
    pooled_rate: float  # ASINs/s
    guarantee_note: str | None  # the sentence when the max-age guarantee cannot hold

    @property
    def guarantee_holds(self) -> bool:
        return self.guarantee_note is None


def learned_lanes(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[pool.Lane]:
    """The lanes a fetch of ``settings`` uses, at the last fetch's learned rates
    (``runs.spapi_operation_rates``, else ``runs.spapi_rate`` scaled over every lane), else
    the documented defaults."""
    amazon = settings.amazon
    lanes = pool.lanes_for(amazon.operation, pool=amazon.pool, batch_size=amazon.batch_size)
    rows = con.execute(
        "select spapi_operation_rates, spapi_rate, operation from runs"
        " where spapi_calls > 0 and (spapi_operation_rates is not null or spapi_rate > 0)"
        " order by started_at desc limit 1"
    ).fetchall()
    if not rows:
        return lanes
    by_operation, single_rate, operation = rows[0]
    if by_operation:
        rates = {str(k): float(v) for k, v in json.loads(by_operation).items() if v}
        return pool.with_rates(lanes, rates)
    if single_rate and operation in pool.LANES:
        names = [x.operation for x in lanes]  # e.g. a sandbox's time scale
        return pool.with_rates(lanes, pool.scaled_rates(operation, float(single_rate), names))
    return lanes


def run_overhead_seconds(con: duckdb.DuckDBPyConnection) -> float:
    """The median wall time outside the fetch of the last :data:`RECENT_RUNS` finished
    budgeted syncs (of any syncs while there is none yet). The median, and budgeted runs
    first: a first full sync that pushes every listing's catch-up takes minutes outside its
    fetch, and a mean over it would overstate the run period (and so the max-age sweep) for
    the next runs."""
    rows = con.execute(
        "with recent as (select started_at, fetch_budget_seconds is not null as budgeted,"
        " greatest(epoch(finished_at) - epoch(started_at) - coalesce(fetch_seconds, 0), 0)"
        " as overhead from runs where command = 'sync' and finished_at is not null"
        " and outcome in ('ok', 'held'))"
        " select median(overhead) from (select overhead from recent"
        " where budgeted or not exists (select 1 from recent where budgeted)"
        " order by started_at desc limit $n)",
        {"n": RECENT_RUNS},
    ).fetchall()
    return float(rows[0][0] or 0.0)


def scores(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    asins: list[str],
    settings: Settings,
    *,
    now: datetime,
) -> pl.DataFrame:
    """Every ASIN of ``asins`` scored and ranked (``sql/urgency_scores.sql``), most urgent
    first. ``con`` is the warehouse (its listing tables give the exposure)."""
    files = snapshots.readable_snapshot_files(data_dir)
    jpy_per_usd = settings.fx.jpy_per_usd or pricing.SANDBOX_DEMO_RATE
    con.register("wanted_asins", pl.DataFrame({"asin": asins}, schema={"asin": pl.String}))
    try:
        run_sql(con, "transform/run_listings")
        if not files:
            return query_frame(con, "urgency_unobserved", {})
        return query_frame(
            con,
            "urgency_scores",
            {
                "files": [warehouse.duckdb_file(f) for f in files],
                "now": now,
                "seen_statuses": [*GOOD_STATUSES, "invalid_asin"],
                "prior_seconds": PRIOR_SECONDS,
                "prior_changes": PRIOR_CHANGES,
                "jpy_per_usd": float(jpy_per_usd),
            },
        )
    finally:
        con.execute("drop view if exists run_listings")
        con.unregister("wanted_asins")


def sweep_size(listed: int, period: float, max_age: float) -> int | None:
    """``k = ceil(N · P / (A − 2P))``: ASINs per run, oldest first, that bring every one of
    ``listed`` within ``max_age`` when runs follow each other every ``period`` seconds; None
    when no share can (``A ≤ 2P``)."""
    room = max_age - 2 * period
    if room <= 0:
        return None
    return min(listed, math.ceil(listed * period / room))


def select(
    ranked: pl.DataFrame,
    lanes: list[pool.Lane],
    *,
    budget_seconds: float,
    overhead_seconds: float,
    max_source_age: float,
) -> Selection:
    """The run's selection from :func:`scores`' ranked frame: the max-age sweep's share
    oldest first, the rest of the budget's capacity by urgency, in urgency order."""
    listed = ranked.height
    capacity = pool.capacity(budget_seconds, lanes)
    rate = pool.pooled_rate(lanes)
    period = budget_seconds + overhead_seconds
    k = sweep_size(listed, period, max_source_age)
    sweep_seconds = listed / rate if rate > 0 else math.inf
    note = None
    if sweep_seconds > max_source_age or k is None or k > capacity:
        per_run = (
            f"needs {k:,} of them per run against a capacity of {capacity:,}"
            if k is not None
            else "leaves no room (max_source_age must exceed twice the run period)"
        )
        note = (
            f"The budget cannot keep every listed ASIN within max_source_age: {listed:,} ASINs "
            f"at the pooled {rate:.2f} ASINs/s need {sweep_seconds:,.0f} s for a sweep, and a "
            f"run every {period:,.0f} s {per_run}, for max_source_age {max_source_age:,.0f} s; "
            "changes from observations past their age are held (source_stale) — raise the "
            "budget or max_source_age."
        )
    sweep = min(k if k is not None else listed, capacity, listed)
    never = ranked.filter(pl.col("last_observed_at").is_null()).height
    if capacity >= listed:
        chosen = ranked
        sweep = 0
    else:
        oldest = ranked.sort(
            [pl.col("last_observed_at").is_not_null(), "last_observed_at", "asin"],
            nulls_last=False,
        ).head(sweep)
        rest = ranked.join(oldest.select("asin"), on="asin", how="anti").head(capacity - sweep)
        chosen = pl.concat([oldest, rest]).sort("urgency_rank")
    left = ranked.join(chosen.select("asin"), on="asin", how="anti")
    ages = left["age_seconds"].drop_nulls()
    return Selection(
        asins=chosen["asin"].to_list(),
        listed=listed,
        capacity=capacity,
        sweep=sweep,
        never_observed=never,
        oldest_left_seconds=float(ages.max()) if ages.len() else None,  # type: ignore[arg-type]
        unobserved_left=left.filter(pl.col("last_observed_at").is_null()).height,
        budget_seconds=budget_seconds,
        period_seconds=period,
        max_source_age=max_source_age,
        pooled_rate=rate,
        guarantee_note=note,
    )


def plan(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    asins: pl.DataFrame,
    settings: Settings,
    *,
    budget_seconds: float,
    now: datetime,
) -> tuple[pl.DataFrame, Selection]:
    """The extract frame ``asins`` cut to the budget's selection, most urgent first (the
    malformed rows kept: they are recorded, never sent), and the selection."""
    valid = asins.filter(pl.col("valid"))["asin"].to_list()
    ranked = scores(con, data_dir, valid, settings, now=now)
    selection = select(
        ranked,
        learned_lanes(con, settings),
        budget_seconds=budget_seconds,
        overhead_seconds=run_overhead_seconds(con),
        max_source_age=settings.guardrails.max_source_age,
    )
    order = pl.DataFrame(
        {"asin": selection.asins, "_order": list(range(len(selection.asins)))},
        schema={"asin": pl.String, "_order": pl.Int64},
    )
    chosen = asins.join(order, on="asin", how="inner").sort("_order").drop("_order")
    return pl.concat([chosen, asins.filter(~pl.col("valid"))]), selection


def summary_sentence(selection: Selection) -> str:
    """``budgeted run: 2,250 of 10,000 ASINs (most urgent; 217 for the max-age sweep),
    oldest observation 3.2 h (max_source_age 12 h)``."""
    oldest = (
        f"oldest observation {_hours(selection.oldest_left_seconds)}"
        if selection.oldest_left_seconds is not None
        else "every listed ASIN observed"
    )
    if selection.unobserved_left:
        oldest += f", {selection.unobserved_left:,} never observed yet"
    return (
        f"budgeted run: {len(selection.asins):,} of {selection.listed:,} ASINs (most urgent; "
        f"{selection.sweep:,} for the max-age sweep), {oldest} "
        f"(max_source_age {_hours(selection.max_source_age)})"
    )


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
