"""Fetch benchmark: invsync's Phase 1 against the quota floor, beside the replaced design.

Stage: bench. Builds a temp warehouse whose listings are the sandbox catalogue's demo
listings (two BASE shops and an eBay account, overlapping), then measures, each run on a
reset sandbox (empty ledger, full buckets):

* invsync: ``extract.run`` + ``fetch.run`` for one operation; figures from the sandbox's
  ledger (calls, 429s, first-to-last call span) and from the fetch result (wall time);
  :func:`measure_invsync_together` runs both operations at once, each client and each
  sandbox in a process of its own;
* the replaced design (:mod:`bench.replaced_design`) on the same listings;
* the pooled pass (:func:`measure_pool`, section ``pool``): one full pass with getItemOffers
  beside getItemOffersBatch (``[amazon] pool``), against the pooled floor and the batch
  operation's own floor, checked ASIN by ASIN on the sandbox's ledger. The other invsync
  measurements keep ``pool = false``: they measure one operation's pacer.

Writes only under the temp work directory it is given.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from bench import replaced_design
from bench.sandbox_process import RunningSandbox, sandbox_process
from pipeline import extract, fetch, pool, runs, warehouse
from pipeline.config import Workspace, open_workspace
from pipeline.pacer import DEFAULT_PLANS
from pipeline.sandbox.catalogue import Catalogue

OPERATION_IDS = {
    "item_offers": "getItemOffersBatch",
    "competitive_pricing": "getCompetitivePricing",
}
BATCH = 20  # ASINs per SP-API call


# --- the world ------------------------------------------------------------------------


def demo_listings(n_asins: int, seed: int = 42) -> dict[str, list[str]]:
    """The sandbox catalogue's demo listings: account → ASINs (valid and invalid)."""
    return Catalogue(seed, n_asins).demo_listings()


def seed_warehouse(con: duckdb.DuckDBPyConnection, listings: dict[str, list[str]]) -> int:
    """Insert the listings as imported ones: shop1/shop2 on BASE, ebay-main on eBay.
    Prices and stock are placeholders (fetch reads only the ASINs). Returns the count."""
    now = datetime.now(UTC)
    base_rows = [
        (account, 70_000_001 + i, asin)
        for account in ("shop1", "shop2")
        for i, asin in enumerate(listings[account])
    ]
    ebay_rows = [("ebay-main", f"s-{asin}-bench", asin) for asin in listings["ebay-main"]]
    base = pl.DataFrame(base_rows, schema=["account_id", "item_id", "asin"], orient="row")
    ebay = pl.DataFrame(ebay_rows, schema=["account_id", "sku", "asin"], orient="row")
    con.register("bench_base", base.with_columns(pl.lit(now).alias("seeded_at")).to_arrow())
    con.register("bench_ebay", ebay.with_columns(pl.lit(now).alias("seeded_at")).to_arrow())
    try:
        con.execute(
            "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
            " status, source, updated_at) select account_id, item_id, asin, 1000, 1, true,"
            " 'listed', 'import', seeded_at from bench_base"
        )
        con.execute(
            "insert into listings_ebay (account_id, sku, asin, price_cents, currency, quantity,"
            " api, status, source, updated_at) select account_id, sku, asin, 999, 'USD', 1,"
            " 'inventory', 'listed', 'import', seeded_at from bench_ebay"
        )
    finally:
        con.unregister("bench_base")
        con.unregister("bench_ebay")
    return len(base_rows) + len(ebay_rows)


def bench_workspace(
    sandbox: RunningSandbox, data_dir: Path, operation: str = "item_offers", *, pooled: bool = False
) -> Workspace:
    """A sandbox-mode workspace aimed at ``sandbox`` with ``operation``, its time scale and
    ``[amazon] pool`` (off unless ``pooled``: most measurements here are one operation's)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / f"invsync-{data_dir.name}.toml"
    config.write_text(
        f'[amazon]\noperation = "{operation}"\npool = {str(pooled).lower()}\n\n'
        f"[sandbox]\ntime_scale = {sandbox.time_scale}\n",
        encoding="utf-8",
    )
    return open_workspace(config=config, data_dir=data_dir, environ=sandbox.env())


def spapi_calls(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in stats["calls"] if c["api"] == "spapi"]


# --- invsync's fetch ----------------------------------------------------------------------


@dataclass
class FetchRun:
    """One invsync fetch, from the sandbox's ledger and the fetch result."""

    operation: str
    time_scale: float
    unique_asins: int  # ASIN-shaped codes sent (valid + the catalogue's invalid ones)
    listings: int
    calls: int  # SP-API requests the sandbox saw (LWA excluded)
    throttled: int  # of which 429
    steady_throttled: int  # 429s after the first accepted call
    span_seconds: float  # server side, first to last SP-API call
    wall_seconds: float  # fetch.run's own wall time (token, calls, snapshot write)
    extract_seconds: float
    retries: int
    statuses: dict[str, int] = field(default_factory=dict)
    gaps: list[float] = field(default_factory=list)  # seconds between accepted calls (server)

    @property
    def expected_calls(self) -> int:
        return math.ceil(self.unique_asins / BATCH)

    @property
    def rate(self) -> float:
        """The scaled documented rate, requests/s."""
        return DEFAULT_PLANS[OPERATION_IDS[self.operation]][0] * self.time_scale

    @property
    def floor_seconds(self) -> float:
        """(ceil(unique/20) − burst) / rate at the sandbox's scale."""
        burst = DEFAULT_PLANS[OPERATION_IDS[self.operation]][1]
        return max(0, self.expected_calls - burst) / self.rate

    @property
    def span_ratio(self) -> float:
        return self.span_seconds / self.floor_seconds if self.floor_seconds else math.nan

    @property
    def wall_ratio(self) -> float:
        return self.wall_seconds / self.floor_seconds if self.floor_seconds else math.nan

    @property
    def excess_ms_per_call(self) -> float:
        """Milliseconds the span exceeds the floor by, per paced call."""
        paced = self.expected_calls - 1
        return 1000 * (self.span_seconds - self.floor_seconds) / paced if paced > 0 else 0.0

    def gap_excess_ms(self, quantile: float) -> float:
        """A quantile of (server-side gap between accepted calls − 1/rate), milliseconds."""
        if not self.gaps:
            return math.nan
        ordered = sorted(self.gaps)
        return 1000 * (ordered[round(quantile * (len(ordered) - 1))] - 1 / self.rate)

    def projected_ratio(self, rate: float) -> float:
        """span / floor at ``rate`` requests/s if the excess per call stays the same number
        of milliseconds (a projection, not a measurement)."""
        return 1 + self.excess_ms_per_call / 1000 * rate

    @property
    def real_quota_seconds(self) -> float:
        """The fetch at the real quota: the paced span × scale, plus the unpaced rest of
        the wall time (token, parsing the last answer, writing the snapshot) unscaled."""
        return self.span_seconds * self.time_scale + max(0.0, self.wall_seconds - self.span_seconds)


def invsync_fetch_once(
    ws: Workspace, con: duckdb.DuckDBPyConnection, sandbox: RunningSandbox, operation: str
) -> FetchRun:
    sandbox.reset()
    run_id = runs.start_run(con, ws, "bench-fetch")
    extracted = extract.run(ws, con, run_id=run_id)
    result = fetch.run(ws, con, run_id, extracted.asins)
    runs.finish_run(con, run_id, "ok", "bench")
    calls = spapi_calls(sandbox.stats())
    statuses = [c["status"] for c in calls]
    first_ok = next((i for i, s in enumerate(statuses) if s != 429), len(statuses))
    times = [c["t"] for c in calls]
    accepted = [c["t"] for c in calls if c["status"] != 429]
    return FetchRun(
        operation=operation,
        time_scale=sandbox.time_scale,
        unique_asins=int(extracted.valid.height),
        listings=extracted.listings,
        calls=len(calls),
        throttled=statuses.count(429),
        steady_throttled=statuses[first_ok + 1 :].count(429),
        span_seconds=(max(times) - min(times)) if times else 0.0,
        wall_seconds=result.seconds,
        extract_seconds=extracted.seconds,
        retries=result.counters.retries,
        statuses=result.statuses,
        gaps=[b - a for a, b in itertools.pairwise(accepted)],
    )


def measure_invsync_together(
    scales: dict[str, float], n_asins: int, work: Path, runs_count: int
) -> dict[str, list[FetchRun]]:
    """``runs_count`` fetches per operation, the operations at the same time: each against a
    sandbox process of its own (its own buckets, as Amazon's are per operation) by a client
    process of its own, so they share neither an interpreter lock nor a token bucket. Keeps
    a long interval affordable within the bench's time budget."""
    context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        sandboxes = {
            operation: stack.enter_context(sandbox_process(scale, n_asins))
            for operation, scale in scales.items()
        }
        with concurrent.futures.ProcessPoolExecutor(len(scales), mp_context=context) as pool:
            futures = {
                operation: pool.submit(measure_invsync, sandbox, work, operation, runs_count)
                for operation, sandbox in sandboxes.items()
            }
            return {operation: future.result() for operation, future in futures.items()}


def measure_invsync(
    sandbox: RunningSandbox, work: Path, operation: str, runs_count: int
) -> list[FetchRun]:
    """``runs_count`` fetches of the demo listings with ``operation``."""
    ws = bench_workspace(sandbox, work / f"fetch-{operation}-{sandbox.time_scale:g}", operation)
    con = warehouse.connect(ws.data_dir)
    try:
        seed_warehouse(con, demo_listings(sandbox.n_asins))
        return [invsync_fetch_once(ws, con, sandbox, operation) for _ in range(runs_count)]
    finally:
        con.close()


# --- the pooled pass --------------------------------------------------------------------


@dataclass
class PoolRun:
    """One pooled full pass, from the sandbox's ledger and the fetch result."""

    time_scale: float
    sent_asins: int  # well-formed ASINs sent (the catalogue's invalid ones included)
    span_seconds: float  # server side, first to last SP-API call
    wall_seconds: float
    pooled_floor_seconds: float  # pool.floor_seconds(sent, lanes at the scaled rates)
    batch_floor_seconds: float  # getItemOffersBatch alone: (ceil(sent / 20) − 1) / rate
    calls: dict[str, int]  # operationId → calls the sandbox saw
    asins: dict[str, int]  # operationId → ASINs its accepted calls answered
    throttled: int
    steady_throttled: int  # 429s after each operation's first accepted call
    answered_once: int  # ASINs the ledger shows answered by exactly one accepted call
    answered_twice: int  # ASINs answered more than once
    missing: int  # ASINs sent but never answered
    recorded_floor_seconds: float  # runs.quota_floor_seconds

    @property
    def batch_ratio(self) -> float:
        return self.span_seconds / self.batch_floor_seconds

    @property
    def pooled_ratio(self) -> float:
        return self.span_seconds / self.pooled_floor_seconds

    @property
    def ledger_ok(self) -> bool:
        return self.answered_twice == 0 and self.missing == 0


def measure_pool(sandbox: RunningSandbox, work: Path, runs_count: int) -> list[PoolRun]:
    """``runs_count`` pooled full passes of the demo listings (item_offers, pool on)."""
    ws = bench_workspace(sandbox, work / f"fetch-pool-{sandbox.time_scale:g}", pooled=True)
    con = warehouse.connect(ws.data_dir)
    try:
        seed_warehouse(con, demo_listings(sandbox.n_asins))
        return [pool_fetch_once(ws, con, sandbox) for _ in range(runs_count)]
    finally:
        con.close()


def pool_fetch_once(
    ws: Workspace, con: duckdb.DuckDBPyConnection, sandbox: RunningSandbox
) -> PoolRun:
    sandbox.reset()
    run_id = runs.start_run(con, ws, "bench-pool")
    extracted = extract.run(ws, con, run_id=run_id)
    result = fetch.run(ws, con, run_id, extracted.asins)
    runs.finish_run(con, run_id, "ok", "bench")
    calls = spapi_calls(sandbox.stats())
    sent = extracted.valid["asin"].to_list()
    scale = sandbox.time_scale
    lanes = pool.lanes_for(
        "item_offers", rates={name: pool.LANES[name][2] * scale for name in pool.LANES}
    )
    answered = [c for c in calls if c["status"] in (200, 400)]  # 400: getItemOffers' invalid
    counts: dict[str, int] = {}
    for call in answered:
        for asin in call["items"]:
            counts[asin] = counts.get(asin, 0) + 1
    by_op: dict[str, int] = {}
    asins_by_op: dict[str, int] = {}
    steady = 0
    seen_ok: set[str] = set()
    for call in calls:
        op = call["operation"]
        by_op[op] = by_op.get(op, 0) + 1
        if call["status"] == 429:
            steady += op in seen_ok
        else:
            seen_ok.add(op)
            asins_by_op[op] = asins_by_op.get(op, 0) + len(call["items"])
    times = [c["t"] for c in calls]
    floor = con.execute(
        "select quota_floor_seconds from runs where run_id = $r", {"r": run_id}
    ).fetchall()[0][0]
    return PoolRun(
        time_scale=scale,
        sent_asins=len(sent),
        span_seconds=(max(times) - min(times)) if times else 0.0,
        wall_seconds=result.seconds,
        pooled_floor_seconds=pool.floor_seconds(len(sent), lanes),
        batch_floor_seconds=pool.single_floor_seconds(len(sent), lanes[0]),
        calls=by_op,
        asins=asins_by_op,
        throttled=sum(c["status"] == 429 for c in calls),
        steady_throttled=steady,
        answered_once=sum(counts.get(a, 0) == 1 for a in sent),
        answered_twice=sum(counts.get(a, 0) > 1 for a in sent),
        missing=sum(counts.get(a, 0) == 0 for a in sent),
        recorded_floor_seconds=float(floor or 0.0),
    )


# --- the replaced design -------------------------------------------------------------------


@dataclass
class ReplacedRun:
    result: replaced_design.ReplacedResult
    time_scale: float
    batch_interval: float
    single_interval: float
    ledger_batch_calls: int
    ledger_single_calls: int
    ledger_throttled: int
    unique_asins: int

    @property
    def calls(self) -> int:
        return self.ledger_batch_calls + self.ledger_single_calls

    @property
    def real_quota_seconds(self) -> float:
        return self.result.real_quota_seconds


def listed_asins(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, list[str]], list[str]]:
    """What the old daemon read from its master DB: each BASE shop's ASINs, eBay's ASINs."""
    base: dict[str, list[str]] = {}
    for account, asin in con.execute(
        "select account_id, asin from listings_base where status = 'listed'"
        " order by account_id, item_id"
    ).fetchall():
        base.setdefault(account, []).append(asin)
    ebay = [
        row[0]
        for row in con.execute(
            "select asin from listings_ebay where status = 'listed' order by account_id, sku"
        ).fetchall()
    ]
    return base, ebay


def measure_replaced(
    sandbox: RunningSandbox,
    work: Path,
    runs_count: int,
    *,
    batch_interval: float = replaced_design.BATCH_INTERVAL,
    single_interval: float = replaced_design.SINGLE_INTERVAL,
    label: str = "replaced",
) -> list[ReplacedRun]:
    ws = bench_workspace(sandbox, work / f"fetch-{label}")
    con = warehouse.connect(ws.data_dir)
    try:
        seed_warehouse(con, demo_listings(sandbox.n_asins))
        base, ebay = listed_asins(con)
    finally:
        con.close()
    unique = len({*ebay, *(a for asins in base.values() for a in asins)})
    measured = []
    for _ in range(runs_count):
        sandbox.reset()
        result = replaced_design.run(
            ws, base, ebay, time_scale=sandbox.time_scale,
            batch_interval=batch_interval, single_interval=single_interval,
        )  # fmt: skip
        per_op = sandbox.stats(calls=False)["per_operation"]
        batch = per_op.get("spapi.getItemOffersBatch", {})
        single = per_op.get("spapi.getItemOffers", {})
        measured.append(
            ReplacedRun(
                result=result,
                time_scale=sandbox.time_scale,
                batch_interval=batch_interval,
                single_interval=single_interval,
                ledger_batch_calls=int(batch.get("calls", 0)),
                ledger_single_calls=int(single.get("calls", 0)),
                ledger_throttled=int(batch.get("throttled", 0)) + int(single.get("throttled", 0)),
                unique_asins=unique,
            )
        )
        time.sleep(0.05)
    return measured
