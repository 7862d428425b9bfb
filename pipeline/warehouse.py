"""The warehouse: the DuckDB master database and the Parquet files beside it.

Reads and writes ``<data_dir>/warehouse.duckdb``. Numbered migrations in
``sql/migrations/NNN_name.sql`` are applied in order when the database is opened
for writing, each in its own transaction, and recorded in ``schema_migrations``.
Parquet files are written atomically (temp file in the same folder, then rename)
and validated on the way out and on the way in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import DataError
from pipeline.files import atomic_target
from pipeline.sql import SQL_DIR

WAREHOUSE_NAME = "warehouse.duckdb"
MIGRATIONS_DIR = SQL_DIR / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


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


def connect(data_dir: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating it and applying migrations unless ``read_only``)."""
    path = warehouse_path(data_dir)
    if read_only:
        if not path.exists():
            raise DataError(
                f"No warehouse at {path}; run `invsync listings import` or `invsync sync` first."
            )
        con = duckdb.connect(str(path), read_only=True)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    if not read_only:
        apply_migrations(con)
    return con


@contextmanager
def opened(data_dir: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(data_dir, read_only=read_only)
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
