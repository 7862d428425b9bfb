"""Every query in docs/analysts.md runs against the reader's copy of a real demo history
(tests/sql/demo.py) and answers with rows; the doc names every analysts' view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import views
from tests.sql.demo import DEMO_ASIN, DemoHistory, demo_history

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
TEXT = DOC.read_text(encoding="utf-8")
QUERIES = re.findall(r"```sql\n(.*?)```", TEXT, flags=re.S)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoHistory:
    return demo_history(tmp_path_factory)


def test_the_doc_has_queries_and_names_every_view() -> None:
    assert len(QUERIES) >= 12
    table = TEXT[TEXT.index("## The views") : TEXT.index("## Example queries")]
    missing = [v for v in (*views.ANALYST_VIEWS, *views.SOURCE_VIEWS) if f"`{v}`" not in table]
    assert not missing, f"docs/analysts.md does not name {missing}"
    assert "data-dictionary.md" in table and DEMO_ASIN in TEXT


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_every_documented_query_answers_on_a_demo_history(demo: DemoHistory, query: str) -> None:
    con = views.open_for_reading(demo.data_dir)
    try:
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    assert rows, f"no rows on the demo history for:\n{query}"
