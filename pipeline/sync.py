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
resumes it (fetching only the ASINs it lacks, then the later stages under the same
run id).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

from pipeline import extract, fetch, listings_pull, load, review, transform, views, warehouse
from pipeline import runs as run_book
from pipeline.apis import Apis, open_apis
from pipeline.config import Workspace
from pipeline.errors import ExternalApiError, HeldForReviewError, WarehouseBusyError
from pipeline.interrupt import StopRequest, stopping_on_signals
from pipeline.lock import run_lock
from pipeline.logs import run_context
from pipeline.platforms import PLATFORMS

log = logging.getLogger("invsync.sync")


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
    spapi_expected_calls: int = 0  # ceil(valid unique ASINs / batch size)
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
    outcome: str = "running"
    message: str | None = None

    @property
    def pace_vs_floor(self) -> float | None:
        if self.quota_floor_seconds <= 0:
            return None
        return self.fetch_seconds / self.quota_floor_seconds


def _interrupted_run(con: duckdb.DuckDBPyConnection) -> str | None:
    latest = run_book.latest_sync(con)
    return latest[0] if latest and latest[1] == "interrupted" else None


def run(
    ws: Workspace,
    *,
    dry_run: bool = False,
    progress: fetch.FetchProgress | None = None,
    stop: StopRequest | None = None,
) -> SyncSummary:
    """One whole run, recorded in ``runs``; returns its summary. The caller shows it and
    then calls :func:`raise_for_outcome`."""
    stop = stop or StopRequest()
    with (
        stopping_on_signals(stop),
        run_lock(ws.data_dir, "sync"),
        open_apis(ws, tick=True) as apis,
    ):
        summary = _run_stages(apis, dry_run=dry_run, progress=progress, stop=stop)
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
) -> SyncSummary:
    ws = apis.ws
    with _writing(ws) as con:
        resumed_id = _interrupted_run(con)
        run_id = resumed_id or run_book.start_run(con, ws, "sync")
    summary = SyncSummary(run_id=run_id, mode=ws.settings.mode, resumed=resumed_id is not None)
    with run_context(run_id):
        try:
            _stages(apis, summary, dry_run=dry_run, progress=progress, stop=stop)
        except BaseException as exc:
            reason = exc.message if isinstance(exc, ExternalApiError) else type(exc).__name__
            try:
                with _writing(ws) as con:
                    run_book.finish_run(con, run_id, "failed", f"Stopped by {reason}.")
            except WarehouseBusyError as busy:  # the next sync finds the run still "running"
                log.warning("Run %s could not be recorded as failed: %s", run_id, busy.message)
            raise
        with _writing(ws) as con:
            run_book.finish_run(con, run_id, summary.outcome, summary.message)
            views.publish(con, ws.data_dir)
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
            log.info("Resuming interrupted run %s.", run_id)
            run_book.update_run(con, run_id, outcome="running", message=None)
        else:
            started = time.monotonic()
            for platform in PLATFORMS:
                if ws.settings.accounts_on(platform):
                    pulled = listings_pull.run(ws, con, platform)
                    log.info("Pulled %s listings in %.1f s.", platform, pulled.seconds)
            extracted = extract.run(ws, con, None, run_id=run_id)
            run_book.update_run(con, run_id, extract_seconds=time.monotonic() - started)
            asins = extracted.asins
    with _writing(ws) as con:
        prepared = fetch.prepare(ws, con, run_id, asins, resume=summary.resumed)
    collected = fetch.collect(ws, prepared, progress=progress, stop=stop)  # no connection
    with _writing(ws) as con:
        fetched = fetch.record(con, prepared, collected)
        _note_fetch(con, summary, fetched)
    if fetched.interrupted or stop.is_set():
        summary.interrupted = True
        summary.outcome = "interrupted"
        summary.message = "Interrupted by a signal; the next `invsync sync` resumes this run."
        return
    calls_after_fetch = apis.spapi_calls()

    with _writing(ws) as con:
        transformed = transform.run(ws, con, run_id)
    for platform_name, diff in transformed.platforms.items():
        summary.diffs[platform_name] = dict(diff.kinds)
        summary.held_rows[platform_name] = diff.held
    with _writing(ws) as con:
        reviewed = review.run(ws, con, run_id)
    # the load writes the push journal row by row, so it keeps its connection throughout
    # (minutes, against the fetch's hour); a command meanwhile waits, then says so
    with _writing(ws) as con:
        loaded = load.run(ws, con, run_id, dry_run=dry_run, raise_on_failure=False, stop=stop)
    summary.held_platforms = dict(loaded.held)
    summary.protected = loaded.protected
    summary.paused = loaded.paused
    for account in loaded.accounts:
        states = summary.pushes.setdefault(account.platform, {})
        for state in ("ok", "failed", "quarantined", "skipped", "pending"):
            states[state] = states.get(state, 0) + int(getattr(account, state))
        summary.push_calls[account.platform] = (
            summary.push_calls.get(account.platform, 0) + account.calls
        )
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
    summary.spapi_expected_calls = math.ceil(summary.valid_asins / 20)
