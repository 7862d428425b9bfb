"""One seller's run, as an orchestrator starts it: the very ``sync.run`` of ``invsync sync``.

Stage: all of them, through :func:`pipeline.sync.run` (no second implementation). Reads the
seller's workspace (:meth:`Seller.workspace`: its own variables, data directory and sandbox);
writes what a sync writes, in the seller's data directory, and a ``run_outcome`` line in
the seller's own log. Never imports Dagster: the code location (``definitions``) and the
bench call it, and a test calls it to run one seller alone.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline import sync
from pipeline.cli import render
from pipeline.errors import HeldForReviewError, InvsyncError
from pipeline.logs import configure_logging, event
from pipeline.orchestration.sellers import Seller

log = logging.getLogger("invsync.orchestration")


@dataclass(frozen=True)
class SellerRun:
    """How one seller's run ended: ``outcome`` is ok, held or interrupted (a failure raises)."""

    seller: str
    summary: sync.SyncSummary
    seconds: float

    @property
    def outcome(self) -> str:
        return self.summary.outcome


def run_seller(seller: Seller, environ: Mapping[str, str], *, dry_run: bool = False) -> SellerRun:
    """Run one sync of ``seller`` and return its summary; a run that failed raises its
    :class:`~pipeline.errors.InvsyncError` (exit class 4 for an outside API, 2 for a setting
    or input), as ``invsync sync`` exits with it. A held run returns (exit class 3 is a
    notice: the rest was loaded), with ``outcome == "held"``."""
    started = time.monotonic()
    ws = seller.workspace(environ)
    configure_logging(ws.data_dir, ws.env, timezone=ws.settings.display.timezone)
    try:
        summary = sync.run(ws, dry_run=dry_run, budget=seller.sync_budget)  # type: ignore[arg-type]
        # a held run is a notice (exit 3), not a failure: its outcome says it and the alert
        # sensor sends it; a failed load raises its exit 4 here
        with contextlib.suppress(HeldForReviewError):
            sync.raise_for_outcome(summary)
    except BaseException as exc:
        _outcome(seller, None, exc)
        raise
    for line in render.sync_summary_lines(summary, ws.settings.display.timezone):
        log.info("%s", line)
    _outcome(seller, summary, None)
    return SellerRun(seller.id, summary, time.monotonic() - started)


def exit_code(exc: BaseException) -> int:
    """The exit code ``invsync sync`` would end with on ``exc``."""
    return exc.exit_code if isinstance(exc, InvsyncError) else 1


def _outcome(seller: Seller, summary: sync.SyncSummary | None, exc: BaseException | None) -> None:
    fields: dict[str, Any] = {"command": "sync", "seller": seller.id}
    if summary is not None:
        fields |= {
            "run_id": summary.run_id,
            "outcome": summary.outcome,
            "exit_code": 3 if summary.outcome == "held" else 0,
            "message": summary.message
            or f"Seller {seller.id} run {summary.run_id} ended {summary.outcome}.",
        }
    else:
        assert exc is not None
        message = exc.message if isinstance(exc, InvsyncError) else type(exc).__name__
        fields |= {
            "outcome": "failed",
            "exit_code": exit_code(exc),
            "exit_class": type(exc).__name__,
            "message": message,
        }
    event("run_outcome", **fields)
