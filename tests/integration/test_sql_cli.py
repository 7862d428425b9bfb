"""`invsync sql` on the analysts' database of three runs, as a real process: one query in each
format, a file of statements, the shell fed on standard input, and the sentences for no
database, bad SQL and a write."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import views
from tests.conftest import _environment
from tests.sql.test_views import three_runs

LATEST = "select asin, price, fetched_at from latest_price order by asin"


@pytest.fixture
def analytics(data_dir: Path) -> Path:
    """``data/analytics.duckdb`` of three runs (the warehouse closed again)."""
    three_runs(data_dir).close()
    return data_dir


def sql(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "sql", *args],
        input=stdin if stdin is not None else "",
        capture_output=True, text=True, env=_environment(None), timeout=120, check=False,
    )  # fmt: skip


def test_one_query_prints_a_table_with_utc_timestamps(analytics: Path) -> None:
    result = sql(LATEST)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "asin" in lines[0] and "price" in lines[0] and "fetched_at" in lines[0]
    row = next(line for line in lines if "B000000002" in line)
    assert "520" in row and "2026-11-01T06:00:00+00:00" in row
    assert lines[-1] == "3 rows"


def test_csv_and_json_hold_the_same_rows(analytics: Path) -> None:
    as_csv = sql("--format", "csv", LATEST)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows == [
        ["asin", "price", "fetched_at"],
        ["B000000001", "", "2026-11-01T06:00:00+00:00"],
        ["B000000002", "520", "2026-11-01T06:00:00+00:00"],
        ["B000000003", "2000", "2026-11-01T06:00:00+00:00"],
    ]
    as_json = sql("--format", "json", LATEST)
    assert as_json.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    assert records[1] == {
        "asin": "B000000002", "price": 520, "fetched_at": "2026-11-01T06:00:00+00:00"
    }  # fmt: skip
    assert [r["price"] for r in records] == [None, 520, 2000]


def test_a_file_runs_every_statement_in_order(analytics: Path, tmp_path: Path) -> None:
    script = tmp_path / "q.sql"
    script.write_text(
        "-- two questions\nselect count(*) as runs from fetch_health;\n"
        "select ';' as semicolon, 2 as two;\n"
    )
    result = sql("--file", str(script), "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "runs\n3\nsemicolon,two\n;,2\n"


def test_the_shell_reads_statements_until_quit_and_an_error_is_one_line(analytics: Path) -> None:
    stdin = (
        "select count(*) as observations\nfrom price_history;\n"
        "select nothing from nowhere;\n"
        "select 2 as two;\n"
        ".quit\n"
        "select 3 as three;\n"
    )
    result = sql("--format", "csv", stdin=stdin)
    assert result.stdout == "observations\n7\ntwo\n2\n"  # nothing after .quit
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "nowhere" in errors[0], result.stderr
    assert errors[0].startswith("Error: DuckDB refused the statement (Catalog Error")
    assert "Traceback" not in result.stderr
    assert result.returncode == 2  # its input was no terminal: a script notices the error


def test_the_shell_ends_at_the_end_of_its_input(analytics: Path) -> None:
    result = sql(stdin="select 1 as one;\nselect 2 as two")  # the last one without ';'
    assert result.returncode == 0, result.stderr
    assert "one" in result.stdout and "two" in result.stdout


def test_without_an_analysts_database_it_says_to_sync_first(data_dir: Path) -> None:
    result = sql("select 1")
    assert result.returncode == 2
    assert "There is no analysts' database at" in result.stderr
    assert "run `invsync sync` first" in result.stderr
    assert not data_dir.exists()  # read-only: nothing made


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("selec 1", "Parser Error"),
        ("create table t as select 1", "read-only"),
    ],
    ids=["bad-sql", "a-write"],
)
def test_refused_sql_is_duckdbs_message_and_exit_2(analytics: Path, query: str, words: str) -> None:
    before = (analytics / views.ANALYTICS_NAME).read_bytes()
    result = sql(query)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: DuckDB refused the statement (")
    assert words in result.stderr and "Traceback" not in result.stderr
    assert (analytics / views.ANALYTICS_NAME).read_bytes() == before
