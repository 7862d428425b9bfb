"""Loads the SQL files in ``sql/`` and runs them with named ``$parameters``.

SQL lives in files, one per derived table or view; values reach it only as
parameters or registered frames, never through string formatting.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` (``name`` may contain a sub-folder)."""
    path = SQL_DIR / f"{name}.sql"
    return path.read_text(encoding="utf-8")


def run_sql(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql/<name>.sql`` with ``$params``; returns the connection for fetching."""
    return con.execute(load_sql(name), params or {})


def query_frame(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Run ``sql/<name>.sql`` (a query) with ``$params`` and return a polars frame."""
    return con.sql(load_sql(name), params=params or {}).pl()
