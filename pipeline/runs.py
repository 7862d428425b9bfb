"""Run bookkeeping: one row per run in the warehouse's ``runs`` table.

A run id is ``YYYYMMDDTHHMMSSZ-xxxxxx`` (UTC start time and 6 random hex digits), so
ids sort by start time and two runs started in the same second still differ.

Stage: every recorded command. Reads and writes ``runs``; writes a ``run_start`` event
(:func:`pipeline.logs.event`) for every run started or resumed. The runs this process
opened are remembered (:func:`opened_here`) so that :func:`close_left_running` records any
of them an error left ``running`` as failed, with the error as its reason: no run stays
``running`` unless its process died (and then the next sync finds it, docs/operations.md
"Resuming").
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import Workspace
from pipeline.errors import UsageError
from pipeline.logs import ensure_file_log, event
from pipeline.redact import redact

_RUN_COLUMNS = {
    "command", "mode", "config_hash", "operation", "finished_at",
    "extract_seconds", "fetch_seconds", "transform_seconds", "review_seconds", "load_seconds",
    "listings", "unique_asins", "invalid_asins", "spapi_calls", "spapi_429s", "spapi_retries",
    "fetched_ok", "fallbacks", "unknowns", "quota_floor_seconds", "diffs", "holds", "pushes",
    "push_failures", "outcome", "message", "priced_at", "fx_jpy_per_usd",
}  # fmt: skip


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


_opened: list[tuple[Path, str]] = []  # (data_dir, run_id) this process started or resumed


def opened_here() -> list[tuple[Path, str]]:
    """The runs this process started or resumed, oldest first."""
    return list(_opened)


def forget_opened() -> None:
    """Start a new command's list of runs (``main`` calls it first)."""
    _opened.clear()


def _remember(ws: Workspace, run_id: str, command: str, *, resumed: bool) -> None:
    _opened.append((ws.data_dir, run_id))
    ensure_file_log(ws.data_dir, ws.env)
    event(
        "run_start",
        run_id=run_id,
        command=command,
        mode=ws.settings.mode,
        resumed=resumed,
        message=f"{'Resumed' if resumed else 'Started'} {command} run {run_id}.",
    )


def start_run(con: duckdb.DuckDBPyConnection, ws: Workspace, command: str) -> str:
    """Insert a ``running`` row and return its id (a ``run_start`` line in the log)."""
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
    _remember(ws, run_id, command, resumed=False)
    return run_id


def resume_run(con: duckdb.DuckDBPyConnection, ws: Workspace, run_id: str) -> None:
    """Set an interrupted (or crashed) run ``running`` again under this process, with a
    ``run_start`` line saying it was resumed."""
    update_run(con, run_id, outcome="running", message=None)
    rows = con.execute("select command from runs where run_id = $r", {"r": run_id}).fetchall()
    _remember(ws, run_id, str(rows[0][0]) if rows else "?", resumed=True)


def outcome_of(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The run's recorded outcome; None when there is no such run."""
    rows = con.execute("select outcome from runs where run_id = $r", {"r": run_id}).fetchall()
    return str(rows[0][0]) if rows else None


def close_left_running(
    con: duckdb.DuckDBPyConnection, data_dir: Path, reason: str, outcome: str = "failed"
) -> list[str]:
    """Record with ``outcome`` (failed; interrupted for a signal) and ``reason`` every run
    of ``data_dir`` this process opened that is still ``running`` (the command stopped
    before its stage recorded an outcome). Returns their ids."""
    closed = []
    for where, run_id in _opened:
        if where == data_dir and outcome_of(con, run_id) == "running":
            finish_run(con, run_id, outcome, reason)
            closed.append(run_id)
    return closed


def running_syncs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The ids of every sync run still recorded ``running``, newest first. Called under the
    run lock, so none of them has a live process."""
    rows = con.execute(
        "select run_id from runs where command = 'sync' and outcome = 'running'"
        " order by started_at desc, run_id desc"
    ).fetchall()
    return [str(r) for (r,) in rows]


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
