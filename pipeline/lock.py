"""One run at a time: an exclusive lock on ``<data_dir>/sync.lock``.

The lock is an ``fcntl.flock`` on the file, so the kernel releases it the moment the
holder dies, ``kill -9`` included. The file also records who holds it (pid, start time,
command) so a second run can say whom it is waiting for, and so a lock file left by a
dead process is recognised and recovered with a warning. A refusal is a ``lock_refused``
line in the JSON-lines log, naming who holds the lock (:func:`pipeline.logs.event`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pipeline.errors import RunLockedError
from pipeline.logs import ensure_file_log, event

LOCK_NAME = "sync.lock"
log = logging.getLogger("invsync.lock")


@dataclass(frozen=True)
class LockHolder:
    pid: int
    started_at: str  # ISO 8601, UTC
    command: str


def _read_holder(handle: IO[str]) -> LockHolder | None:
    handle.seek(0)
    text = handle.read().strip()
    if not text:
        return None
    try:
        data = json.loads(text)
        return LockHolder(int(data["pid"]), str(data["started_at"]), str(data.get("command", "?")))
    except (ValueError, KeyError, TypeError):
        return None


def current_holder(data_dir: Path) -> LockHolder | None:
    """Who holds the run lock now, read without taking it: None when nobody does (the file
    is missing or empty) or when the process it names is gone."""
    try:
        with open(data_dir / LOCK_NAME, encoding="utf-8") as handle:
            holder = _read_holder(handle)
    except OSError:
        return None
    return holder if holder is not None and _pid_alive(holder.pid) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


@contextmanager
def run_lock(data_dir: Path, command: str = "sync") -> Iterator[LockHolder]:
    """Hold the data directory's run lock for the duration of the block.

    Raises :class:`RunLockedError` at once (no waiting) when another live process holds it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 — held open for the whole run
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            who = (
                f"pid {holder.pid} ({holder.command}, started {holder.started_at})"
                if holder
                else "another process"
            )
            error = RunLockedError(
                f"Another invsync run holds {path}: {who}; wait for it to finish "
                "or stop that process, then run again."
            )
            ensure_file_log(data_dir, os.environ)
            event(
                "lock_refused",
                command=command,
                lock=str(path),
                holder_pid=holder.pid if holder else None,
                holder_command=holder.command if holder else None,
                holder_started_at=holder.started_at if holder else None,
                message=error.message,
            )
            raise error from None
        previous = _read_holder(handle)
        if previous is not None and previous.pid != os.getpid():
            state = "was still running" if _pid_alive(previous.pid) else "is gone"
            log.warning(
                "Recovered the run lock %s left by pid %s (%s, started %s), which %s.",
                path,
                previous.pid,
                previous.command,
                previous.started_at,
                state,
            )
        me = LockHolder(os.getpid(), datetime.now(UTC).isoformat(timespec="seconds"), command)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(me.__dict__))
        handle.flush()
        os.fsync(handle.fileno())
        try:
            yield me
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
