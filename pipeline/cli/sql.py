"""``invsync sql``: the analysts' database in the project's own DuckDB, for those who have
no DuckDB CLI: one query, a file of statements, or a small shell reading standard input.

Stage: none (read-only). Reads ``<data_dir>/analytics.duckdb`` read-only (views over the
Parquet files, local or on the ``[history]`` store: pipeline.views); writes nothing. Results
print as a table, CSV or JSON; timestamps are shown in UTC with their offset. A statement DuckDB refuses is its message on
one line: exit 2 for a query or a file; the shell says it and reads on (exit 2 at the end
when its input was not a terminal, so a script notices).
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TextIO

import duckdb
import typer
from rich.table import Table
from rich.text import Text

from pipeline import history_store
from pipeline.errors import DataError, UsageError

FORMATS = ("table", "csv", "json")
PROMPT = "invsync sql> "
MORE = "        ...> "
QUIT = frozenset({".quit", ".exit", "\\q"})


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def sql_command(
    ctx: typer.Context,
    query: Annotated[
        str | None, typer.Argument(help="SQL to run; without it (and --file), a shell on stdin.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Run the SQL statements of this file.")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Query the analysts' database (data/analytics.duckdb) read-only with invsync's own
    DuckDB: one query, --file, or a shell (statements end with ';', .quit leaves)."""
    from pipeline.cli import state

    if output not in FORMATS:
        raise UsageError(f"--format {output!r} is not one of table, csv, json; pick one.")
    if query is not None and file is not None:
        raise UsageError("Give either a query or --file, not both.")
    script = _read_file(file) if file is not None else query
    ws = state(ctx).workspace()
    con = connect(ws.data_dir, history_store.store(ws))
    try:
        if script is not None:
            for result in run_script(con, script):
                show(result, output)
        else:
            failed = shell(con, sys.stdin, output)
            if failed and not sys.stdin.isatty():
                raise typer.Exit(2)
    finally:
        con.close()


def _read_file(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"Cannot read the SQL file {file} ({type(exc).__name__}); check its path."
        ) from None


def connect(
    data_dir: Path, history: history_store.HistoryStore | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``analytics.duckdb`` in UTC, or one sentence why not; with
    the history on an object store (``history``), the store is registered so the views read
    it (DuckDB's ``s3://`` through fsspec)."""
    from pipeline import views, warehouse

    path = data_dir / views.ANALYTICS_NAME
    if not path.is_file():
        raise DataError(
            f"There is no analysts' database at {path} yet; run `invsync sync` first "
            "(every sync writes it)."
        )
    try:
        con = views.open_for_reading(data_dir, history)
    except duckdb.Error as exc:
        if warehouse.is_lock_conflict(exc):
            raise UsageError(
                f"A sync is rewriting {path} this moment; run the query again in a few seconds."
            ) from None
        raise DataError(
            f"{path} cannot be opened ({_first_line(exc)}); the next `invsync sync` writes it anew."
        ) from None
    con.execute("set TimeZone = 'UTC'")
    return con


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def execute(con: duckdb.DuckDBPyConnection, statement: str) -> Result | None:
    """One statement's rows (None when it returns none); DuckDB refusing it is a
    :class:`UsageError` carrying DuckDB's own message."""
    try:
        cursor = con.execute(statement)
        if cursor.description is None:
            return None
        columns = [d[0] for d in cursor.description]
        return Result(columns, cursor.fetchall())
    except duckdb.Error as exc:
        raise refused(exc) from None


def refused(exc: BaseException) -> UsageError:
    """DuckDB's own words for a statement it refused, and the next step."""
    return UsageError(
        f"DuckDB refused the statement ({_first_line(exc)}); correct it and run it again "
        "(the views and their columns: docs/analysts.md)."
    )


def statements(script: str) -> list[str]:
    """The statements of ``script`` as DuckDB parses them (a ';' in a string stays)."""
    try:
        return [s.query for s in duckdb.extract_statements(script)]
    except duckdb.Error as exc:
        raise refused(exc) from None


def run_script(con: duckdb.DuckDBPyConnection, script: str) -> list[Result]:
    """Every statement of ``script`` in order; the results of those that return rows. The
    first refused statement stops the script."""
    results = []
    for statement in statements(script):
        result = execute(con, statement)
        if result is not None:
            results.append(result)
    return results


def shell(con: duckdb.DuckDBPyConnection, source: TextIO, output: str) -> bool:
    """Read statements from ``source`` until ``.quit`` or its end, each ending with ';'; a
    refused one is one line on stderr and the shell reads on. True when one was refused."""
    from pipeline.cli import err_console

    interactive = source.isatty()
    failed = False
    pending: list[str] = []
    while True:
        if interactive:
            sys.stdout.write(MORE if pending else PROMPT)
            sys.stdout.flush()
        line = source.readline()
        if not line or (not pending and line.strip() in QUIT):
            break
        pending.append(line)
        if not line.rstrip().endswith(";"):
            continue
        failed = _run_pending(con, pending, output, err_console) or failed
        pending = []
    if "".join(pending).strip():  # the input ended inside a statement: it is run as it is
        failed = _run_pending(con, pending, output, err_console) or failed
    return failed


def _run_pending(
    con: duckdb.DuckDBPyConnection, pending: list[str], output: str, errors: Any
) -> bool:
    try:
        for result in run_script(con, "".join(pending)):
            show(result, output)
    except UsageError as exc:
        errors.print(f"Error: {exc.message}", markup=False, highlight=False)
        return True
    return False


# --- output ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _json_value(value: Any) -> Any:
    """A value JSON holds as it is, or as text: timestamps in ISO 8601 with their offset,
    decimals (an FX rate) as their exact digits."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def show(result: Result, output: str) -> None:
    from pipeline.cli import console

    if output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow("" if v is None else _text(v) for v in row)
    elif output == "json":
        records = [
            {c: _json_value(v) for c, v in zip(result.columns, row, strict=True)}
            for row in result.rows
        ]
        sys.stdout.write(json.dumps(records, ensure_ascii=False) + "\n")
    else:
        table = Table(show_edge=False, header_style="bold")
        for column in result.columns:
            table.add_column(Text(column))  # Text: a "[" in a name or value is no markup
        for row in result.rows:
            table.add_row(*(Text(_text(v)) for v in row))
        console.print(table, highlight=False)
        console.print(f"{len(result.rows):,} row{'s' if len(result.rows) != 1 else ''}")
