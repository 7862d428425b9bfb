"""Every query in docs/analysts.md runs against a reader's copy holding three runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import views
from tests.sql.test_views import three_runs

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_doc_has_queries() -> None:
    assert len(QUERIES) >= 6


@pytest.mark.parametrize("query", QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_every_documented_query_runs(tmp_path: Path, query: str) -> None:
    three_runs(tmp_path).close()
    con = views.open_for_reading(tmp_path)
    try:
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    assert isinstance(rows, list)
