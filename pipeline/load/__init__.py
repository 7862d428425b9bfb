"""Load: push only the approved, changed rows to BASE and eBay, through the push journal.

Stage: load (Phase 2's last step). Reads: the run's approved diff rows
(:func:`pipeline.review.load_gate`: one shape for every platform, prices in minor units
of ``currency``), ``push_journal``, the BASE and eBay APIs. Writes: ``push_journal`` (every
row before any call, then each state change), ``listings_base`` / ``listings_ebay``
(confirmed pushes, quarantines, drift marks), ``api_call_windows`` (BASE calls per hour and
day), the run's ``runs`` row (pushes, push_failures, load_seconds) and, for ``--dry-run``,
``loads/run_id=…/dry_run.parquet``.

Calls: one BASE ``items/edit`` per changed item; ``ceil(changed / 25)``
``bulk_update_price_quantity`` calls per eBay account (Trading listings: ``ceil(n / 4)``
``ReviseInventoryStatus``). A row left ``sent`` by a crash (or failed with no usable
answer) is first read back from the platform: if the change is already there it is
recorded ``ok`` without a call, so no change is ever applied twice. docs/load.md has the
states, resume, quotas, quarantine and drift.

The package, one job a module::

    __init__    run(): the wiring, the run's counts, the result and its one-sentence failure
    base_push   BASE items/edit, one row at a time
    ebay_push   eBay Inventory and Trading batches
    readback    the one decision for a row whose change may already be on the platform
    plan        the dry run's calls
    budget      calls per BASE shop and window (api_call_windows)
    outcome     what a load did for one account
    settle      a resumed run's unconfirmed pushes read back before its pull, none sent
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipeline import journal, schemas
from pipeline.config import Workspace
from pipeline.decisions import opened as open_decisions
from pipeline.errors import (
    ApiAuthError,
    ApiQuotaError,
    ConfigError,
    ExternalApiError,
    HeldForReviewError,
)
from pipeline.interrupt import StopRequest
from pipeline.load.base_push import push_base
from pipeline.load.ebay_push import push_ebay
from pipeline.load.outcome import AccountLoad
from pipeline.load.plan import plan, plan_frame, plan_path
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS
from pipeline.redact import redact, secret_values
from pipeline.review import LoadGate, diffed_platforms, load_gate, read_diff
from pipeline.runs import resolve_run, update_run
from pipeline.warehouse import write_parquet_atomic

log = logging.getLogger("invsync.load")


@dataclass
class LoadResult:
    run_id: str
    dry_run: bool
    accounts: list[AccountLoad]
    held: dict[str, str]  # platform -> why the review gate holds its whole load
    seconds: float
    plan_path: Path | None = None
    gates: dict[str, LoadGate] = field(default_factory=dict)  # platform -> what it let out

    @property
    def failed(self) -> bool:
        return any(a.failed or a.quarantined or a.stopped for a in self.accounts)

    @property
    def protected(self) -> int:
        """Protective actions (raise or pause) for held rows waiting for a person: those the
        platforms confirmed, or in a dry run those the gate lets out. A pause eBay would
        end the listing for (out-of-stock control off) is not taken, so it is not counted."""
        if self.dry_run:
            return sum(g.protected for g in self.gates.values())
        return sum(a.protected for a in self.accounts)

    @property
    def paused(self) -> int:
        """Of :attr:`protected`, the pauses (quantity 0); the rest were raised to a profit."""
        if self.dry_run:
            return sum(g.paused for g in self.gates.values())
        return sum(a.paused for a in self.accounts)

    def skipped(self) -> dict[str, int]:
        """Rows this load did not send, by reason (:data:`pipeline.review.SKIP_REASONS`)."""
        total: dict[str, int] = {}
        for gate in self.gates.values():
            for reason, rows in gate.skipped.items():
                total[reason] = total.get(reason, 0) + rows
        return total


def _validated(platform: str, rows: pl.DataFrame) -> pl.DataFrame:
    return schemas.validated(
        rows,
        schemas.Diff,
        lambda problems: ConfigError(
            f"The {platform} rows given to load do not match the Diff schema ({problems}); "
            "re-run `invsync transform`."
        ),
    )


def push_rows(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    rows: pl.DataFrame,
    *,
    dry_run: bool = False,
    stop: StopRequest | None = None,
) -> list[AccountLoad]:
    """Journal ``rows`` (:class:`~pipeline.schemas.Diff` rows with their run_id and
    platform) and push every one not yet ``ok``.

    Every row given is pushed: filtering held rows is the review gate's job. Returns one
    :class:`AccountLoad` per account that had work. A dry run journals nothing and calls
    nothing; it returns the calls it would make in ``planned``.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    if rows.is_empty():
        return []
    rows = _validated(platform, rows)
    if dry_run:
        return plan(ws, con, run_id, platform, rows)
    journal.record_pending(con, rows)
    keys = set(zip(rows["account_id"], rows["listing_key"], rows["change_id"], strict=True))
    work = [
        r
        for r in journal.open_rows(con, run_id, platform)
        if (r["account_id"], r["listing_key"], r["change_id"]) in keys
    ]
    by_account: dict[str, list[dict[str, object]]] = {}
    for row in work:
        by_account.setdefault(row["account_id"], []).append(row)
    secrets = secret_values(ws.env)

    def clean(text: str) -> str:
        return redact(text, secrets)

    push = push_base if platform == "base" else push_ebay
    outcomes = []
    for account_id, account_rows in sorted(by_account.items()):
        account = ws.settings.account(account_id)
        outcome = AccountLoad(platform, account_id, rows=len(account_rows))
        if stop is not None and stop.is_set():
            break  # a signal: what is not sent stays pending for the next load
        push(ws, con, account, account_rows, outcome, clean, stop)
        outcomes.append(outcome)
        log.info(
            "%s %s: %d ok, %d failed, %d quarantined, %d skipped, %d pending, %d calls",
            platform,
            account_id,
            outcome.ok,
            outcome.failed,
            outcome.quarantined,
            outcome.skipped,
            outcome.pending,
            outcome.calls,
        )
    return outcomes


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
    raise_on_failure: bool = True,
    stop: StopRequest | None = None,
) -> LoadResult:
    """Load one run (default: the latest): every platform's approved rows, then the run's
    counts. Raises :class:`ExternalApiError` (exit 4) when a row failed or was quarantined
    or an account stopped early, and :class:`HeldForReviewError` (exit 3) when the review
    gate holds a platform's whole load (after loading the other platform)."""
    started = time.monotonic()
    run_id = resolve_run(con, run_id)
    accounts: list[AccountLoad] = []
    held: dict[str, str] = {}
    configured = [p for p in PLATFORMS if ws.settings.accounts_on(p)]
    # A platform transform wrote no diff for has nothing to load; with no diff at all the
    # review gate's own error (run transform first) is the right answer.
    diffed = [p for p in diffed_platforms(ws, run_id) if p in configured]
    if not diffed:
        read_diff(ws, run_id, configured[0] if configured else PLATFORMS[0])
    gates: dict[str, LoadGate] = {}
    with open_decisions(ws.data_dir) as store:
        for platform in diffed:
            gates[platform] = load_gate(ws, con, run_id, platform, store)
    for platform, gate in gates.items():
        if gate.held_reason:
            held[platform] = gate.held_reason
        accounts += push_rows(ws, con, run_id, platform, gate.rows, dry_run=dry_run, stop=stop)
    seconds = time.monotonic() - started
    result = LoadResult(run_id, dry_run, accounts, held, seconds, gates=gates)
    if dry_run:
        result.plan_path = write_parquet_atomic(
            plan_frame(accounts), plan_path(ws.data_dir, run_id)
        )
    else:
        _record_run(con, run_id, seconds)
    if raise_on_failure:
        raise_for_outcome(result)
    return result


def _record_run(con: duckdb.DuckDBPyConnection, run_id: str, seconds: float) -> None:
    counts = journal.summary(con, run_id)
    pushes = int(counts.filter(pl.col("state") == "ok")["rows"].sum()) if len(counts) else 0
    failures = (
        int(counts.filter(pl.col("state").is_in(["failed", "quarantined"]))["rows"].sum())
        if len(counts)
        else 0
    )
    before = con.execute(
        "select coalesce(load_seconds, 0) from runs where run_id = $r", {"r": run_id}
    ).fetchall()
    total = (float(before[0][0]) if before else 0.0) + seconds
    update_run(con, run_id, pushes=pushes, push_failures=failures, load_seconds=total)


def failure_sentence(result: LoadResult) -> str | None:
    """One sentence (clauses joined by "; ") naming what failed and the next step."""
    clauses = []
    retry = f"invsync load --run {result.run_id}"
    for platform in PLATFORMS:
        mine = [a for a in result.accounts if a.platform == platform]
        total = sum(a.rows for a in mine)
        name = DISPLAY_NAMES[platform]
        quarantined = sum(a.quarantined for a in mine)
        failed = sum(a.failed for a in mine)
        if quarantined:
            first = next(a.first_problem for a in mine if a.quarantined)
            clauses.append(
                f"{name} rejected {quarantined} of {total} items (first: {first}); they are "
                f"quarantined — see invsync review --run {result.run_id}"
            )
        if failed:
            first = next(a.first_problem for a in mine if a.failed and a.first_problem)
            clauses.append(
                f"{name} failed {failed} of {total} items (first: {first}); they stay failed "
                f"in the journal and `{retry}` retries them"
            )
        for account in mine:
            if account.stopped:
                clauses.append(f"{account.stopped} — run `{retry}` again later")
    return "; ".join(clauses) + "." if clauses else None


def raise_for_outcome(result: LoadResult) -> None:
    if result.dry_run:
        return
    sentence = failure_sentence(result)
    if sentence:
        kinds = {a.stop_kind for a in result.accounts if a.stopped}
        quarantine_or_failed = any(a.failed or a.quarantined for a in result.accounts)
        if kinds == {"quota"} and not quarantine_or_failed:
            raise ApiQuotaError(sentence)
        if kinds == {"auth"} and not quarantine_or_failed:
            raise ApiAuthError(sentence)
        raise ExternalApiError(sentence)
    if result.held:
        platform, why = next(iter(result.held.items()))
        raise HeldForReviewError(
            f"The {platform} load of run {result.run_id} is held by the review gate ({why}); "
            f"release it with `invsync approve {result.run_id} --platform {platform}`."
        )
