"""The warehouse: the DuckDB master database and the Parquet files beside it.

Reads and writes ``<data_dir>/warehouse.duckdb``. Numbered migrations in
``sql/migrations/NNN_name.sql`` are applied in order when the database is opened
for writing, each in its own transaction, and recorded in ``schema_migrations``.
Parquet files are written atomically (temp file in the same folder, then rename)
and validated on the way out and on the way in.

One writer at a time: DuckDB lets one process write the file, and while it does no other
process may open it, not even read-only. Every open here therefore waits when the file is
locked by another process — retrying with a short backoff for up to ``wait`` seconds
(default :data:`WAIT_ENV` or :data:`DEFAULT_WAIT_SECONDS`), announcing the wait once — and
then raises :class:`~pipeline.errors.WarehouseBusyError` naming who holds it. A sync opens
the warehouse per stage and never during the SP-API fetch (docs/operations.md, "While a
sync runs").
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import ConfigError, DataError, WarehouseBusyError
from pipeline.files import atomic_target
from pipeline.sql import SQL_DIR

WAREHOUSE_NAME = "warehouse.duckdb"
MIGRATIONS_DIR = SQL_DIR / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

WAIT_ENV = "INVSYNC_WAREHOUSE_WAIT"  # seconds a command waits for a busy warehouse
DEFAULT_WAIT_SECONDS = 15.0
# A run's stage (sync, fetch) waits far longer: a person's command holds the file a moment
RUN_WAIT_SECONDS = 600.0
_FIRST_RETRY_SECONDS = 0.05  # the backoff doubles from here ...
_LONGEST_RETRY_SECONDS = 1.0  # ... up to this
# DuckDB's words when another process holds the file: "IO Error: Could not set lock on file
# "…": Conflicting lock is held in /usr/bin/python3 (PID 1234) …"
_LOCK_CONFLICT = re.compile(r"Could not set lock on file")
_LOCK_HOLDER = re.compile(r"held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
log = logging.getLogger("invsync.warehouse")
_wait_notice: ContextVar[Callable[[str], None] | None] = ContextVar("wait_notice", default=None)


def warehouse_path(data_dir: Path) -> Path:
    return data_dir / WAREHOUSE_NAME


def migrations() -> list[tuple[int, str, Path]]:
    """The migration files in order: (version, name, path)."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise DataError(
                f"Migration file {path.name} is not named NNN_name.sql; rename it in sql/migrations/."
            )
        found.append((int(match.group(1)), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise DataError("Two migrations in sql/migrations/ share a number; renumber one of them.")
    return found


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now."""
    con.execute(
        "create table if not exists schema_migrations ("
        " version integer primary key, name varchar not null, applied_at timestamptz not null)"
    )
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for version, name, path in migrations():
        if version in done:
            continue
        con.execute("begin transaction")
        try:
            con.execute(path.read_text(encoding="utf-8"))
            con.execute(
                "insert into schema_migrations values ($v, $n, now())", {"v": version, "n": name}
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        applied.append(name)
    return applied


def is_lock_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is DuckDB refusing a file another process holds (not a damaged file)."""
    return isinstance(exc, duckdb.IOException) and bool(_LOCK_CONFLICT.search(str(exc)))


def default_wait() -> float:
    """Seconds to wait for a busy warehouse: ``INVSYNC_WAREHOUSE_WAIT``, else 15."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_WAIT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also rejects nan
        raise ConfigError(
            f"{WAIT_ENV}={raw!r} is not a number of seconds; set it to e.g. 15, or unset it."
        )
    return seconds


def holder_of(data_dir: Path, exc: BaseException | None = None) -> str:
    """Who holds the warehouse, in words: the sync named in ``sync.lock`` when it is the
    process DuckDB names, else the process DuckDB names, else "another process"."""
    from pipeline.lock import current_holder

    match = _LOCK_HOLDER.search(str(exc)) if exc is not None else None
    pid = int(match.group("pid")) if match else None
    run = current_holder(data_dir)
    if run is not None and (pid is None or pid == run.pid):
        return f"{run.command} run pid {run.pid} (started {run.started_at})"
    if match is not None:
        return f"process pid {pid} ({Path(match.group('program')).name})"
    return "another process"


@contextmanager
def wait_notices(notice: Callable[[str], None]) -> Iterator[None]:
    """Inside the block, a wait for the busy warehouse is announced through ``notice``
    (the CLI prints it on stderr) instead of the log."""
    token = _wait_notice.set(notice)
    try:
        yield
    finally:
        _wait_notice.reset(token)


def _announce(message: str) -> None:
    notice = _wait_notice.get()
    if notice is None:
        log.info(message)
    else:
        log.debug(message)
        notice(message)


def _open_waiting(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried while another process holds the file, for up to ``wait``
    seconds; then :class:`WarehouseBusyError`. Other errors pass through untouched."""
    deadline = time.monotonic() + wait
    pause = _FIRST_RETRY_SECONDS
    announced = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            holder = holder_of(path.parent, exc)
            # DuckDB adds "you would be able to open this database in read-only mode" when
            # the holder only reads
            verb = "reading" if "read-only mode" in str(exc) else "writing"
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseBusyError(
                    f"The warehouse {path} is busy: {holder} is {verb} it and did not let go "
                    f"within {wait:g} s; try again in a minute, or wait longer with "
                    f"{WAIT_ENV}=SECONDS."
                ) from None
            if not announced:
                _announce(f"Waiting for the warehouse {path} (up to {wait:g} s), held by {holder}.")
                announced = True
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_RETRY_SECONDS)


def connect(
    data_dir: Path, *, read_only: bool = False, wait: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating it and applying migrations unless ``read_only``).

    While another process holds the file, waits up to ``wait`` seconds (None:
    :func:`default_wait`), then raises :class:`WarehouseBusyError`."""
    path = warehouse_path(data_dir)
    seconds = default_wait() if wait is None else wait
    if read_only:
        if not path.exists():
            raise DataError(
                f"No warehouse at {path}; run `invsync listings import` or `invsync sync` first."
            )
        con = _open_waiting(path, True, seconds)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        con = _open_waiting(path, False, seconds)
    try:
        con.execute("set TimeZone = 'UTC'")
        if not read_only:
            apply_migrations(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def opened(
    data_dir: Path, *, read_only: bool = False, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`connect` for the duration of the block, closed after it."""
    con = connect(data_dir, read_only=read_only, wait=wait)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit on success, roll back on any exception."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def write_parquet_atomic(frame: pl.DataFrame, path: Path, schema: Any | None = None) -> Path:
    """Validate ``frame`` with the pandera ``schema`` (if given), then write it atomically.

    The file appears complete or not at all (:func:`pipeline.files.atomic_target`).
    """
    if schema is not None:
        frame = schema.validate(frame, lazy=True)
    with atomic_target(path) as tmp:
        frame.write_parquet(tmp)
    return path


def read_parquet_validated(path: Path, schema: Any | None = None) -> pl.DataFrame:
    """Read a Parquet file and validate it; a bad file is a :class:`DataError`."""
    if not path.is_file():
        raise DataError(f"Parquet file {path} does not exist; check the run id.")
    frame = pl.read_parquet(path)
    if schema is not None:
        from pipeline.schemas import validated

        frame = validated(
            frame,
            schema,
            lambda problems: DataError(
                f"{path} failed validation ({problems}); it was not written by this version "
                "of invsync or is damaged — re-run the stage."
            ),
        )
    return frame
