"""Logging: readable lines on the terminal, JSON lines under ``<data_dir>/logs/``.

A terminal line starts with its time of day in the ``[display] timezone``, named
(``20:26:12 JST``); the JSON lines' ``ts`` is UTC ISO 8601 with its offset, for machines.

Every record carries the current run id (set with :func:`run_context`), and every
record's text passes through :func:`pipeline.redact.redact` on both handlers, so a
secret that slipped into a message still never reaches a terminal or a file.
The JSON file rotates at 5 MB and keeps 10 old files.

:func:`event` writes the story of the runs into the same file, one JSON line per event with
an ``event`` key and its fields at the top level (never on the terminal): ``run_start``,
``stage_end``, ``lock_refused`` and ``run_outcome`` (docs/operations.md, "Reading the log",
has the ``jq`` one-liners that read them). Stage: every command. Reads nothing; writes
``<data_dir>/logs/invsync.jsonl``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.display import DEFAULT_TIMEZONE, clock
from pipeline.redact import redact, secret_values

EVENTS = (  # every structured event :func:`event` writes, named once
    "run_start", "stage_end", "lock_refused", "run_outcome",
)  # fmt: skip
LOG_FILE = "invsync.jsonl"
_MAX_BYTES = 5 * 1024 * 1024  # bytes per file before rotation
_BACKUPS = 10
current_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
# Libraries that log request headers (access tokens) at DEBUG never go below INFO.
_CHATTY = ("sp_api", "urllib3", "requests", "werkzeug", "httpx", "httpcore")


class RunIdFilter(logging.Filter):
    """Stamps ``record.run_id`` and masks secrets in the rendered message."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = getattr(record, "run_id", None) or current_run.get()
        fields = getattr(record, "event_fields", None)
        if fields is not None:
            record.event_fields = {k: _redacted(v, self.secrets) for k, v in fields.items()}
        message = redact(record.getMessage(), self.secrets)
        record.msg, record.args = message, None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted, self.secrets)
            record.exc_info = None
        return True


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "run_id": getattr(record, "run_id", None),
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        name = getattr(record, "event", None)
        if name is not None:
            entry["event"] = name
            entry.update(getattr(record, "event_fields", {}))
        return json.dumps(entry, ensure_ascii=False, default=str)


class NoEvents(logging.Filter):
    """Keeps structured events off the terminal: they are for the JSON-lines file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "event", None) is None


class TerminalFormatter(logging.Formatter):
    """``20:26:12 JST message``: the time of day in the display zone, named (the JSON-lines
    file keeps UTC with its offset for machines)."""

    def __init__(self, timezone: str = DEFAULT_TIMEZONE) -> None:
        super().__init__()
        self.timezone = timezone

    def format(self, record: logging.LogRecord) -> str:
        stamp = clock(datetime.fromtimestamp(record.created, UTC), self.timezone)
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        text = f"{stamp} {level}{record.getMessage()}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


def configure_logging(
    data_dir: Path | None,
    env: Mapping[str, str],
    *,
    verbose: bool = False,
    terminal: bool = True,
    timezone: str = DEFAULT_TIMEZONE,
) -> None:
    """Install invsync's handlers on the ``invsync`` logger (idempotent); the terminal's
    lines show their time in ``timezone`` (``[display] timezone``), named."""
    secrets = secret_values(env)
    logger = logging.getLogger("invsync")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if terminal:
        stream = logging.StreamHandler()
        stream.setLevel(logging.DEBUG if verbose else logging.INFO)
        stream.addFilter(NoEvents())
        stream.addFilter(RunIdFilter(secrets))
        stream.setFormatter(TerminalFormatter(timezone))
        logger.addHandler(stream)
    if data_dir is not None:
        logger.addHandler(_file_handler(data_dir, secrets))
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


def _file_handler(data_dir: Path, secrets: list[str]) -> logging.Handler:
    folder = data_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        folder / LOG_FILE, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
    )
    file_handler.setLevel(logging.DEBUG)
    file_handler.addFilter(RunIdFilter(secrets))
    file_handler.setFormatter(JsonLinesFormatter())
    return file_handler


def log_file(data_dir: Path) -> Path:
    """Where the JSON-lines log of a data directory is."""
    return data_dir / "logs" / LOG_FILE


def ensure_file_log(data_dir: Path, env: Mapping[str, str]) -> None:
    """The JSON-lines file of ``data_dir`` on the ``invsync`` logger, for a command that set
    no logging up (its terminal stays as it was): added when missing, and replacing the file
    of another data directory, so a run's events always land in its own data directory."""
    logger = logging.getLogger("invsync")
    target = os.path.abspath(log_file(data_dir))
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            if handler.baseFilename == target:
                return
            logger.removeHandler(handler)
            handler.close()
    logger.addHandler(_file_handler(data_dir, secret_values(env)))


_events = logging.getLogger("invsync.events")
_events.setLevel(logging.INFO)  # events are written whatever level the rest logs at
_outcomes = 0  # run_outcome lines written by this process (main() writes one when none was)


def event(name: str, **fields: Any) -> None:
    """One JSON line ``{"event": name, ...fields}`` in ``invsync.jsonl`` (with ``ts``, ``level``
    and ``run_id`` like every record; string fields redacted). ``name`` is one of
    :data:`EVENTS`; an unknown name is a bug. A warning-level event is a refusal or a
    failure, so ``jq 'select(.level != "info")'`` finds the runs that need a person."""
    global _outcomes
    if name not in EVENTS:
        raise ValueError(f"unknown log event {name!r}")
    if name == "run_outcome":
        _outcomes += 1
    failed = name == "lock_refused" or (
        name == "run_outcome" and fields.get("outcome") not in ("ok", "interrupted", "stopped")
    )
    extra: dict[str, Any] = {"event": name, "event_fields": fields}
    if fields.get("run_id"):
        extra["run_id"] = fields["run_id"]
    _events.log(logging.WARNING if failed else logging.INFO, name, extra=extra)


def outcomes_written() -> int:
    """How many ``run_outcome`` lines this process has written (see :func:`event`)."""
    return _outcomes


def _redacted(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secrets) for v in value]
    return value


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    """Every log record inside the block carries ``run_id``."""
    token = current_run.set(run_id)
    try:
        yield
    finally:
        current_run.reset(token)
