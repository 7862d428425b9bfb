"""Logging: readable lines on the terminal, JSON lines under ``<data_dir>/logs/``.

Every record carries the current run id (set with :func:`run_context`), and every
record's text passes through :func:`pipeline.redact.redact` on both handlers, so a
secret that slipped into a message still never reaches a terminal or a file.
The JSON file rotates at 5 MB and keeps 10 old files.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipeline.redact import redact, secret_values

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
        record.run_id = current_run.get()
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
        return json.dumps(entry, ensure_ascii=False)


class TerminalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        text = f"{stamp} {level}{record.getMessage()}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


def configure_logging(
    data_dir: Path | None, env: Mapping[str, str], *, verbose: bool = False, terminal: bool = True
) -> None:
    """Install invsync's handlers on the ``invsync`` logger (idempotent)."""
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
        stream.addFilter(RunIdFilter(secrets))
        stream.setFormatter(TerminalFormatter())
        logger.addHandler(stream)
    if data_dir is not None:
        folder = data_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            folder / LOG_FILE, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
        )
        file_handler.setLevel(logging.DEBUG)
        file_handler.addFilter(RunIdFilter(secrets))
        file_handler.setFormatter(JsonLinesFormatter())
        logger.addHandler(file_handler)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    """Every log record inside the block carries ``run_id``."""
    token = current_run.set(run_id)
    try:
        yield
    finally:
        current_run.reset(token)
