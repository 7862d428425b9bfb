"""Settling what a crash left ``sent``, before a resumed run pulls its listings again.

Stage: load (a resumed sync's first step, before the listings pull). Reads the run's
journal rows that may already be on the platform (:func:`~pipeline.load.readback.needs_reading_back`:
``sent`` when the process died, or ``failed`` with no answer we trust) and each one's listing
on the platform (BASE ``items/detail``; eBay ``getOffers`` or Trading ``GetItem``). Writes
each row's outcome to ``push_journal`` and, through :mod:`pipeline.journal`, the listing
tables:

    it shows the new values   → ok, and the listing table takes them, so the pull that
                                follows sees our own change, not a hand edit
    it shows the old values   → pending again: the fresh diff decides whether it is sent
                                (a change the diff no longer has is voided, never sent)
    it shows anything else    → skipped as drifted (changed by hand; the review gate holds it)
    the listing is gone       → quarantined

Unlike the load's own read-back this never sends anything: a row planned before the pull
is only ever sent by the load that follows it, after the fresh diff and review. A platform
that cannot be read now (limit, auth, no answer) leaves its rows ``sent`` for the load's
read-back, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from pipeline import journal
from pipeline.clients.factory import ebay_client
from pipeline.config import Account, Workspace
from pipeline.errors import ExternalApiError
from pipeline.journal import RowResult
from pipeline.load import base_push, ebay_push
from pipeline.load.budget import BudgetSpent
from pipeline.load.readback import SeenListing, needs_reading_back, read_back_result
from pipeline.platforms import PLATFORMS
from pipeline.redact import redact, secret_values

log = logging.getLogger("invsync.load")


@dataclass
class Settled:
    """What settling a run's unconfirmed rows found, row counts by outcome."""

    ok: int = 0  # already applied: recorded without a call
    pending: int = 0  # not applied: left to the fresh diff
    drifted: int = 0
    quarantined: int = 0
    unread: int = 0  # the platform could not be read now: left sent

    @property
    def rows(self) -> int:
        return self.ok + self.pending + self.drifted + self.quarantined + self.unread


def settle_unconfirmed(ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str) -> Settled:
    """Read back every row of ``run_id`` a crash may have applied and record what the
    platform shows; sends nothing."""
    settled = Settled()
    secrets = secret_values(ws.env)

    def clean(text: str) -> str:
        return redact(text, secrets)

    for platform in PLATFORMS:
        rows = [r for r in journal.open_rows(con, run_id, platform) if needs_reading_back(r)]
        by_account: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_account.setdefault(row["account_id"], []).append(row)
        for account_id, account_rows in sorted(by_account.items()):
            account = ws.settings.account(account_id)
            read = _read_base if platform == "base" else _read_ebay
            results = read(ws, con, account, account_rows, settled)
            journal.record_results(con, results, clean)
            for result in results:
                _count(settled, result)
    if settled.rows:
        log.info(
            "Settled %d unconfirmed push(es) of run %s: %d already applied, %d not applied, "
            "%d changed by hand, %d gone, %d unreadable now.",
            settled.rows,
            run_id,
            settled.ok,
            settled.pending,
            settled.drifted,
            settled.quarantined,
            settled.unread,
        )
    return settled


def _count(settled: Settled, result: RowResult) -> None:
    if result.state == "ok":
        settled.ok += 1
    elif result.state == "pending":
        settled.pending += 1
    elif result.state == "quarantined":
        settled.quarantined += 1
    else:
        settled.drifted += 1


def _decide(
    row: dict[str, Any], seen: SeenListing | None, platform_name: str, gone: Any
) -> RowResult:
    return _or_pending(read_back_result(row, seen, platform_name=platform_name, gone=gone), row)


def _or_pending(result: RowResult | None, row: dict[str, Any]) -> RowResult:
    """The platform does not show the change: not applied, so the fresh diff decides."""
    return result if result is not None else RowResult(row, "pending", 200, None, None)


def _read_base(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    rows: list[dict[str, Any]],
    settled: Settled,
) -> list[RowResult]:
    client, budget, with_variations = base_push.open_shop(ws, con, account)
    return _each(
        rows,
        settled,
        f"BASE shop {account.id}",
        lambda row: _or_pending(base_push.read_back(client, row, with_variations), row),
        finish=budget.flush,
    )


def _read_ebay(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    rows: list[dict[str, Any]],
    settled: Settled,
) -> list[RowResult]:
    client = ebay_client(ws, account)
    readable = [r for r in rows if r["api"] != "trading" or r["listing_id"]]
    settled.unread += len(rows) - len(readable)
    return _each(
        readable,
        settled,
        f"eBay account {account.id}",
        lambda row: _decide(row, ebay_push.read_listing(client, row), "eBay", ebay_push.GONE),
    )


def _each(
    rows: list[dict[str, Any]],
    settled: Settled,
    who: str,
    decide: Callable[[dict[str, Any]], RowResult],
    finish: Callable[[], None] = lambda: None,
) -> list[RowResult]:
    """Each row's decision, until the platform cannot be read (the rest stay sent)."""
    results: list[RowResult] = []
    try:
        for row in rows:
            results.append(decide(row))
    except (ExternalApiError, BudgetSpent) as exc:
        left = len(rows) - len(results)
        settled.unread += left
        reason = exc.message if isinstance(exc, ExternalApiError) else str(exc)
        log.warning(
            "%s could not be read back now (%s); %d unconfirmed push(es) stay sent and the "
            "load reads them back before sending anything.",
            who,
            reason.rstrip("."),
            left,
        )
    finally:
        finish()
    return results
