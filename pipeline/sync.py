"""``invsync sync``: one whole run — pull, extract, fetch, transform, review, load.

Reads the configuration, the platforms (listings pull), SP-API (once, in fetch) and the
warehouse; writes the run's snapshot, diffs, review report, push journal and the
analysts' views. Holds the data directory's lock for the whole run, and the warehouse only
while a stage writes it: never during the SP-API fetch, so ``review``, ``approve``,
``listings import``, ``runs`` and ``history`` work meanwhile (docs/operations.md, "While a
sync runs").

The APIs are reached through :mod:`pipeline.apis`, as by every command: in sandbox mode
with no endpoints configured it starts the sandbox in this process, on a world persisted
under ``<data_dir>/sandbox/``, and sync asks it to move that world one tick on first (every
run after the first), so a second sync sees prices and stock move and pushes only those
changes. Live mode checks every credential before anything else and never falls back to
the sandbox. The summary this returns is shown by :mod:`pipeline.cli.render`.

A run interrupted by SIGTERM or SIGINT is recorded as ``interrupted``; the next sync
resumes it under the same run id. A sync run still ``running`` when a new sync takes the run
lock belongs to a process that is gone (``kill -9``, a crash, a reboot): the lock is held
for a sync's whole life and the kernel drops it with its holder. The newest such run is
resumed with a warning naming it; one that cannot be resumed safely (older than
:data:`MAX_RESUME_AGE_HOURS`, or started in another mode or SP-API operation) and any older
one are closed as failed with the reason, and this sync starts a new run.

A resumed run (docs/operations.md, "Resuming") first settles the pushes its dead process
left unconfirmed (:mod:`pipeline.load.settle`: read back, never sent), then pulls every
platform's listings again exactly as a new run does, so hand edits made meanwhile are
drift the review gate holds; it keeps its fetch plan (only the ASINs it lacks are fetched)
and transforms, reviews and loads from the fresh listings, so a change planned before the
stop is sent only if the fresh diff still has it.

Every stage writes a ``stage_end`` line to the JSON-lines log (:func:`pipeline.logs.event`).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb

from pipeline import (
    extract,
    fetch,
    history_store,
    layout,
    listings_pull,
    load,
    pool,
    review,
    transform,
    urgency,
    views,
    warehouse,
)
from pipeline import runs as run_book
from pipeline.apis import Apis, open_apis
from pipeline.config import Workspace
from pipeline.errors import (
    ExternalApiError,
    HeldForReviewError,
    InvsyncError,
    WarehouseBusyError,
)
from pipeline.interrupt import StopRequest, stopping_on_signals
from pipeline.load.settle import settle_unconfirmed
from pipeline.lock import run_lock
from pipeline.logs import event, run_context
from pipeline.platforms import PLATFORMS

log = logging.getLogger("invsync.sync")
T = TypeVar("T")
PUSH_STATES = ("ok", "failed", "quarantined", "skipped", "pending")  # the summary's columns
MAX_RESUME_AGE_HOURS = 24  # older: its fetch plan and Amazon observations are stale; closed


@dataclass
class SyncSummary:
    """What one sync did, for the closing summary and the tests."""

    run_id: str
    mode: str
    resumed: bool = False
    listings: int = 0
    unique_asins: int = 0
    valid_asins: int = 0
    spapi_calls: int = 0
    spapi_expected_calls: int = 0  # the least calls for the ASINs each lane answered
    lane_calls: dict[str, int] = field(default_factory=dict)  # this fetch's calls per lane
    lane_asins: dict[str, int] = field(default_factory=dict)  # ASINs each lane answered
    spapi_retries: int = 0
    spapi_429s: int = 0
    phase2_spapi_calls: int | None = None  # from the sandbox ledger; None when unmeasurable
    fetch_seconds: float = 0.0
    quota_floor_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    diffs: dict[str, dict[str, int]] = field(default_factory=dict)  # platform -> kind -> rows
    held_rows: dict[str, int] = field(default_factory=dict)
    held_platforms: dict[str, str] = field(default_factory=dict)
    pushes: dict[str, dict[str, int]] = field(default_factory=dict)  # platform -> state -> rows
    push_calls: dict[str, int] = field(default_factory=dict)
    protected: int = 0  # held rows whose listing was raised or paused while they wait
    paused: int = 0  # of those, paused at quantity 0 (the rest raised to a profit)
    interrupted: bool = False
    # a resumed run: its dead process's unconfirmed pushes as read back, and the listings
    # its pull found changed by hand since the stop (held as drift)
    settled: dict[str, int] = field(default_factory=dict)
    drifted_since_stop: int = 0
    pulled: str | None = None  # gone / unmapped / drifted listings and the command listing them
    outcome: str = "running"
    message: str | None = None
    budget_seconds: float | None = None  # None: a full pass of every listed ASIN
    budget_line: str | None = None  # what a budgeted run observed (urgency.summary_sentence)
    guarantee_note: str | None = None  # why the max-age guarantee cannot hold, when it cannot

    @property
    def pace_vs_floor(self) -> float | None:
        if self.quota_floor_seconds <= 0:
            return None
        return self.fetch_seconds / self.quota_floor_seconds


def _run_to_resume(ws: Workspace, con: duckdb.DuckDBPyConnection) -> str | None:
    """The sync run this one continues, if any: the newest sync when it was interrupted or
    left ``running`` by a process that is gone. Called under the run lock, so every sync
    still ``running`` has lost its process: each one not resumed is closed with a reason."""
    latest = run_book.latest_sync(con)
    candidate = latest[0] if latest and latest[1] in ("interrupted", "running") else None
    for run_id in run_book.running_syncs(con):
        if run_id != candidate:
            newer = f"run {candidate}" if candidate else "this sync"
            _close(con, ws.data_dir, run_id, f"its process is gone and {newer} supersedes it")
    if candidate is None:
        return None
    why_not = _why_not_resumable(ws, con, candidate)
    if why_not:
        _close(con, ws.data_dir, candidate, why_not)
        return None
    if latest and latest[1] == "running":
        log.warning(
            "Run %s was left running by a process that is gone (killed or crashed); resuming it.",
            candidate,
        )
    return candidate


def _why_not_resumable(ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """Why ``run_id`` must not be resumed (a reason for its record), or None."""
    mode, operation, too_old = con.execute(
        "select mode, operation, started_at < now() - to_hours(cast($h as bigint))"
        " from runs where run_id = $r",
        {"r": run_id, "h": MAX_RESUME_AGE_HOURS},
    ).fetchall()[0]
    if mode != ws.settings.mode:
        return f"it ran in {mode} mode and this sync runs in {ws.settings.mode} mode"
    if operation and operation != ws.settings.amazon.operation:
        return (
            f"it fetched with SP-API operation {operation} and the configuration now says "
            f"{ws.settings.amazon.operation}"
        )
    if too_old:
        return f"it started more than {MAX_RESUME_AGE_HOURS} hours ago"
    return None


def _close(con: duckdb.DuckDBPyConnection, data_dir: Path, run_id: str, why: str) -> None:
    sentence = f"Closed without resuming: {why}; a new sync run starts instead."
    log.warning("Run %s is not resumed: %s; a new sync run starts instead.", run_id, why)
    run_book.finish_run(con, run_id, "failed", sentence)
    # its fetch checkpoint serves no resume now
    shutil.rmtree(layout.fetch_checkpoint_dir(data_dir, run_id), ignore_errors=True)


def run(
    ws: Workspace,
    *,
    dry_run: bool = False,
    progress: fetch.FetchProgress | None = None,
    stop: StopRequest | None = None,
    budget: float | Literal["settings"] | None = "settings",
) -> SyncSummary:
    """One whole run, recorded in ``runs``; returns its summary. The caller shows it and
    then calls :func:`raise_for_outcome`. ``budget``: seconds of quota time for a budgeted
    run, None for a full pass, ``"settings"`` for ``[fetch] budget``."""
    stop = stop or StopRequest()
    budget_seconds = ws.settings.fetch.budget if budget == "settings" else budget
    with (
        stopping_on_signals(stop),
        run_lock(ws.data_dir, "sync"),
        open_apis(ws, tick=True) as apis,
    ):
        summary = _run_stages(
            apis, dry_run=dry_run, progress=progress, stop=stop, budget=budget_seconds
        )
        apis.keep_ledger(summary.run_id)
    return summary


def raise_for_outcome(summary: SyncSummary) -> None:
    """:class:`HeldForReviewError` (exit 3) when the review gate held anything,
    :class:`ExternalApiError` (exit 4) when a push failed."""
    if summary.outcome == "failed":
        raise ExternalApiError(summary.message or f"Run {summary.run_id} failed.")
    if summary.outcome == "held":
        raise HeldForReviewError(summary.message or f"Run {summary.run_id} is held for review.")


@contextmanager
def _writing(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse for one stage's writes, closed after it. A person's command may hold
    the file for a moment, so a stage waits for it far longer than a command does."""
    with warehouse.opened(ws.data_dir, wait=warehouse.RUN_WAIT_SECONDS) as con:
        yield con


def _run_stages(
    apis: Apis,
    *,
    dry_run: bool,
    progress: fetch.FetchProgress | None,
    stop: StopRequest,
    budget: float | None,
) -> SyncSummary:
    ws = apis.ws
    with _writing(ws) as con:
        resumed_id = _run_to_resume(ws, con)
        if resumed_id:
            run_book.resume_run(con, ws, resumed_id)
        run_id = resumed_id or run_book.start_run(con, ws, "sync")
    summary = SyncSummary(run_id=run_id, mode=ws.settings.mode, resumed=resumed_id is not None)
    summary.budget_seconds = budget
    with run_context(run_id):
        try:
            _stages(apis, summary, dry_run=dry_run, progress=progress, stop=stop)
        except BaseException as exc:
            reason = (
                f"{type(exc).__name__}: {exc.message}"
                if isinstance(exc, InvsyncError)
                else type(exc).__name__
            )
            try:
                with _writing(ws) as con:
                    run_book.finish_run(con, run_id, "failed", f"Stopped by {reason.rstrip('.')}.")
            except WarehouseBusyError as busy:  # the next sync finds the run still "running"
                log.warning("Run %s could not be recorded as failed: %s", run_id, busy.message)
            raise
        with _writing(ws) as con:
            run_book.finish_run(con, run_id, summary.outcome, summary.message)
            views.publish(con, ws.data_dir, history_store.store(ws))
    return summary


def _stages(
    apis: Apis,
    summary: SyncSummary,
    *,
    dry_run: bool,
    progress: fetch.FetchProgress | None,
    stop: StopRequest,
) -> None:
    """The stages, each on a warehouse connection of its own; the SP-API fetch (the long
    part: 83 minutes at 10,000 ASINs) holds none, so operators' commands work meanwhile."""
    ws = apis.ws
    run_id = summary.run_id
    asins = None
    with _writing(ws) as con:
        if summary.resumed:
            log.info("Resuming run %s: its listings are pulled again before it loads.", run_id)
            settled = _timed("settle", lambda: settle_unconfirmed(ws, con, run_id), _settled_counts)
            summary.settled = _settled_counts(settled)
        started = time.monotonic()
        planning = not summary.resumed or not _has_fetch_plan(con, run_id)
        # A budgeted run reads eBay offers (one call per SKU: the pull's long part) only for
        # the ASINs it observes, so it pulls eBay after choosing them, from the listings as
        # the last pull left them (a listing new on eBay since then waits one run).
        late = ("ebay",) if planning and summary.budget_seconds is not None else ()
        pulled = _pull_listings(ws, con, skip=late)
        if planning:
            extracted = _timed(
                "extract",
                lambda: extract.run(ws, con, None, run_id=run_id),
                lambda e: {"listings": e.listings, "unique_asins": e.unique_asins},
            )
            run_book.update_run(con, run_id, extract_seconds=time.monotonic() - started)
            asins = _budgeted(ws, con, summary, extracted.asins)
            if late:
                chosen = frozenset(asins["asin"].to_list())
                pulled += _pull_listings(ws, con, only=late, read_asins=chosen)
                # extract_seconds spans the pulls, as a full pass's does (the run's listing
                # counts are the fetch plan's, recorded by fetch.record)
                run_book.update_run(con, run_id, extract_seconds=time.monotonic() - started)
        summary.pulled = listings_pull.summary_sentence(pulled)
        if summary.resumed:
            summary.drifted_since_stop = sum(p.total("drifted") for p in pulled)
    resume_fetch = asins is None
    with _writing(ws) as con:
        prepared = fetch.prepare(ws, con, run_id, asins, resume=resume_fetch)
    fetch_started = time.monotonic()
    collected = fetch.collect(ws, prepared, progress=progress, stop=stop)  # no connection
    with _writing(ws) as con:
        fetched = fetch.record(con, prepared, collected)
        _note_fetch(con, summary, fetched)
    _stage_end(
        "fetch",
        time.monotonic() - fetch_started,
        asins=summary.valid_asins,
        calls=summary.spapi_calls,
        throttled=summary.spapi_429s,
        statuses=summary.statuses,
        interrupted=bool(fetched.interrupted),
    )
    if fetched.interrupted or stop.is_set():
        summary.interrupted = True
        summary.outcome = "interrupted"
        summary.message = "Interrupted by a signal; the next `invsync sync` resumes this run."
        return
    calls_after_fetch = apis.spapi_calls()

    with _writing(ws) as con:
        transformed = _timed(
            "transform",
            lambda: transform.run(ws, con, run_id),
            lambda t: {"rows": t.rows, "held": t.held, "stopped": dict(t.stopped)},
        )
    for platform_name, diff in transformed.platforms.items():
        summary.diffs[platform_name] = dict(diff.kinds)
        summary.held_rows[platform_name] = diff.held
    with _writing(ws) as con:
        reviewed = _timed(
            "review",
            lambda: review.run(ws, con, run_id),
            lambda r: {"held": r.held, "waiting": r.waiting},
        )
    # the load writes the push journal row by row, so it keeps its connection throughout
    # (minutes, against the fetch's hour); a command meanwhile waits, then says so
    with _writing(ws) as con:
        loaded = _timed(
            "load",
            lambda: load.run(ws, con, run_id, dry_run=dry_run, raise_on_failure=False, stop=stop),
            _load_counts,
        )
    summary.held_platforms = dict(loaded.held)
    summary.protected = loaded.protected
    summary.paused = loaded.paused
    for platform in dict.fromkeys(a.platform for a in loaded.accounts):
        accounts = [a for a in loaded.accounts if a.platform == platform]
        summary.pushes[platform] = _tally(accounts, PUSH_STATES)
        summary.push_calls[platform] = sum(a.calls for a in accounts)
    calls_after_load = apis.spapi_calls()
    if calls_after_fetch is not None and calls_after_load is not None:  # None: not measurable
        summary.phase2_spapi_calls = calls_after_load - calls_after_fetch

    if stop.is_set():
        summary.interrupted = True
        summary.outcome = "interrupted"
        summary.message = "Interrupted by a signal; the next `invsync sync` resumes this run."
    elif loaded.failed:
        summary.outcome = "failed"
        summary.message = load.failure_sentence(loaded)
    elif reviewed.held:
        summary.outcome = "held"
        summary.message = reviewed.hold_message()
    else:
        summary.outcome = "ok"


def _budgeted(
    ws: Workspace, con: duckdb.DuckDBPyConnection, summary: SyncSummary, asins: Any
) -> Any:
    """The extract frame ``asins`` as the run fetches it: whole for a full pass, else the
    budget's selection most urgent first (:mod:`pipeline.urgency`), recorded on ``runs``
    (a run resumed after its fetch plan keeps that plan)."""
    budget = summary.budget_seconds
    if budget is None:  # a full pass: fetch_budget_seconds stays null, nothing more written
        return asins
    con.execute(
        "update runs set fetch_budget_seconds = $b where run_id = $r",
        {"b": budget, "r": summary.run_id},
    )
    started = time.monotonic()
    chosen, selection = urgency.plan(
        con, ws.data_dir, asins, ws.settings, budget_seconds=budget, now=datetime.now(UTC)
    )
    summary.budget_line = urgency.summary_sentence(selection)
    summary.guarantee_note = selection.guarantee_note
    con.execute(
        "update runs set fetch_selected_asins = $n, fetch_sweep_asins = $k,"
        " fetch_guarantee_note = $note where run_id = $r",
        {
            "n": len(selection.asins),
            "k": selection.sweep,
            "note": selection.guarantee_note,
            "r": summary.run_id,
        },
    )
    log.info("%s.", summary.budget_line[0].upper() + summary.budget_line[1:])
    if selection.guarantee_note:
        log.warning("%s", selection.guarantee_note)
    _stage_end(
        "select",
        time.monotonic() - started,
        budget_seconds=budget,
        listed=selection.listed,
        selected=len(selection.asins),
        capacity=selection.capacity,
        sweep=selection.sweep,
        never_observed=selection.never_observed,
        oldest_left_seconds=selection.oldest_left_seconds,
        guarantee_holds=selection.guarantee_holds,
    )
    return chosen


PULL_COUNTS = ("seen", "inserted", "updated", "drifted", "gone", "unmapped", "offers_deferred")


def _pull_listings(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    *,
    skip: tuple[str, ...] = (),
    only: tuple[str, ...] = PLATFORMS,
    read_asins: frozenset[str] | None = None,
) -> list[listings_pull.PullResult]:
    """Every configured platform's listings pulled (a new run's and a resumed run's first
    stage alike), each with a log line and a ``stage_end`` event of its counts."""
    pulled = []
    for platform in PLATFORMS:
        if not ws.settings.accounts_on(platform) or platform in skip or platform not in only:
            continue
        result = listings_pull.run(ws, con, platform, read_asins=read_asins)
        deferred = result.total("offers_deferred")
        if deferred:
            log.info(
                "Pulled %s listings in %.1f s (offers of %d listing(s) whose ASIN this run does"
                " not observe left as last read).", platform, result.seconds, deferred,
            )  # fmt: skip
        else:
            log.info("Pulled %s listings in %.1f s.", platform, result.seconds)
        _stage_end(
            "pull",
            result.seconds,
            platform=platform,
            **{name: result.total(name) for name in PULL_COUNTS},
        )
        pulled.append(result)
    return pulled


def _has_fetch_plan(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the run got as far as planning its fetch (a run killed in its pull or extract
    did not: resuming it extracts again under the same id)."""
    rows = con.execute(
        "select count(*) from fetch_plan where run_id = $r", {"r": run_id}
    ).fetchall()
    return bool(rows[0][0])


def _timed(stage: str, work: Callable[[], T], counts: Callable[[T], dict[str, Any]]) -> T:
    """``work()``, then its ``stage_end`` event with the seconds it took and ``counts``."""
    started = time.monotonic()
    result = work()
    _stage_end(stage, time.monotonic() - started, **counts(result))
    return result


def _stage_end(stage: str, seconds: float, **counts: Any) -> None:
    where = f" ({counts['platform']})" if "platform" in counts else ""
    event(
        "stage_end",
        stage=stage,
        seconds=round(seconds, 3),
        **counts,
        message=f"Stage {stage}{where} ended after {seconds:.1f} s.",
    )


def _settled_counts(settled: Any) -> dict[str, Any]:
    return {
        "already_applied": settled.ok,
        "not_applied": settled.pending,
        "drifted": settled.drifted,
        "gone": settled.quarantined,
        "unread": settled.unread,
    }


def _tally(accounts: list[Any], states: tuple[str, ...]) -> dict[str, int]:
    """Rows per journal state over ``accounts`` (each a :class:`load.AccountLoad`)."""
    return {state: sum(int(getattr(a, state)) for a in accounts) for state in states}


def _load_counts(loaded: load.LoadResult) -> dict[str, Any]:
    return {
        **_tally(loaded.accounts, (*PUSH_STATES, "reconciled")),
        "calls": sum(a.calls for a in loaded.accounts),
        "held": dict(loaded.held),
    }


def _batch_sizes(lane_asins: dict[str, int]) -> dict[str, int]:
    """ASINs per call of each lane named in ``lane_asins``."""
    return {name: pool.LANES[name][1] for name in lane_asins}


def _note_fetch(
    con: duckdb.DuckDBPyConnection, summary: SyncSummary, fetched: fetch.FetchResult
) -> None:
    rows = con.execute(
        "select listings, unique_asins, spapi_calls, spapi_retries, spapi_429s,"
        " fetch_seconds, quota_floor_seconds from runs where run_id = $r",
        {"r": summary.run_id},
    ).fetchall()
    listings, unique, calls, retries, throttled, seconds, floor = rows[0]
    summary.listings = int(listings or 0)
    summary.unique_asins = int(unique or 0)
    summary.spapi_calls = int(calls or 0)
    summary.spapi_retries = int(retries or 0)
    summary.spapi_429s = int(throttled or 0)
    summary.fetch_seconds = float(seconds or 0.0)
    summary.quota_floor_seconds = float(floor or 0.0)
    summary.statuses = dict(fetched.statuses)
    # the formula counts the well-formed ASINs sent, Amazon's invalid_asin answers included
    (sent,) = con.execute(
        "select count(*) from fetch_plan where run_id = $r and valid", {"r": summary.run_id}
    ).fetchall()[0]
    summary.valid_asins = int(sent)
    # the pool's lanes share the ASINs as they run: the least calls are, per lane, its ASINs
    # over its batch size (one lane, or pool = false: ceil(valid / 20) as before)
    summary.lane_calls = dict(fetched.lane_calls)
    summary.lane_asins = dict(fetched.lane_asins)
    batch = _batch_sizes(summary.lane_asins)
    summary.spapi_expected_calls = (
        sum(math.ceil(n / batch[lane]) for lane, n in summary.lane_asins.items())
        if summary.lane_asins
        else math.ceil(summary.valid_asins / 20)
    )
