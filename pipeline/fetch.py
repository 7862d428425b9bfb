"""Phase 1, fetch: every valid ASIN from SP-API exactly once, paced at the quota floor.

Stage: fetch (the ONLY SP-API caller). Reads the ASIN frame of :mod:`pipeline.extract`
(or, on ``--resume``, the run's ``fetch_plan``, partial snapshot and checkpoint) and earlier
snapshots for fallback; writes ``fetch_plan`` rows, a checkpoint after every batch
(``staging/fetch/run_id=…/``), the run's snapshot
(``snapshots/amazon/dt=…/run_id=…/part-0.parquet``) and the run's fetch figures in ``runs``.

Three steps, so the long one holds no warehouse connection: :func:`prepare` (the warehouse:
the plan), :func:`collect` (SP-API and the snapshot file only: minutes to an hour and more)
and :func:`record` (the warehouse: the figures and outcome). :func:`run` does all three on
one connection.

One run makes ``ceil(valid ASINs / 20)`` batch calls, plus the retries that throttling or
errors forced, plus ONE retry pass — batched again — for the ASINs whose call failed:

* a 429 waits for the bucket (:class:`pipeline.pacer.Pacer`), never a blind sleep;
* a 5xx, timeout, connection error or unreadable answer backs off exponentially with
  jitter, a bounded number of times, then its ASINs are ``api_error``;
* a refused token is fetched again once; a second refusal, or LWA refusing the
  credentials, stops the run at once (:class:`~pipeline.errors.ApiAuthError`);
* an ``api_error`` is never a fact: it becomes ``fallback`` (the last good observation
  younger than ``max_fallback_age``, flagged with its run and age) or ``unknown``.

SIGINT/SIGTERM finish the batch in flight (or abandon it if it is waiting to retry),
write what was fetched as a valid snapshot and mark the run ``interrupted``;
``invsync fetch --resume`` then fetches only what that run lacks. A ``kill -9`` (or a power
cut) writes nothing more, so every answered batch is checkpointed as it comes (one small
Parquet part, renamed into place, ~1.5 ms against one call per 10 s interval): a resume reads
the checkpoint and asks again only for the batch that was in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl
import tenacity

from pipeline import pool, runs, snapshots
from pipeline.clients.spapi import (
    BatchAnswer,
    Observation,
    SpApiCallError,
    SpApiClient,
    SpApiForbidden,
    SpApiThrottled,
    distinct,
)
from pipeline.config import Workspace
from pipeline.errors import ApiAuthError, UsageError
from pipeline.interrupt import StopRequest, stopping_on_signals
from pipeline.pacer import Pacer
from pipeline.pool import Lane
from pipeline.sql import query_frame, run_sql
from pipeline.statuses import FINAL_STATUSES, GOOD_STATUSES
from pipeline.warehouse import transaction

logger = logging.getLogger(__name__)

MAX_ERROR_TRIES = 4  # attempts per batch when calls fail with 5xx/timeouts (1 + 3 retries)
MAX_THROTTLED_TRIES = 40  # attempts per batch while answered 429 (a storm, a rate cut)
BACKOFF_CAP_SECONDS = 120.0  # longest back-off between two tries after an error


class FetchInterrupted(Exception):
    """A stop was asked for while waiting; the batch waiting is abandoned."""


# --- progress ----------------------------------------------------------------------------


class FetchProgress(Protocol):
    """What fetch reports while it runs (the CLI draws it)."""

    def start(self, *, asins: int, calls: int, eta_seconds: float, operation: str) -> None: ...

    def update(
        self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float
    ) -> None: ...

    def finish(self) -> None: ...


class SilentProgress:
    def start(self, *, asins: int, calls: int, eta_seconds: float, operation: str) -> None:
        pass

    def update(self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float) -> None:
        pass

    def finish(self) -> None:
        pass


def batches(asins: Sequence[str], size: int) -> list[list[str]]:
    """``asins`` in consecutive batches of ``size`` (the last may be shorter)."""
    return [list(asins[i : i + size]) for i in range(0, len(asins), size)]


def malformed_rows(asins: Sequence[str], run_id: str, operation: str) -> list[dict[str, Any]]:
    """Snapshot rows for ASINs that are not ASINs: recorded, never sent."""
    return [
        {"run_id": run_id, "asin": a, "operation": operation, "status": "invalid_asin",
         "error_code": "MalformedAsin"}
        for a in asins
    ]  # fmt: skip


def observation_row(
    observation: Observation, run_id: str, operation: str, fetched_at: datetime
) -> dict[str, Any]:
    row = dict(vars(observation))
    del row["retry_in_run"]  # how the fetch treats the failure, not an observation
    row.update(run_id=run_id, operation=operation, fetched_at=fetched_at)
    return row


def resolve_failures(
    frame: pl.DataFrame, last_good: pl.DataFrame, *, max_age_seconds: float
) -> pl.DataFrame:
    """Every ``api_error`` row becomes ``fallback`` (the last good observation, younger
    than ``max_age_seconds``, with its run, its fetched_at and its age) or ``unknown``
    (no price, no stock). Other rows pass through. The failure's error code is kept."""
    failed = frame.filter(pl.col("status") == "api_error")
    if failed.is_empty():
        return frame
    kept = frame.filter(pl.col("status") != "api_error")
    fresh = last_good.filter(pl.col("age_seconds") < max_age_seconds) if last_good.height else None
    rows: list[dict[str, Any]] = []
    sources = {r["asin"]: r for r in fresh.iter_rows(named=True)} if fresh is not None else {}
    for row in failed.iter_rows(named=True):
        source = sources.get(row["asin"])
        if source is None:
            rows.append({**row, "status": "unknown"})
            continue
        fact = {c: source[c] for c in snapshots.SNAPSHOT_SCHEMA if c in source}
        fact.update(
            run_id=row["run_id"],
            operation=row["operation"],
            status="fallback",
            error_code=row["error_code"],
            fallback_from_run=source["run_id"],
            fallback_age_seconds=float(source["age_seconds"]),
        )
        rows.append(fact)
    resolved = snapshots.snapshot_frame(rows)
    return pl.concat([snapshots.conform(kept), resolved]).sort("asin")


# --- results --------------------------------------------------------------------------------


@dataclass
class FetchCounters:
    """Calls this fetch made (and, on resume, the run's earlier ones added)."""

    calls: int = 0  # SP-API requests put on the wire
    throttled: int = 0  # answered 429
    retries: int = 0  # calls that re-sent ASINs already sent in this run
    retry_pass_calls: int = 0  # calls of the one batched retry pass
    batches: int = 0  # first calls of main-pass batches


@dataclass(frozen=True)
class FetchResult:
    run_id: str
    snapshot: Path
    statuses: dict[str, int]  # rows per snapshot status
    counters: FetchCounters
    seconds: float  # this fetch's wall time
    quota_floor_seconds: float  # pooled: max over lanes of (accepted calls − burst) / rate
    rate: float  # requests/s in use at the end (the configured operation's lane)
    operation: str
    interrupted_by: int | None = None  # signal number when stopped
    resumed: bool = False
    sent_asins: int = 0  # distinct ASINs this fetch sent to Amazon
    asins_planned: int = 0  # valid ASINs of the run
    # per lane (snapshot operation): the run's calls, this fetch's final rates (requests/s)
    # and the ASINs this fetch's answers came from
    lane_calls: dict[str, int] = field(default_factory=dict)
    lane_rates: dict[str, float] = field(default_factory=dict)
    lane_asins: dict[str, int] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.interrupted_by is not None

    def count(self, status: str) -> int:
        return self.statuses.get(status, 0)


# --- the fetch -------------------------------------------------------------------------------


@dataclass
class _Queue:
    """One pass's ASINs in plan order, shared by every lane: each lane takes the next
    ``batch`` of them when its quota slot comes, so the lanes finish together."""

    asins: deque[str]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, count: int) -> list[str]:
        with self.lock:
            return [self.asins.popleft() for _ in range(min(count, len(self.asins)))]

    def __len__(self) -> int:
        return len(self.asins)


@dataclass
class _Shared:
    """What the lanes of one fetch share: the answers, the checkpoint and the progress,
    each touched under one lock (a lane calls in; only the bookkeeping is serialised)."""

    results: dict[str, tuple[Observation, datetime, str]]
    progress: FetchProgress
    lanes: list[Lane]
    on_batch: Callable[[list[str]], None] = lambda batch: None  # after each batch's answer
    fetchers: list[_Fetcher] = field(default_factory=list)
    asins_done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counters(self) -> FetchCounters:
        """The calls of every lane so far."""
        total = FetchCounters()
        for one in self.fetchers:
            total.calls += one.counters.calls
            total.throttled += one.counters.throttled
            total.retries += one.counters.retries
            total.retry_pass_calls += one.counters.retry_pass_calls
            total.batches += one.counters.batches
        return total

    def floor_seconds(self) -> float:
        """The pooled floor of the calls answered so far: lanes run in parallel, so the
        longest lane's (calls − burst) intervals."""
        return max((one.pacer.floor_seconds for one in self.fetchers), default=0.0)

    def remaining_eta(self, remaining_asins: int) -> float:
        """Seconds of quota the ASINs not yet taken need, at the rates in force (the pooled
        rate: within one interval of :func:`pipeline.pool.floor_seconds`, and cheap enough
        to compute after every call)."""
        rates = {one.lane.operation: one.pacer.rate for one in self.fetchers}
        return remaining_asins / pool.pooled_rate(pool.with_rates(self.lanes, rates))

    def answered(
        self, batch: list[str], found: dict[str, tuple[Observation, datetime, str]],
        *, retry_pass: bool, remaining: int,
    ) -> None:  # fmt: skip
        with self.lock:
            self.results.update(found)
            self.on_batch(batch)
            if not retry_pass:
                self.asins_done += len(batch)
            total = self.counters()
            self.progress.update(
                asins_done=self.asins_done, calls=total.calls, throttled=total.throttled,
                eta_seconds=self.remaining_eta(remaining),
            )  # fmt: skip


@dataclass
class _Fetcher:
    """One lane of a fetch: its client, its pacer (its own learned rate, its own 429s) and
    its calls, taking batches from the pass's shared queue."""

    lane: Lane
    client: SpApiClient
    pacer: Pacer
    stop: StopRequest
    shared: _Shared
    counters: FetchCounters = field(default_factory=FetchCounters)
    sent: set[str] = field(default_factory=set)
    _jitter: random.Random = field(default_factory=random.Random)
    _token_refreshed: bool = False

    def call(self, batch: list[str], *, first_is_retry: bool, waited: bool) -> BatchAnswer:
        """One batch, retried as the failure allows; raises the last SpApiCallError.
        ``waited``: the pacer's wait for the first try is already over."""
        tries = {"errors": 0, "throttled": 0, "attempts": 0}

        def attempt() -> BatchAnswer:
            if (tries["attempts"] > 0 or not waited) and not self.pacer.wait(self.stop.sleep):
                raise FetchInterrupted
            is_retry = tries["attempts"] > 0 or first_is_retry
            tries["attempts"] += 1
            try:
                answer = self.client.fetch_batch(batch)
            except SpApiCallError as exc:
                self._record(exc.exchange, is_retry, throttled=isinstance(exc, SpApiThrottled))
                if isinstance(exc, SpApiThrottled):
                    tries["throttled"] += 1
                elif isinstance(exc, SpApiForbidden):
                    if self._token_refreshed:
                        raise ApiAuthError(
                            "SP-API refused a freshly issued access token; check that the app "
                            "is authorised for the Product Pricing API and re-authorise it in "
                            "Seller Central."
                        ) from None
                    self._token_refreshed = True
                    self.client.forget_token()
                else:
                    tries["errors"] += 1
                raise
            self._record(answer.exchange, is_retry, throttled=False)
            self._token_refreshed = False
            self.sent.update(batch)
            return answer

        def should_retry(exc: BaseException) -> bool:
            if isinstance(exc, SpApiForbidden):
                return True  # the token was dropped above; the next try fetches a new one
            return isinstance(exc, SpApiCallError) and exc.retryable

        def stop_trying(state: tenacity.RetryCallState) -> bool:
            return (
                tries["errors"] >= MAX_ERROR_TRIES
                or tries["throttled"] >= MAX_THROTTLED_TRIES
                or self.stop.is_set()
            )

        def backoff(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, SpApiThrottled | SpApiForbidden):
                return 0.0  # the pacer waits for the bucket
            # Exponential in intervals of the quota, with full jitter in its upper half.
            ceiling = min(BACKOFF_CAP_SECONDS, self.pacer.interval * 2 ** tries["errors"])
            return ceiling * self._jitter.uniform(0.5, 1.0)

        def sleep(seconds: float) -> None:
            if not self.stop.sleep(seconds):
                raise FetchInterrupted

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(should_retry),
            stop=stop_trying,
            wait=backoff,
            sleep=sleep,
            reraise=True,
        )
        return retrying(attempt)

    def _record(self, exchange: Any, is_retry: bool, *, throttled: bool) -> None:
        if exchange is None or exchange.sent_at is None:
            return
        self.counters.calls += 1
        if is_retry:
            self.counters.retries += 1
        else:
            self.counters.batches += 1
        self.pacer.sent(exchange.sent_at)
        if throttled:
            self.counters.throttled += 1
            self.pacer.throttled(exchange.answered_at or self.pacer.clock())
        elif exchange.answered_at is not None:
            change = self.pacer.answered(
                exchange.sent_at, exchange.answered_at, exchange.rate_header, exchange.size
            )
            if change is not None:
                logger.info(
                    "SP-API %s rate changed from %s to %s requests/s",
                    self.client.operation_id, change.old_rate, change.new_rate,
                )  # fmt: skip

    def work(self, queue: _Queue, *, retry_pass: bool) -> bool:
        """Take batches from ``queue`` as this lane's quota allows until it is empty; False
        when a stop ended it early. The batch is taken when the slot has come, not before,
        so a lane never holds ASINs another lane could answer sooner."""
        operation = self.lane.operation
        while True:
            if self.stop.is_set() or not self.pacer.wait(self.stop.sleep):
                return False
            batch = queue.take(self.lane.batch)
            if not batch:
                return True
            calls_before = self.counters.calls
            found: dict[str, tuple[Observation, datetime, str]] = {}
            try:
                answer = self.call(batch, first_is_retry=retry_pass, waited=True)
            except FetchInterrupted:
                return False  # the batch waiting to retry is abandoned: a resume asks again
            except SpApiCallError as exc:
                failed_at = datetime.now(UTC)
                for asin in batch:
                    found[asin] = (Observation.failed(asin, exc.code), failed_at, operation)
            else:
                answered_at = datetime.now(UTC)
                for observation in answer.observations:
                    found[observation.asin] = (observation, answered_at, operation)
            finally:
                if retry_pass:
                    self.counters.retry_pass_calls += self.counters.calls - calls_before
            self.shared.answered(batch, found, retry_pass=retry_pass, remaining=len(queue))


def _pooled_pass(
    fetchers: list[_Fetcher], asins: list[str], *, retry_pass: bool,
    stop: StopRequest, halt: StopRequest,
) -> bool:  # fmt: skip
    """One pass over ``asins``: one worker thread per lane on one shared queue. The
    caller's ``stop`` (a signal) halts every lane after its call in flight, and so does a
    lane's refused credentials (raised here once all lanes stopped). False when stopped."""
    queue = _Queue(deque(asins))
    finished: dict[str, bool] = {}
    failures: list[BaseException] = []

    def work(fetcher: _Fetcher) -> None:
        try:
            finished[fetcher.lane.operation] = fetcher.work(queue, retry_pass=retry_pass)
        except BaseException as exc:  # handed to the calling thread
            failures.append(exc)
            halt.set()

    threads = [
        threading.Thread(target=work, args=(one,), name=f"fetch-{one.lane.operation}")
        for one in fetchers
    ]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            if stop.event.wait(0.02):  # a signal (or the caller) asked to stop: halt all lanes
                halt.set(stop.signum)
                break
        for thread in threads:
            thread.join()
    except BaseException:  # a second Ctrl-C: the lanes stop after their call in flight too
        halt.set(stop.signum)
        raise
    if failures:
        raise failures[0]
    return all(finished.get(one.lane.operation, False) for one in fetchers)


@dataclass
class FetchPrepared:
    """What :func:`prepare` read from and wrote to the warehouse: everything the network
    loop (:func:`collect`) needs, so that loop runs with no warehouse connection open."""

    run_id: str
    operation: str
    plan: pl.DataFrame  # the run's fetch plan (extract frame, or fetch_plan on resume)
    kept: pl.DataFrame  # final rows of the run's partial snapshot and checkpoint (resume)
    previous: dict[str, Any]  # the run's counters before this fetch (resume), else {}
    checkpointed: dict[str, Any]  # the counters of the run's checkpoint (part of previous)
    resume: bool
    valid: list[str]  # the well-formed ASINs of the plan, each once
    malformed: list[str]
    todo: list[str]  # the valid ASINs still to fetch
    started: float  # time.monotonic() when this fetch began


@dataclass
class FetchCollected:
    """What :func:`collect` did: the run's snapshot written, nothing recorded yet."""

    snapshot: Path
    statuses: dict[str, int]
    counters: FetchCounters  # this fetch's calls only
    fetched: int  # ASINs with an answer or a failure in this fetch
    seconds: float  # since :attr:`FetchPrepared.started`
    quota_floor_seconds: float
    rate: float
    interrupted: bool
    signum: int | None
    auth_error: ApiAuthError | None
    sent_asins: int
    lane_calls: dict[str, int] = field(default_factory=dict)  # SP-API calls per lane
    lane_rates: dict[str, float] = field(default_factory=dict)  # requests/s at the end
    lane_asins: dict[str, int] = field(default_factory=dict)  # ASINs each lane answered


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    asins: pl.DataFrame | None,
    *,
    progress: FetchProgress | None = None,
    stop: StopRequest | None = None,
    resume: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    initial_rate: float | None = None,
    initial_rates: Mapping[str, float] | None = None,
) -> FetchResult:
    """Fetch the run's ASINs into its snapshot and record the figures on ``runs``.

    ``asins`` is the extract frame (:class:`pipeline.schemas.Asins`); with ``resume`` it
    may be None: the run's ``fetch_plan`` says what to fetch and its snapshot what it has.
    The run's outcome is set only when the fetch is interrupted (``interrupted``) or the
    credentials are refused (``failed``); the caller finishes a successful run.
    ``initial_rate`` (requests/s) replaces the documented default of the configured
    operation until the first ``x-amzn-RateLimit-Limit`` header, and scales the other lanes
    by the same factor; ``initial_rates`` (snapshot operation → requests/s) names each
    lane's instead (:func:`lane_rates`); ``now`` is the clock fallback ages are measured on.

    This holds ``con`` throughout; a caller that must not hold the warehouse during the
    network loop (``sync``, ``invsync fetch``) calls :func:`prepare`, :func:`collect` and
    :func:`record` itself, each of the two warehouse steps on a connection of its own.
    """
    prepared = prepare(ws, con, run_id, asins, resume=resume)
    collected = collect(
        ws, prepared, progress=progress, stop=stop, now=now, initial_rate=initial_rate,
        initial_rates=initial_rates,
    )  # fmt: skip
    return record(con, prepared, collected)


def prepare(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    asins: pl.DataFrame | None,
    *,
    resume: bool = False,
) -> FetchPrepared:
    """The warehouse before the loop: write the run's ``fetch_plan`` from ``asins``, or,
    with ``resume``, read it back with the run's earlier counters and partial snapshot."""
    started = time.monotonic()
    operation = ws.settings.amazon.operation
    previous: dict[str, Any] = {}
    checkpointed: dict[str, Any] = {}
    kept = snapshots.empty_snapshot()
    if resume:
        plan = query_frame(con, "fetch_plan_select", {"run_id": run_id})
        if plan.is_empty():
            raise UsageError(
                f"Run {run_id} has no fetch plan to resume; start a new one with `invsync fetch`."
            )
        kept, checkpointed = _resumed_rows(ws.data_dir, run_id)
        previous = _previous_counters(con, run_id)
        if checkpointed:  # an attempt died without writing its snapshot (kill -9)
            previous = {k: previous.get(k, 0) + checkpointed.get(k, 0) for k in _COUNTER_KEYS}
            previous["interruptions"] = previous.get("interruptions", 0) + 1
    else:
        if asins is None:
            raise ValueError("a new fetch needs the extract frame")
        plan = asins
        with transaction(con):
            con.execute("delete from fetch_plan where run_id = $r", {"r": run_id})
            con.register("plan_asins", plan.select(
                "asin", "valid", "listings", "platforms", "accounts"
            ).to_arrow())  # fmt: skip
            run_sql(con, "fetch_plan_insert", {"run_id": run_id})
            con.unregister("plan_asins")

    valid = distinct(plan.filter(pl.col("valid"))["asin"].to_list())
    have = set(kept["asin"].to_list())
    return FetchPrepared(
        run_id=run_id,
        operation=operation,
        plan=plan,
        kept=kept,
        previous=previous,
        checkpointed=checkpointed,
        resume=resume,
        valid=valid,
        malformed=plan.filter(~pl.col("valid"))["asin"].to_list(),
        todo=[a for a in valid if a not in have],
        started=started,
    )


def _resumed_rows(data_dir: Path, run_id: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The rows a resumed fetch keeps — those that are final (answered for good) in the
    run's partial snapshot or in its checkpoint, the latest per ASIN — and the counters of
    the checkpoint (calls an attempt killed before its snapshot made)."""
    frames = []
    if snapshots.snapshot_exists(data_dir, run_id):
        frames.append(snapshots.read_snapshot(data_dir, run_id))
    checkpoint, counters = snapshots.read_checkpoint(data_dir, run_id)
    frames.append(checkpoint)
    rows = pl.concat([snapshots.conform(f) for f in frames]).filter(
        pl.col("status").is_in(FINAL_STATUSES) & pl.col("fetched_at").is_not_null()
    )
    latest = rows.unique("asin", keep="last", maintain_order=True)
    return snapshots.conform(latest), counters


@dataclass
class _Checkpoint:
    """Writes each answered batch of a fetch into the run's checkpoint, with the calls so
    far (the checkpoint's earlier counters plus this fetch's)."""

    data_dir: Path
    prepared: FetchPrepared
    shared: _Shared  # the answers and every lane's counters (called under its lock)
    number: int = 0
    broken: bool = False

    def __post_init__(self) -> None:
        self.number = snapshots.next_checkpoint_part(self.data_dir, self.prepared.run_id)

    def __call__(self, batch: list[str]) -> None:
        if self.broken:
            return
        prepared = self.prepared
        rows = []
        results = self.shared.results
        for asin in batch:
            if asin in results:
                observation, fetched_at, operation = results[asin]
                rows.append(observation_row(observation, prepared.run_id, operation, fetched_at))
        base = prepared.checkpointed
        counters = self.shared.counters()
        mine = {
            "calls": counters.calls, "throttled": counters.throttled,
            "retries": counters.retries, "retry_pass_calls": counters.retry_pass_calls,
            "fetch_seconds": time.monotonic() - prepared.started,
            "quota_floor_seconds": self.shared.floor_seconds(),
        }  # fmt: skip
        try:
            snapshots.write_checkpoint(
                self.data_dir, prepared.run_id, self.number, rows,
                {k: base.get(k, 0) + v for k, v in mine.items()},
            )  # fmt: skip
        except OSError as exc:
            self.broken = True  # the fetch goes on; only a kill -9 would now lose its work
            logger.warning(
                "Could not write the fetch checkpoint of run %s (%s); the fetch goes on, but "
                "a killed fetch would start over — check that %s is writable.",
                prepared.run_id, exc.strerror or type(exc).__name__, self.data_dir,
            )  # fmt: skip
            return
        self.number += 1


def lane_rates(
    operation: str, *, pooled: bool, initial_rate: float | None,
    initial_rates: Mapping[str, float] | None,
) -> dict[str, float] | None:  # fmt: skip
    """The starting rate of each lane (requests/s), None for the documented defaults.
    ``initial_rates`` names them per snapshot operation; ``initial_rate`` alone is the
    configured operation's, and the other lanes are scaled by the same factor over their
    documented defaults (a sandbox at time scale 20 runs every operation 20 × faster)."""
    if initial_rates:
        return dict(initial_rates)
    if initial_rate is None:
        return None
    names = pool.POOLS[operation] if pooled else (operation,)
    return pool.scaled_rates(operation, initial_rate, names)


def collect(
    ws: Workspace,
    prepared: FetchPrepared,
    *,
    progress: FetchProgress | None = None,
    stop: StopRequest | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    initial_rate: float | None = None,
    initial_rates: Mapping[str, float] | None = None,
) -> FetchCollected:
    """The network loop and the run's snapshot: SP-API and Parquet files only, never the
    warehouse. A refused credential is kept in the result for :func:`record` to record.

    The ASINs are spread over every lane of the pool (:func:`pipeline.pool.lanes_for`:
    getItemOffersBatch and getItemOffers for ``item_offers`` with ``[amazon] pool``), one
    worker thread per lane, each paced on its own bucket, all taking from one queue in
    ``prepared.todo`` order. ``initial_rate`` / ``initial_rates``: see :func:`lane_rates`."""
    amazon = ws.settings.amazon
    run_id, operation, todo = prepared.run_id, prepared.operation, prepared.todo
    progress = progress or SilentProgress()
    rows: list[dict[str, Any]] = malformed_rows(prepared.malformed, run_id, operation)
    rates = lane_rates(
        operation, pooled=amazon.pool, initial_rate=initial_rate, initial_rates=initial_rates
    )
    lanes = pool.lanes_for(operation, pool=amazon.pool, batch_size=amazon.batch_size, rates=rates)
    stop = stop or StopRequest()
    halt = StopRequest()  # every lane stops on it: a stop asked for, or a lane's refusal
    shared = _Shared(results={}, progress=progress, lanes=lanes)
    interrupted = False
    auth_error: ApiAuthError | None = None
    with stopping_on_signals(stop), contextlib.ExitStack() as stack:
        if todo:
            for one in lanes:
                client = stack.enter_context(SpApiClient(ws, one.operation))
                # 0.75 % of an interval of safety (75 ms of 10 s; at 0.5 % the bench saw one
                # 429 in 1,500 calls at 200 ms), never under 1 ms (at the 20-40 ms intervals
                # of the freshness bench, arrivals came up to 0.64 ms early); the last 2 ms
                # of each wait spin (a timed sleep wakes 0.2-0.3 ms late on average)
                pacer = Pacer(
                    one.rate, one.burst, safety=0.0075, spin_seconds=0.002,
                    min_safety_seconds=0.001,
                )  # fmt: skip
                shared.fetchers.append(_Fetcher(one, client, pacer, halt, shared))
            shared.on_batch = _Checkpoint(ws.data_dir, prepared, shared)
            shares = pool.split(len(todo), lanes)
            calls_planned = sum(
                math.ceil(shares.get(one.operation, 0) / one.batch) for one in lanes
            )
            progress.start(
                asins=len(todo), calls=calls_planned,
                eta_seconds=pool.floor_seconds(len(todo), lanes),
                operation=" + ".join(one.operation for one in lanes),
            )  # fmt: skip
            try:
                with contextlib.suppress(SpApiCallError):
                    # one token for every lane (the library caches it per refresh token); a
                    # failure here is retried by the first batch
                    shared.fetchers[0].client.warm_token()
                completed = _pooled_pass(
                    shared.fetchers, todo, retry_pass=False, stop=stop, halt=halt
                )
                failed = {
                    a for a, (o, _, _) in shared.results.items()
                    if o.status == "api_error" and o.retry_in_run
                }  # fmt: skip
                if completed and failed:
                    logger.info("retry pass: %d ASINs in one batched pass", len(failed))
                    completed = _pooled_pass(
                        shared.fetchers, [a for a in todo if a in failed], retry_pass=True,
                        stop=stop, halt=halt,
                    )  # fmt: skip
                interrupted = not completed
            except ApiAuthError as exc:
                auth_error = exc
            finally:
                progress.finish()

    results = shared.results
    for observation, fetched_at, lane_operation in results.values():
        rows.append(observation_row(observation, run_id, lane_operation, fetched_at))
    frame = pl.concat([snapshots.conform(prepared.kept), snapshots.snapshot_frame(rows)])
    failures = frame.filter(pl.col("status") == "api_error")["asin"].to_list()
    moment = now()
    last_good = snapshots.last_good_observations(
        ws.data_dir, failures, now=moment, max_age_seconds=amazon.max_fallback_age,
        exclude_run=run_id,
    )  # fmt: skip
    frame = resolve_failures(frame, last_good, max_age_seconds=amazon.max_fallback_age)
    path = snapshots.write_snapshot(ws.data_dir, run_id, frame)
    snapshots.remove_checkpoint(ws.data_dir, run_id)  # the snapshot holds all it held
    answered: dict[str, int] = {}
    for _, _, lane_operation in results.values():
        answered[lane_operation] = answered.get(lane_operation, 0) + 1
    sent: set[str] = set()
    for fetcher in shared.fetchers:
        sent |= fetcher.sent
    return FetchCollected(
        snapshot=path,
        statuses={str(s): int(n) for s, n in frame.group_by("status").len().iter_rows()},
        counters=shared.counters(),
        fetched=len(results),
        seconds=time.monotonic() - prepared.started,
        quota_floor_seconds=shared.floor_seconds(),
        rate=shared.fetchers[0].pacer.rate if shared.fetchers else lanes[0].rate,
        interrupted=interrupted,
        signum=stop.signum if interrupted else None,
        auth_error=auth_error,
        sent_asins=len(sent),
        lane_calls={one.lane.operation: one.counters.calls for one in shared.fetchers},
        lane_rates={one.lane.operation: one.pacer.rate for one in shared.fetchers},
        lane_asins=answered,
    )


def record(
    con: duckdb.DuckDBPyConnection, prepared: FetchPrepared, collected: FetchCollected
) -> FetchResult:
    """The warehouse after the loop: the run's fetch figures (added to its earlier ones on
    resume), its outcome when interrupted or refused; raises the refusal once recorded."""
    run_id, plan, previous = prepared.run_id, prepared.plan, prepared.previous
    statuses = collected.statuses
    total = _add_counters(previous, collected.counters)
    floor = previous.get("quota_floor_seconds", 0.0) + collected.quota_floor_seconds
    runs.update_run(
        con,
        run_id,
        operation=prepared.operation,
        listings=int(plan["listings"].sum()) if plan.height else 0,
        unique_asins=plan.height,
        invalid_asins=statuses.get("invalid_asin", 0),
        spapi_calls=total.calls,
        spapi_429s=total.throttled,
        spapi_retries=total.retries,
        fetched_ok=sum(statuses.get(s, 0) for s in GOOD_STATUSES),
        fallbacks=statuses.get("fallback", 0),
        unknowns=statuses.get("unknown", 0),
        fetch_seconds=previous.get("fetch_seconds", 0.0) + collected.seconds,
        quota_floor_seconds=floor,
    )
    interrupted = collected.interrupted
    lane_calls = dict(previous.get("operation_calls") or {})
    for name, calls in collected.lane_calls.items():
        lane_calls[name] = lane_calls.get(name, 0) + calls
    lane_rates = {**(previous.get("operation_rates") or {}), **collected.lane_rates}
    run_sql(
        con,
        "fetch_record_run",
        {
            "run_id": run_id,
            "retry_pass_calls": total.retry_pass_calls,
            "rate": collected.rate,
            "interruptions": previous.get("interruptions", 0) + (1 if interrupted else 0),
            "operation_calls": json.dumps(lane_calls, sort_keys=True),
            "operation_rates": json.dumps(lane_rates, sort_keys=True),
        },
    )
    if collected.auth_error is not None:
        runs.finish_run(con, run_id, "failed", collected.auth_error.message)
        raise collected.auth_error
    if interrupted:
        runs.finish_run(
            con, run_id, "interrupted",
            f"Fetch stopped after {collected.fetched} of {len(prepared.todo)} ASINs; "
            "`invsync fetch --resume` fetches the rest.",
        )  # fmt: skip
    return FetchResult(
        run_id=run_id,
        snapshot=collected.snapshot,
        statuses=statuses,
        counters=total,
        seconds=collected.seconds,
        quota_floor_seconds=collected.quota_floor_seconds,
        rate=collected.rate,
        operation=prepared.operation,
        interrupted_by=(collected.signum or signal.SIGINT) if interrupted else None,
        resumed=prepared.resume,
        sent_asins=collected.sent_asins,
        asins_planned=len(prepared.valid),
        lane_calls=lane_calls,
        lane_rates=lane_rates,
        lane_asins=collected.lane_asins,
    )


_COUNTER_KEYS = (
    "calls", "throttled", "retries", "retry_pass_calls", "fetch_seconds", "quota_floor_seconds",
    "interruptions",
)  # fmt: skip


def _previous_counters(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    row = con.execute(
        "select coalesce(spapi_calls, 0), coalesce(spapi_429s, 0), coalesce(spapi_retries, 0),"
        " coalesce(spapi_retry_pass_calls, 0), coalesce(fetch_seconds, 0),"
        " coalesce(quota_floor_seconds, 0), coalesce(fetch_interruptions, 0),"
        " spapi_operation_calls, spapi_operation_rates"
        " from runs where run_id = $r",
        {"r": run_id},
    ).fetchall()
    if not row:
        return {}
    calls, throttled, retries, pass_calls, seconds, floor, interruptions, by_op, rates = row[0]
    return {
        "calls": calls, "throttled": throttled, "retries": retries,
        "retry_pass_calls": pass_calls, "fetch_seconds": seconds,
        "quota_floor_seconds": floor, "interruptions": interruptions,
        "operation_calls": json.loads(by_op) if by_op else {},
        "operation_rates": json.loads(rates) if rates else {},
    }  # fmt: skip


def _add_counters(previous: dict[str, Any], counters: FetchCounters) -> FetchCounters:
    return FetchCounters(
        calls=previous.get("calls", 0) + counters.calls,
        throttled=previous.get("throttled", 0) + counters.throttled,
        retries=previous.get("retries", 0) + counters.retries,
        retry_pass_calls=previous.get("retry_pass_calls", 0) + counters.retry_pass_calls,
        batches=counters.batches,
    )


def resumable_run(con: duckdb.DuckDBPyConnection) -> str:
    """The latest interrupted (or failed) run with a fetch plan, for ``--resume``, or a
    ``fetch`` run left ``running`` by a process that died (the caller holds the run lock,
    so no live process runs it)."""
    rows = query_frame(con, "fetch_resumable_run")
    if rows.is_empty():
        raise UsageError("There is no interrupted fetch to resume; start one with `invsync fetch`.")
    return str(rows["run_id"][0])


def close_orphans(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Mark every ``fetch`` run left ``running`` by a dead process (``kill -9``, a power
    cut) ``interrupted``, with the reason and the way on; returns their ids. Only for a
    caller that holds the run lock: no live process then runs a fetch."""
    rows = query_frame(con, "fetch_orphaned_runs")
    orphans = [str(r) for r in rows["run_id"].to_list()]
    for run_id in orphans:
        runs.finish_run(
            con, run_id, "interrupted",
            "The process fetching this run died before it finished (killed); "
            "`invsync fetch --resume` continues it from its last checkpointed batch.",
        )  # fmt: skip
    return orphans
