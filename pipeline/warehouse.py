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

A damaged file is named, never a bug: a warehouse DuckDB cannot open, or a Parquet file that
cannot be read, is a :class:`~pipeline.errors.DataError` (exit 2) naming the file and the
recovery step (docs/operations.md, "A damaged file"); readers of many files of history keep
only the readable ones (:func:`readable_parquet`), warning once per damaged file.
Paths given to DuckDB's ``read_parquet`` pass through :func:`duckdb_file` so a data directory
whose name holds ``[``, ``*`` or ``?`` is read as named, never as a glob.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ConfigError, DataError, WarehouseBusyError
from pipeline.files import atomic_target, write_text_atomic
from pipeline.layout import (
    DRY_RUN_PLANS,
    FILE_LAYOUT,
    export_path,
    exports_dir,
    file_layout_path,
)
from pipeline.sql import SQL_DIR

if TYPE_CHECKING:  # publish's store; history_store imports this module's readers
    from pipeline.history_store import HistoryStore

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
T = TypeVar("T")
DAMAGED_DOC = "docs/operations.md#a-damaged-file"
# what DuckDB's glob treats as a pattern in a file path; each is matched literally as [c]
_GLOB_CHARACTERS = frozenset("[*?")
# (path, size, mtime_ns) → whether the Parquet footer reads; and the damaged files warned of
_footer_readable: dict[tuple[str, int, int], bool] = {}
_warned_damaged: set[tuple[str, int, int, str]] = set()  # + the run id
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


def damaged_warehouse(path: Path, exc: BaseException) -> DataError:
    """The sentence for a warehouse file DuckDB cannot use: the file, DuckDB's reason (its
    first line: no secret is ever in it) and the recovery step."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(
        f"The warehouse {path} is damaged or not a DuckDB database ({reason[:160]}); move it "
        f"aside and rebuild it from the Parquet files with `invsync warehouse rebuild` "
        f"({DAMAGED_DOC})."
    )


# DuckDB's words for a database file it cannot use
_DAMAGE = re.compile(
    r"not a valid DuckDB database|Corrupt database file|checksum|Could not read enough bytes"
)


def is_damage(path: Path, exc: BaseException) -> bool:
    """True when ``exc``, raised opening or first using ``path``, says the file itself is
    unusable (not a lock, not a folder we may not write)."""
    if is_lock_conflict(exc) or not isinstance(exc, duckdb.Error):
        return False
    return path.is_file() and bool(_DAMAGE.search(str(exc)))


def _refuse_question_mark(path: Path) -> None:
    """DuckDB cuts a database path at ``?`` when it names the write-ahead log (it writes
    ``/a.wal?b/warehouse.duckdb``), so a warehouse under such a folder cannot commit."""
    if "?" in str(path.absolute()):
        raise ConfigError(
            f"The data directory {path.parent.absolute()} has a '?' in its path, under which DuckDB "
            "cannot keep its warehouse (it cuts file names at '?'); choose a folder without "
            "'?' with --data-dir or INVSYNC_DATA_DIR."
        )


def _names_damage(path: Path, exc: BaseException) -> bool:
    """True when DuckDB's error, raised while using the warehouse, says its file is damaged:
    a block it could not read from this file, or a block whose checksum does not match."""
    if not isinstance(exc, duckdb.Error) or is_lock_conflict(exc):
        return False
    text = str(exc)
    if "Corrupt database file" in text:
        return True
    return "Could not read enough bytes" in text and str(path.resolve()) in text


def connect(
    data_dir: Path, *, read_only: bool = False, wait: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating it and applying migrations unless ``read_only``).

    While another process holds the file, waits up to ``wait`` seconds (None:
    :func:`default_wait`), then raises :class:`WarehouseBusyError`. A file DuckDB cannot
    open (truncated, overwritten, not a database) is a :class:`DataError` naming it."""
    path = warehouse_path(data_dir)
    _refuse_question_mark(path)
    seconds = default_wait() if wait is None else wait
    if read_only and not path.exists():
        raise DataError(
            f"No warehouse at {path}; run `invsync listings import` or `invsync sync` first."
        )
    if not read_only:
        data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_files(data_dir)
    try:
        con = _open_waiting(path, read_only, seconds)
    except duckdb.Error as exc:
        if is_damage(path, exc):
            raise damaged_warehouse(path, exc) from None
        raise
    try:
        con.execute("set TimeZone = 'UTC'")
        if not read_only:
            apply_migrations(con)
    except BaseException as exc:
        con.close()
        if is_damage(path, exc):
            raise damaged_warehouse(path, exc) from None
        raise
    return con


def upgrade_files(data_dir: Path) -> None:
    """Bring the Parquet files of an older invsync into today's layout, once per data
    directory (``.file-layout`` records it): snapshot files and dry-run plans lose their
    ``run_id`` column (it is in their path; a damaged file is left as it is) and each export
    moves into a folder of its own, so pandas, polars, pyarrow and DuckDB each read every
    folder as one dataset (docs/analysts.md). Every file is rewritten or moved atomically, so
    an upgrade cut short is finished by the next one, and two at once do the same work."""
    mark = file_layout_path(data_dir)
    if mark.is_file() and mark.read_text(encoding="utf-8").strip() == str(FILE_LAYOUT):
        return
    from pipeline import snapshots

    keyed = snapshots.readable_snapshot_files(data_dir) + readable_parquet(
        sorted(data_dir.glob(DRY_RUN_PLANS)), "dry-run plan"
    )
    rewritten = _drop_column(keyed, "run_id")
    moved = 0
    for old in sorted(exports_dir(data_dir).glob("*.parquet")):  # layout 1: all in one folder
        new = export_path(data_dir, old.stem)
        new.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileNotFoundError):  # another process moved it this moment
            os.replace(old, new)
            moved += 1
    if rewritten or moved:
        log.info(
            "Upgraded the files of %s: %d snapshot and plan files without their run_id column, "
            "%d exports into folders of their own.",
            data_dir, rewritten, moved,
        )  # fmt: skip
    write_text_atomic(mark, f"{FILE_LAYOUT}\n")


def _drop_column(paths: list[Path], column: str) -> int:
    """Rewrite, atomically, each of ``paths`` that holds ``column`` without it; how many."""
    rewritten = 0
    for path in paths:
        if column not in pq.read_schema(path).names:
            continue
        write_parquet_atomic(pl.read_parquet(path, glob=False).drop(column), path)
        rewritten += 1
    return rewritten


@contextmanager
def opened(
    data_dir: Path, *, read_only: bool = False, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`connect` for the duration of the block, closed after it. DuckDB reading a
    damaged block of the warehouse inside the block is a :class:`DataError` naming it."""
    con = connect(data_dir, read_only=read_only, wait=wait)
    try:
        with naming_damage(data_dir):
            yield con
    finally:
        con.close()


@contextmanager
def naming_damage(data_dir: Path) -> Iterator[None]:
    """Inside the block, DuckDB reading a damaged block of the warehouse is a
    :class:`DataError` naming the file and the recovery step."""
    try:
        yield
    except duckdb.Error as exc:
        if _names_damage(warehouse_path(data_dir), exc):
            raise damaged_warehouse(warehouse_path(data_dir), exc) from None
        raise


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


def read_parquet_validated(
    path: Path,
    schema: Any | None = None,
    *,
    recovery: str = "re-run the stage that wrote it",
    path_keys: dict[str, str] | None = None,
) -> pl.DataFrame:
    """Read a Parquet file and validate it; a missing, unreadable or invalid file is a
    :class:`DataError` naming it and ``recovery`` (the next step). ``path_keys``: the keys
    its Hive folders carry (e.g. the run id), added as text columns before validation."""
    if not path.is_file():
        raise DataError(f"Parquet file {path} does not exist; check the run id.")
    try:
        frame = pl.read_parquet(path, glob=False)
    except (pl.exceptions.PolarsError, OSError, pa.ArrowException) as exc:
        raise DataError(
            f"The file {path} is damaged and cannot be read ({type(exc).__name__}); "
            f"{recovery} ({DAMAGED_DOC})."
        ) from None
    if path_keys:
        frame = frame.with_columns(
            pl.lit(value, dtype=pl.String).alias(key) for key, value in path_keys.items()
        )
    if schema is not None:
        from pipeline.schemas import validated

        frame = validated(
            frame,
            schema,
            lambda problems: DataError(
                f"{path} failed validation ({problems}); it was not written by this version "
                f"of invsync or is damaged — {recovery} ({DAMAGED_DOC})."
            ),
        )
    return frame


def duckdb_file(path: Path | str) -> str:
    """``path`` as DuckDB's ``read_parquet`` must be given it to read exactly that file:
    each glob character (``[``, ``*``, ``?``) in a folder's name enclosed as ``[c]``.
    (Unescaped, ``/tmp/x[1]/data`` would silently read ``/tmp/x1/data``.)"""
    return "".join(f"[{c}]" if c in _GLOB_CHARACTERS else c for c in str(path))


def _file_key(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path), stat.st_size, stat.st_mtime_ns)


def _footer_reads(path: Path) -> bool:
    """Whether the Parquet footer (schema, row groups) of ``path`` reads: a truncated file
    or one that is not Parquet fails here, at the cost of one small read at the file's end."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return True


def readable_parquet(paths: list[Path], what: str) -> list[Path]:
    """``paths`` less those whose Parquet footer does not read, each of those warned about
    once per process (``what`` names the kind, e.g. "snapshot"). Cached by path, size and
    modification time, so every reader of a run checks a file once."""
    kept = []
    for path in paths:
        key = _file_key(path)
        if key is None:
            continue  # gone since it was listed
        ok = _footer_readable.get(key)
        if ok is None:
            ok = _footer_readable[key] = _footer_reads(path)
        if ok:
            kept.append(path)
        else:
            warn_damaged(path, what, key)
    return kept


def warn_damaged(path: Path, what: str, key: tuple[str, int, int] | None = None) -> None:
    """One warning per damaged file per run (per process outside a run, so a daemon warns
    again at each sync): skipped, and how to clear it."""
    from pipeline.logs import current_run

    key = key or _file_key(path) or (str(path), 0, 0)
    _footer_readable[key] = False
    seen = (*key, current_run.get() or "")
    if seen in _warned_damaged:
        return
    _warned_damaged.add(seen)
    log.warning(
        "Skipped the damaged %s file %s (it cannot be read; no decision uses it); move it "
        "out of the data directory to silence this (%s).",
        what, path, DAMAGED_DOC,
    )  # fmt: skip


def read_skipping_damaged(
    paths: list[Path],
    what: str,
    read: Callable[[list[Path]], T],
    errors: tuple[type[BaseException], ...],
) -> T | None:
    """``read(paths)``; when it fails with one of ``errors`` (a damaged page behind a sound
    footer), the damaged files are found by :func:`fully_readable`, warned of and left out,
    and the rest read again. None when no file is left."""
    try:
        return read(paths)
    except errors:
        kept = fully_readable(paths, what)
        return read(kept) if kept else None


def fully_readable(paths: list[Path], what: str) -> list[Path]:
    """``paths`` less those that fail a full read (a damaged page behind a sound footer),
    each warned about once: the slow check, for when a read of all of them failed."""
    kept = []
    for path in paths:
        try:
            pq.read_table(path)
        except (OSError, pa.ArrowException):
            warn_damaged(path, what)
            continue
        kept.append(path)
    return kept


# --- rebuilding a damaged warehouse ------------------------------------------------------------


@dataclass(frozen=True)
class Rebuilt:
    """What :func:`rebuild` did: where the old file went, what came back from ``exports/``."""

    moved_to: Path | None  # the damaged file, kept beside the new one
    restored: dict[str, int]  # table → rows restored from exports/<table>/<table>.parquet
    not_restored: dict[str, str]  # table → why its export could not be used
    closed_runs: int  # runs left running or interrupted, now failed (their state is gone)
    snapshots: int  # readable snapshot files the new views read
    exported_at: datetime | None  # when the newest export used was written


def is_damaged(data_dir: Path) -> bool:
    """True when the warehouse cannot be opened or one of its tables cannot be read whole
    (every block is read, so a damaged page anywhere is found)."""
    path = warehouse_path(data_dir)
    if not path.exists():
        return False
    try:
        con = connect(data_dir, read_only=True, wait=0)
    except DataError:
        return True
    try:
        for (table,) in con.execute("select table_name from duckdb_tables()").fetchall():
            con.sql(f'select * from "{table}"').to_arrow_table()
    except duckdb.Error as exc:
        if _DAMAGE.search(str(exc)):
            return True
        raise
    finally:
        con.close()
    return False


def rebuild(data_dir: Path, *, now: datetime, history: HistoryStore | None = None) -> Rebuilt:
    """Move the warehouse aside as ``warehouse.duckdb.damaged-<UTC time>``, create a new
    one (migrations; an older layout's exports move into place), restore the exported
    tables from ``exports/`` (as of the last publish), close the runs whose working state is
    gone, and rebuild the views over the snapshot and diff Parquet. The caller holds the run
    lock."""
    from pipeline import views

    path = warehouse_path(data_dir)
    moved = None
    if path.exists():
        moved = path.with_name(f"{path.name}.damaged-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}")
        os.replace(path, moved)
        wal = Path(f"{path}.wal")
        if wal.exists():
            os.replace(wal, Path(f"{moved}.wal"))
    restored: dict[str, int] = {}
    refused: dict[str, str] = {}
    stamps: list[datetime] = []
    with opened(data_dir, wait=0) as con:
        for table in views.EXPORTED_TABLES:
            source = export_path(data_dir, table)  # opened() moved layout 1's (upgrade_files)
            outcome = _restore(con, table, source)
            if isinstance(outcome, int):
                restored[table] = outcome
                stamps.append(datetime.fromtimestamp(source.stat().st_mtime, UTC))
            else:
                refused[table] = outcome
        closed = _close_stale_runs(con) if "runs" in restored else 0
        views.publish(con, data_dir, history)  # history: the store the views read, if any
    return Rebuilt(
        moved_to=moved,
        restored=restored,
        not_restored=refused,
        closed_runs=closed,
        snapshots=len(readable_parquet(_snapshot_files(data_dir), "snapshot")),
        exported_at=max(stamps) if stamps else None,
    )


def _snapshot_files(data_dir: Path) -> list[Path]:
    from pipeline.snapshots import snapshot_files

    return snapshot_files(data_dir)


def _restore(con: duckdb.DuckDBPyConnection, table: str, source: Path) -> int | str:
    """Rows of ``source`` inserted into ``table`` (by column name), or why not."""
    if not source.is_file():
        return "no export"
    if not readable_parquet([source], "export"):
        return "the export is damaged"
    try:
        with transaction(con):
            con.execute(
                f"insert into {table} by name select * from read_parquet($f)",
                {"f": duckdb_file(source.resolve())},
            )
    except duckdb.Error as exc:
        return f"the export does not fit the table ({type(exc).__name__})"
    return int(con.execute(f"select count(*) from {table}").fetchall()[0][0])


def _close_stale_runs(con: duckdb.DuckDBPyConnection) -> int:
    """Runs restored as running or interrupted cannot go on: their fetch plan and verdicts
    were in the damaged file. They are failed with that reason."""
    rows = con.execute(
        "update runs set outcome = 'failed', finished_at = coalesce(finished_at, now()),"
        " message = 'The warehouse was rebuilt from Parquet; this run''s working state "
        "(fetch plan, verdicts) was lost with the damaged file.'"
        " where outcome in ('running', 'interrupted') returning run_id"
    ).fetchall()
    return len(rows)
