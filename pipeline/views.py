"""The analysts' views, in the warehouse and in a reader's copy beside it.

Reads the snapshot, diff and listing-history Parquet files, the warehouse tables and
``decisions.sqlite``; writes views into ``warehouse.duckdb`` and into ``analytics.duckdb``,
plus Parquet exports of the warehouse tables and the decisions under ``exports/``.

Why two databases: DuckDB lets one process write a database file and no other process
open it at the same time, not even read-only. A sync holds ``warehouse.duckdb`` while
each stage writes (the load for minutes), so analysts read ``analytics.duckdb`` instead: it holds only views over
Parquet files (snapshots, diffs, and the exported ``runs``, ``push_journal`` and listing
tables), so reading it never touches the sync's file, and the sync never needs it.
Exports are replaced atomically; the views pick the new files up on their next query.
A damaged snapshot or diff file is left out of the views (named in one warning): while one
is, the views name the readable files one by one, and a file written later appears at the
next publish; otherwise they read a glob, escaped so a folder named ``x[1]`` is a name.

View bodies live in ``sql/views/<name>.sql`` and are written over the source names: the
Parquet folders ``snapshots``, ``diff_rows`` and ``listing_rows``, the exported warehouse
tables (:data:`EXPORTED_TABLES`) and the exported decisions (:data:`DECISION_EXPORTS`, from
``decisions.sqlite``). Analysts see the sources too; every view and column they see is in
``docs/data-dictionary.md`` (:mod:`pipeline.dictionary`, from ``sql/views/dictionary.toml``).
Neither a snapshot nor a diff nor a listing file holds the keys of its path (``dt``,
``run_id``, ``platform``): the sources read them from the Hive folders, as pandas, polars,
pyarrow and DuckDB readers of the folder do, and each export has a folder of its own
(``exports/<table>/<table>.parquet``). ``analytics.duckdb`` is written in an older storage
version (:data:`ANALYTICS_STORAGE_VERSION`) so the DuckDB CLI versions pip installs open it.

With ``[history] url`` set (:mod:`pipeline.history_store`), publish uploads the history to
that object store and every view reads ``s3://`` paths below the URL instead of the local
folders; a connection reading them needs the store registered (:func:`open_for_reading`,
:func:`reading_history`). The views name paths only, never a credential.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import polars as pl

from pipeline import decisions, schemas, warehouse
from pipeline.files import atomic_target
from pipeline.history_store import HistoryStore
from pipeline.layout import (
    DIFF_FILES,
    LISTING_FILES,
    SNAPSHOT_FILES,
    SNAPSHOT_PATH_KEYS,
    export_path,
)
from pipeline.sql import load_sql

# in order of creation: a view reads only the sources and the views before it
ANALYST_VIEWS = (
    "price_history", "latest_price", "oos_episodes", "listing_history", "listing_margins",
    "account_margins", "diffs", "diff_base", "diff_ebay", "holds", "breaker_verdicts", "pushes",
    "fetch_health", "fetch_statuses",
)  # fmt: skip
# warehouse tables exported at each publish, viewed by analysts, restored by a rebuild
EXPORTED_TABLES = ("runs", "push_journal", "listings_base", "listings_ebay")
# exported and viewed, not restored: a run's verdicts went with its lost working state
VERDICT_TABLES = ("review_breakers",)
DECISION_EXPORTS = tuple(decisions.EXPORT_SCHEMAS)  # decisions.sqlite's tables, exported
SOURCE_VIEWS = ("snapshots", "diff_rows", "listing_rows", *DECISION_EXPORTS)
ANALYTICS_NAME = "analytics.duckdb"
log = logging.getLogger("invsync.views")

_DUCKDB_TYPES = {
    pl.Utf8: "varchar",
    pl.Int64: "bigint",
    pl.Int32: "integer",
    pl.Boolean: "boolean",
    pl.Float64: "double",
}


# a diff's or listing history's run and platform are in its path only
DIFF_PATH_KEYS = ("run_id", "platform")


def _literal(path: Path | str) -> str:
    """A path as an SQL string literal. View DDL cannot take parameters, so the
    absolute path is embedded, with quotes doubled."""
    return "'" + str(path).replace("'", "''") + "'"


def _source(path: Path) -> str:
    """One file for ``read_parquet``: absolute, its glob characters escaped, as a literal."""
    return _literal(warehouse.duckdb_file(path.resolve()))


def _sql_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamptz"
    return _DUCKDB_TYPES.get(dtype.base_type(), "varchar")


def _empty_relation(
    models: tuple[type[schemas.pa.DataFrameModel], ...], path_keys: tuple[str, ...] = ()
) -> str:
    """``select … limit 0`` with the columns and types of the models (union of columns),
    then the ``path_keys`` as text."""
    columns: dict[str, str] = {}
    for model in models:
        for name, column in model.to_schema().columns.items():
            columns.setdefault(name, _sql_type(column.dtype.type))
    for key in path_keys:
        columns.setdefault(key, "varchar")
    return _empty_select(columns)


def _empty_select(columns: dict[str, str]) -> str:
    body = ", ".join(f"cast(null as {t}) as {n}" for n, t in columns.items())
    return f"select {body} limit 0"


def _file_source(data_dir: Path, path: Path, history: HistoryStore | None) -> str:
    """One file of the data directory for ``read_parquet``: local, or its object in the store."""
    if history is None:
        return _source(path)
    return _literal(history.remote(path.relative_to(data_dir)))


def _glob_or_empty(
    data_dir: Path,
    files: tuple[str, str],
    models: tuple[type[schemas.pa.DataFrameModel], ...],
    path_keys: tuple[str, ...] = (),
    history: HistoryStore | None = None,
) -> str:
    """A relation over the Parquet files, or an empty typed one while there are none
    (DuckDB binds a view when it is created, and an empty glob does not bind).
    ``path_keys``: Hive keys of the path that the files do not hold, read as text.

    With a remote ``history`` the relation reads the store's objects, a glob below the URL
    (the prefix is plain characters: config checks it). The store holds only files that
    passed the footer check here before upload (:mod:`pipeline.history_store`), so a damaged
    local file is already left out there; whether there is anything to read is the store's
    listing, not the local folder's (a worker may hold less than the store)."""
    folder, pattern = files
    if history is not None:
        if not history.matching(folder, pattern):
            return _empty_relation(models, path_keys)
        where = _literal(history.remote(folder) + "/" + pattern)
        return _read_parquet(where, path_keys)
    found = sorted((data_dir / folder).glob(pattern))
    kind = {SNAPSHOT_FILES: "snapshot", DIFF_FILES: "diff"}.get(files, "listing history")
    readable = warehouse.readable_parquet(found, kind)
    if not readable:
        return _empty_relation(models, path_keys)
    if len(readable) == len(found):  # all sound: a glob, so later files appear by themselves
        where = _literal(warehouse.duckdb_file((data_dir / folder).resolve()) + "/" + pattern)
    else:
        where = "[" + ", ".join(_source(path) for path in readable) + "]"
    return _read_parquet(where, path_keys)


def _read_parquet(where: str, path_keys: tuple[str, ...]) -> str:
    hive = "hive_partitioning = false"
    if path_keys:
        types = ", ".join(f"'{key}': varchar" for key in path_keys)
        hive = f"hive_partitioning = true, hive_types = {{{types}}}"
    return f"select * from read_parquet({where}, union_by_name = true, {hive})"


def _decision_export(data_dir: Path, name: str, history: HistoryStore | None = None) -> str:
    """The exported decisions table ``name``, or an empty typed one before the first export
    (exports are uploaded at every publish, so a local one is in the store too)."""
    source = export_path(data_dir, name)
    if source.is_file():
        return f"select * from read_parquet({_file_source(data_dir, source, history)})"
    schema = decisions.EXPORT_SCHEMAS[name]
    return _empty_select({column: _sql_type(dtype) for column, dtype in schema.items()})


def _verdict_views(
    con: duckdb.DuckDBPyConnection, data_dir: Path, history: HistoryStore | None = None
) -> None:
    """In the analysts' database, :data:`VERDICT_TABLES` as views over their exports (the
    warehouse has the tables themselves; publish writes the exports before this database)."""
    tables = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()
    }
    for name in VERDICT_TABLES:
        source = export_path(data_dir, name)
        if name not in tables and source.is_file():
            con.execute(
                f"create or replace view {name} as select * from "
                f"read_parquet({_file_source(data_dir, source, history)})"
            )


def create_source_views(
    con: duckdb.DuckDBPyConnection, data_dir: Path, history: HistoryStore | None = None
) -> None:
    """The Parquet folders and the exported decisions as views (:data:`SOURCE_VIEWS`): over
    the data directory, or over the store of a remote ``history`` (registered on ``con``)."""
    if history is not None:
        history.register(con)
    snapshots = _glob_or_empty(
        data_dir, SNAPSHOT_FILES, (schemas.Snapshot,), SNAPSHOT_PATH_KEYS, history
    )
    # the run id first, as in the frame (schemas.Snapshot); dt is only the run id's date
    snapshots = f"select run_id, * exclude (dt, run_id) from ({snapshots})"
    diffs = _glob_or_empty(data_dir, DIFF_FILES, (schemas.PricedDiff,), DIFF_PATH_KEYS, history)
    listings = _glob_or_empty(
        data_dir, LISTING_FILES, (schemas.ListingHistory,), DIFF_PATH_KEYS, history
    )
    con.execute(f"create or replace view snapshots as {snapshots}")
    con.execute(
        "create or replace view diff_rows as select * replace (cast(fx_jpy_per_usd as"
        f" decimal(12, 4)) as fx_jpy_per_usd) from ({diffs})"  # the file holds exact text
    )
    con.execute(f"create or replace view listing_rows as {listings}")
    for name in DECISION_EXPORTS:
        con.execute(f"create or replace view {name} as {_decision_export(data_dir, name, history)}")
    _verdict_views(con, data_dir, history)


def create_analyst_views(con: duckdb.DuckDBPyConnection) -> None:
    for name in ANALYST_VIEWS:
        con.execute(f"create or replace view {name} as {load_sql(f'views/{name}')}")


def refresh_warehouse_views(
    con: duckdb.DuckDBPyConnection, data_dir: Path, history: HistoryStore | None = None
) -> None:
    """(Re)create the analysts' views inside the warehouse itself (over the store of a
    remote ``history``: a later reader of them registers it, as :func:`reading_history`)."""
    create_source_views(con, data_dir, history)
    create_analyst_views(con)


def export_tables(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Write the warehouse tables analysts read, and the decisions store's tables, to
    ``exports/<table>/<table>.parquet``, atomically: one folder per table, so each reads as a
    dataset of its own."""
    for table in (*EXPORTED_TABLES, *VERDICT_TABLES):
        target = export_path(data_dir, table)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(target) as temporary:
            con.execute(
                f"copy (select * from {table}) to {_literal(temporary.resolve())} (format parquet)"
            )
    for name, frame in decisions.export_frames(data_dir).items():
        target = export_path(data_dir, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(target) as temporary:
            frame.write_parquet(temporary)


# The on-disk format analytics.duckdb is written in. DuckDB 2.0 writes its own newest storage
# version by default, which the DuckDB CLI and Python wheels analysts install (1.2 to 1.5)
# refuse ("Trying to read a database file with version number 999, but we can only read
# versions between 64 and 67", the CLI 1.4.4). Version 64 ('v1.0.0'):
# every release from 1.0 on reads it; a file of views needs none of the newer formats' features
# (1.0 and 1.1 read the format but not the view definitions 2.0 stores: 1.2 is the oldest
# Python reader, tests/integration/test_readers.py).
ANALYTICS_STORAGE_VERSION = "v1.0.0"
ANALYTICS_STORAGE_NUMBER = 64  # the number DuckDB writes into the header for it
_HEADER_MAGIC = b"DUCK"  # at byte 8, then the storage version as 8 bytes, little-endian
_ATTACHED = "analytics"  # the name the reader's database is attached under while written


def storage_number(path: Path) -> int | None:
    """The storage version in a DuckDB file's header, or None when it is no DuckDB file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[8:12] != _HEADER_MAGIC:
        return None
    return int.from_bytes(head[12:20], "little")


def publish(
    con: duckdb.DuckDBPyConnection, data_dir: Path, history: HistoryStore | None = None
) -> bool:
    """Refresh the warehouse views, the exports and ``analytics.duckdb``.

    With the history on an object store (``history``: :func:`pipeline.history_store.store`
    of the workspace; None keeps it local), the exports are written,
    then every history file the store lacks is uploaded, then the views are written over the
    store's objects. A failed upload raises its sentence before any view changes: the views
    keep reading what the store holds, and every local file stays for the next publish.

    ``analytics.duckdb`` is written in :data:`ANALYTICS_STORAGE_VERSION`, so the DuckDB CLI
    and Python wheels analysts install open it; one an older invsync wrote in a newer storage
    version is built anew (it holds views only). Returns False when a reader holds
    ``analytics.duckdb`` open so its views could not be rewritten; they still read the fresh
    exports and snapshots, so nothing is lost. A damaged ``analytics.duckdb`` is removed and
    built anew, with a warning naming it.
    """
    if history is None:
        refresh_warehouse_views(con, data_dir)
        export_tables(con, data_dir)
    else:
        export_tables(con, data_dir)
        history.upload(data_dir)
        refresh_warehouse_views(con, data_dir, history)
    path = data_dir / ANALYTICS_NAME
    _drop_other_storage_version(path)
    for attempt in (1, 2):
        reader_db = duckdb.connect()  # in memory; the file is attached in its storage version
        try:
            try:
                _attach(reader_db, path)
            except duckdb.Error as exc:
                if warehouse.is_lock_conflict(exc):
                    log.info(
                        "analytics.duckdb is open in another process; its views read the new files."
                    )
                    return False
                if attempt == 2 or not warehouse.is_damage(path, exc):
                    raise
                _remove_damaged(path)
                continue
            try:
                _write_reader_views(reader_db, data_dir, history)
                reader_db.execute("use memory")
                reader_db.execute(f"detach {_ATTACHED}")
            except duckdb.Error as exc:
                if attempt == 2 or not warehouse.is_damage(path, exc):
                    raise
                reader_db.close()
                _remove_damaged(path)
                continue
            return True
        finally:
            reader_db.close()
    return False  # not reached: the second attempt returns or raises


def _attach(reader_db: duckdb.DuckDBPyConnection, path: Path) -> None:
    reader_db.execute(
        f"attach {_literal(path)} as {_ATTACHED} (storage_version '{ANALYTICS_STORAGE_VERSION}')"
    )
    reader_db.execute(f"use {_ATTACHED}")


def _drop_other_storage_version(path: Path) -> None:
    """An ``analytics.duckdb`` an older invsync wrote in DuckDB's newest storage version
    cannot be attached in an older one (DuckDB never lowers it): it holds views only, so it
    is removed and written again."""
    number = storage_number(path)
    if number is None or number == ANALYTICS_STORAGE_NUMBER:
        return
    log.info(
        "The analysts' database %s is in storage version %s, which older DuckDB readers "
        "cannot open; it holds only views, so it is built anew in version %s.",
        path, number, ANALYTICS_STORAGE_NUMBER,
    )  # fmt: skip
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)


def _write_reader_views(
    reader_db: duckdb.DuckDBPyConnection, data_dir: Path, history: HistoryStore | None
) -> None:
    if history is not None:
        history.register(reader_db)
    for table in EXPORTED_TABLES:
        source = _file_source(data_dir, export_path(data_dir, table), history)
        reader_db.execute(f"create or replace view {table} as select * from read_parquet({source})")
    create_source_views(reader_db, data_dir, history)
    create_analyst_views(reader_db)


def _remove_damaged(path: Path) -> None:
    """``analytics.duckdb`` holds only views over Parquet: a damaged one is rebuilt."""
    log.warning(
        "The analysts' database %s was damaged; it holds only views, so it is built anew.", path
    )
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)


def open_for_reading(
    data_dir: Path, history: HistoryStore | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the analysts' database (what docs/analysts.md uses), able to
    read the store of a remote ``history`` that its views name."""
    con = duckdb.connect(str(data_dir / ANALYTICS_NAME), read_only=True)
    reading_history(con, history)
    return con


def reading_history(con: duckdb.DuckDBPyConnection, history: HistoryStore | None) -> None:
    """Let ``con`` (the warehouse or the analysts' database) read the views' remote history:
    the store is registered as DuckDB's ``s3://`` filesystem. Nothing when it is local."""
    if history is not None:
        try:
            history.register(con)
        except BaseException:
            con.close()
            raise
