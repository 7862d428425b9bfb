"""The data dictionary: every view and column of the analysts' database, with its meaning,
unit and time zone, written to ``docs/data-dictionary.md``.

Stage: none (documentation, ``python -m pipeline.dictionary [--data-dir D] [--output F]``).
Reads ``sql/views/dictionary.toml`` (the entries, one place) and a real
``<data_dir>/analytics.duckdb`` read-only (names and types from DuckDB ``describe``); writes
only the Markdown file. :func:`problems` says what the entries and the database disagree on
(a view or column without an entry, an entry naming nothing, a unit outside :data:`UNITS`, a
timestamp without its zone, an amount in minor units without a currency column); the
generator refuses to write while there are any, and tests/sql/test_dictionary.py checks the
same on a real demo history.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.errors import DataError, UsageError

ENTRIES = Path(__file__).resolve().parent.parent / "sql" / "views" / "dictionary.toml"
DOCUMENT = "docs/data-dictionary.md"
GROUPS = {
    "answers": "Views that answer questions",
    "sources": "Sources: the files and exported tables the views read",
}
UNITS = {
    "JPY": "integer yen",
    "USD cents": "integer US cents",
    "minor units": "integer minor units of the row's `currency`: yen for JPY, cents for USD",
    "JPY per USD": "DECIMAL(12,4) yen per US dollar",
    "seconds": "seconds, as a number",
    "hours": "hours, as a number",
    "ratio": "a fraction, 1 = 100 %",
    "count": "a number of things",
    "requests per second": "SP-API requests per second",
}
ZONED = "TIMESTAMP WITH TIME ZONE"
MONEY_SUFFIXES = {"_jpy": ("JPY",), "_cents": ("USD cents",), "_minor": ("minor units",)}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    meaning: str
    unit: str | None

    @property
    def zone(self) -> str | None:
        return "UTC" if self.type == ZONED else None


@dataclass(frozen=True)
class View:
    name: str
    group: str
    row: str
    about: str  # the question it answers, or the files a source reads
    columns: tuple[Column, ...]


def load_entries(path: Path = ENTRIES) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def describe(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Every view and table of the database: name -> [(column, DuckDB type)], in order."""
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'main' order by table_name, ordinal_position"
    ).fetchall()
    described: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        described.setdefault(table, []).append((column, dtype))
    return described


def _entry(entries: dict[str, Any], view: str, column: str) -> dict[str, Any] | None:
    own = entries["views"].get(view, {}).get("columns", {})
    found = own.get(column, entries["columns"].get(column))
    return found if isinstance(found, dict) else None


def problems(entries: dict[str, Any], described: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Every disagreement between the entries and the database, one sentence each."""
    found: list[str] = []
    views = entries["views"]
    used_shared: set[str] = set()
    for name in sorted(set(described) - set(views)):
        found.append(f"View {name} has no entry under [views.{name}] in {ENTRIES.name}.")
    for name in sorted(set(views) - set(described)):
        found.append(f"[views.{name}] names a view the analysts' database does not have.")
    for name, entry in views.items():
        if name not in described:
            continue
        if entry.get("group") not in GROUPS:
            found.append(f"[views.{name}] needs group = one of {', '.join(GROUPS)}.")
        if not entry.get("row") or not (entry.get("question") or entry.get("files")):
            found.append(f"[views.{name}] needs row and question (or files, for a source).")
        columns = dict(described[name])
        for column in sorted(set(entry.get("columns", {})) - set(columns)):
            found.append(f"[views.{name}.columns] {column} names a column {name} does not have.")
        for column, dtype in described[name]:
            if column not in entry.get("columns", {}):
                used_shared.add(column)
            found.extend(_column_problems(entries, name, column, dtype, columns))
    for column in sorted(set(entries["columns"]) - used_shared):
        found.append(f"[columns] {column} is used by no view (or every view overrides it).")
    return found


def _column_problems(
    entries: dict[str, Any], view: str, column: str, dtype: str, columns: dict[str, str]
) -> list[str]:
    entry = _entry(entries, view, column)
    if entry is None or not entry.get("meaning"):
        return [f"Column {view}.{column} has no meaning in [columns] or [views.{view}.columns]."]
    found = []
    unit = entry.get("unit")
    if unit is not None and unit not in UNITS:
        found.append(f"{view}.{column}: unit {unit!r} is not one of {', '.join(UNITS)}.")
    if dtype.startswith("TIMESTAMP") and dtype != ZONED:
        found.append(f"{view}.{column} is {dtype}; every timestamp is {ZONED}, in UTC.")
    for suffix, allowed in MONEY_SUFFIXES.items():
        if column.endswith(suffix) and unit not in allowed:
            found.append(f"{view}.{column} is money: its unit must be {' or '.join(allowed)}.")
    if column.endswith("_minor") and "currency" not in columns:
        found.append(f"{view}.{column} is in minor units but {view} has no currency column.")
    return found


def catalogue(entries: dict[str, Any], described: dict[str, list[tuple[str, str]]]) -> list[View]:
    """The documented views, answers first, each group in the order of the entries."""
    views = []
    for group in GROUPS:
        for name, entry in entries["views"].items():
            if entry.get("group") != group or name not in described:
                continue
            columns = []
            for column, dtype in described[name]:
                found = _entry(entries, name, column) or {}
                columns.append(Column(column, dtype, found.get("meaning", ""), found.get("unit")))
            about = entry.get("question") or entry.get("files", "")
            views.append(View(name, group, entry["row"], about, tuple(columns)))
    return views


def render(views: list[View]) -> str:
    """The Markdown of docs/data-dictionary.md."""
    lines = [
        "# Data dictionary of the analysts' database",
        "",
        "<!-- Generated by `python -m pipeline.dictionary` from sql/views/dictionary.toml and a",
        "real analytics.duckdb; edit those, not this file (tests/sql/test_dictionary.py). -->",
        "",
        "Every view and column of `data/analytics.duckdb` (docs/analysts.md says how to open",
        "it). Types are DuckDB's. Money is integer: yen (`*_jpy`), US cents (`*_cents`), or minor",
        "units of the row's `currency` (`*_minor`: yen for JPY, cents for USD). Every timestamp",
        "is stored in UTC (`TIMESTAMP WITH TIME ZONE`); DuckDB shows it in the session's time",
        "zone: `set TimeZone = 'Asia/Tokyo'` (or `'UTC'`) before querying, or write",
        "`fetched_at at time zone 'Asia/Tokyo'`.",
        "",
        "Units:",
        "",
        *[f"* **{unit}**: {meaning}" for unit, meaning in UNITS.items()],
    ]
    for group, title in GROUPS.items():
        members = [v for v in views if v.group == group]
        heading = "question it answers" if group == "answers" else "files"
        lines += ["", f"## {title}", "", f"| view | one row per | {heading} |", "|---|---|---|"]
        lines += [f"| [`{v.name}`](#{v.name}) | {v.row} | {v.about} |" for v in members]
    for view in views:
        lines += ["", f"### {view.name}", "", f"One row per {view.row}.", ""]
        if view.group == "answers":
            lines += [f"{view.about} (`sql/views/{view.name}.sql`)", ""]
        lines += ["| column | type | unit | zone | meaning |", "|---|---|---|---|---|"]
        lines += [
            f"| `{c.name}` | {c.type} | {c.unit or ''} | {c.zone or ''} | {c.meaning} |"
            for c in view.columns
        ]
    return "\n".join(lines) + "\n"


def generate(data_dir: Path) -> str:
    """The document for the analysts' database of ``data_dir``; a disagreement stops it."""
    path = data_dir / "analytics.duckdb"
    if not path.is_file():
        raise UsageError(f"There is no {path}; run `invsync sync` first, then generate again.")
    con = duckdb.connect(str(path), read_only=True)
    try:
        described = describe(con)
    finally:
        con.close()
    entries = load_entries()
    found = problems(entries, described)
    if found:
        raise DataError(
            f"{ENTRIES} and {path} disagree in {len(found)} place(s) (first: {found[0]}); "
            "fix the entries, then generate again."
        )
    return render(catalogue(entries, described))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.dictionary", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--output", type=Path, default=Path(DOCUMENT))
    args = parser.parse_args(argv)
    try:
        text = generate(args.data_dir)
    except (UsageError, DataError) as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    args.output.write_text(text, encoding="utf-8")
    print(f"Wrote {args.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
