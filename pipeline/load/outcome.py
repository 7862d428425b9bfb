"""What a load did for one platform account: the tally, and how an account stops early.

Stage: load. Reads nothing; :func:`leave_pending` writes ``push_journal`` (rows the platform
did not process go back to ``pending``). The push modules fill an :class:`AccountLoad` each;
:mod:`pipeline.load` turns them into the load's result and its one-sentence failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipeline import journal
from pipeline.journal import RowResult


@dataclass
class AccountLoad:
    """What one load did for one platform account."""

    platform: str
    account_id: str
    rows: int = 0  # rows this load had to work on (not ok before it started)
    ok: int = 0
    failed: int = 0
    quarantined: int = 0
    skipped: int = 0
    pending: int = 0  # left for the next window or run
    reconciled: int = 0  # found already applied on the platform: recorded ok, no call
    calls: int = 0  # HTTP attempts made
    stopped: str | None = None  # why this account stopped early (a sentence)
    stop_kind: str | None = None  # quota | auth | transient
    first_problem: str | None = None  # e.g. "item_id=123 bad_item_id"
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run: the calls
    protected: int = 0  # protective rows (raise or pause) the platform confirmed
    paused: int = 0  # of those, pauses (nothing left to buy)

    def add(self, result: RowResult) -> None:
        if result.state == "ok":
            self.ok += 1
            if result.row.get("action") == "protect":
                self.protected += 1
                self.paused += int(result.row.get("new_quantity") == 0)
        elif result.state == "failed":
            self.failed += 1
        elif result.state == "quarantined":
            self.quarantined += 1
        elif result.state == "skipped":
            self.skipped += 1
        elif result.state == "pending":
            self.pending += 1
        if result.state in ("failed", "quarantined") and self.first_problem is None:
            label = "item_id" if self.platform == "base" else "sku"
            self.first_problem = f"{label}={result.row['listing_key']} {result.error_code}"

    def stop(self, kind: str, sentence: str) -> None:
        """The account stopped early: ``kind`` quota | auth | transient, and why."""
        self.stop_kind = kind
        self.stopped = sentence


def leave_pending(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict[str, Any]],
    outcome: AccountLoad,
    code: str | None,
    status: int | None,
    message: str | None,
    clean: Callable[[str], str],
) -> None:
    """Rows the platform did not process (quota, auth): pending for the next window or run."""
    results = [RowResult(r, "pending", status, code, message) for r in rows]
    journal.record_results(con, results, clean)
    outcome.pending += len(rows)
