"""Run bookkeeping: one row per run in the warehouse's ``runs`` table.

A run id is ``YYYYMMDDTHHMMSSZ-xxxxxx`` (UTC start time and 6 random hex digits), so
ids sort by start time and two runs started in the same second still differ.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import duckdb

from pipeline.config import Workspace
from pipeline.errors import UsageError
from pipeline.redact import redact

_RUN_COLUMNS = {
    "command", "mode", "config_hash", "operation", "finished_at",
    "extract_seconds", "fetch_seconds", "transform_seconds", "review_seconds", "load_seconds",
    "listings", "unique_asins", "invalid_asins", "spapi_calls", "spapi_429s", "spapi_retries",
    "fetched_ok", "fallbacks", "unknowns", "quota_floor_seconds", "diffs", "holds", "pushes",
    "push_failures", "outcome", "message",
}  # fmt: skip


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def start_run(con: duckdb.DuckDBPyConnection, ws: Workspace, command: str) -> str:
    """Insert a ``running`` row and return its id."""
    run_id = new_run_id()
    con.execute(
        "insert into runs (run_id, command, mode, config_hash, operation, started_at, outcome)"
        " values ($run_id, $command, $mode, $hash, $operation, now(), 'running')",
        {
            "run_id": run_id,
            "command": command,
            "mode": ws.settings.mode,
            "hash": ws.settings.digest(),
            "operation": ws.settings.amazon.operation,
        },
    )
    return run_id


def update_run(con: duckdb.DuckDBPyConnection, run_id: str, **fields: Any) -> None:
    """Set columns of one run; unknown column names are a bug."""
    unknown = set(fields) - _RUN_COLUMNS
    if unknown:
        raise ValueError(f"runs has no column(s) {sorted(unknown)}")
    if not fields:
        return
    # Column names come from the fixed set above, values travel as parameters.
    assignments = ", ".join(f"{name} = ${name}" for name in fields)
    con.execute(
        f"update runs set {assignments} where run_id = $run_id", {**fields, "run_id": run_id}
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, outcome: str, message: str | None = None
) -> None:
    con.execute(
        "update runs set outcome = $outcome, message = $message, finished_at = now()"
        " where run_id = $run_id",
        {"outcome": outcome, "message": redact(message) if message else None, "run_id": run_id},
    )


def latest_sync(con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """The newest sync's run id and outcome; None before the first sync."""
    rows = con.execute(
        "select run_id, outcome from runs where command = 'sync'"
        " order by started_at desc, run_id desc limit 1"
    ).fetchall()
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    """``run_id`` if it exists, else the latest run; a clear error when there is none."""
    if run_id is not None:
        rows = con.execute("select run_id from runs where run_id = $r", {"r": run_id}).fetchall()
        if not rows:
            raise UsageError(
                f"Run {run_id} is not in the warehouse; see `invsync runs` for run ids."
            )
        return run_id
    rows = con.execute(
        "select run_id from runs order by started_at desc, run_id desc limit 1"
    ).fetchall()
    if not rows:
        raise UsageError("There is no run yet; start one with `invsync fetch` or `invsync sync`.")
    return str(rows[0][0])
