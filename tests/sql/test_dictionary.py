"""The data dictionary against a real demo history's analytics.duckdb: every view and column
the analysts see has an entry, no entry names a thing that is not there, and
docs/data-dictionary.md is what the generator writes now."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeline import dictionary, views
from tests.sql.demo import DemoHistory, demo_history

pytestmark = pytest.mark.slow
DOCUMENT = Path(__file__).resolve().parents[2] / dictionary.DOCUMENT


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoHistory:
    return demo_history(tmp_path_factory)


@pytest.fixture
def described(demo: DemoHistory) -> dict[str, list[tuple[str, str]]]:
    reader = views.open_for_reading(demo.data_dir)
    try:
        return dictionary.describe(reader)
    finally:
        reader.close()


def test_every_view_and_column_the_analysts_see_has_its_entry(described: dict) -> None:
    assert dictionary.problems(dictionary.load_entries(), described) == []
    visible = {
        *views.ANALYST_VIEWS,
        *views.SOURCE_VIEWS,
        *views.EXPORTED_TABLES,
        *views.VERDICT_TABLES,
    }
    assert visible == set(described)


def test_a_view_or_column_without_an_entry_is_named(described: dict) -> None:
    grown = {**described, "extra": [("x", "INTEGER")]}
    grown["holds"] = [*described["holds"], ("surprise", "VARCHAR")]
    found = dictionary.problems(dictionary.load_entries(), grown)
    assert any(p.startswith("View extra has no entry") for p in found)
    assert any(p.startswith("Column holds.surprise has no meaning") for p in found)


def test_an_entry_that_names_nothing_is_named(described: dict) -> None:
    entries = copy.deepcopy(dictionary.load_entries())
    entries["views"]["holds"]["columns"]["gone_column"] = {"meaning": "was here"}
    entries["views"]["gone_view"] = {"group": "answers", "row": "r", "question": "q"}
    entries["columns"]["never_used"] = {"meaning": "nowhere"}
    found = dictionary.problems(entries, described)
    assert "[views.holds.columns] gone_column names a column holds does not have." in found
    assert "[views.gone_view] names a view the analysts' database does not have." in found
    assert any(p.startswith("[columns] never_used is used by no view") for p in found)


def test_money_time_and_units_are_checked(described: dict) -> None:
    entries = copy.deepcopy(dictionary.load_entries())
    entries["views"]["holds"]["columns"]["new_price_minor"] = {"meaning": "m", "unit": "JPY"}
    entries["views"]["holds"]["columns"]["decided_at"] = {"meaning": "m", "unit": "furlongs"}
    changed = {**described, "holds": [*described["holds"], ("naive_at", "TIMESTAMP")]}
    entries["views"]["holds"]["columns"]["naive_at"] = {"meaning": "m"}
    found = dictionary.problems(entries, changed)
    assert "holds.new_price_minor is money: its unit must be minor units." in found
    assert any(p.startswith("holds.decided_at: unit 'furlongs'") for p in found)
    assert any(p.startswith("holds.naive_at is TIMESTAMP") for p in found)


def test_the_document_is_what_the_generator_writes_now(demo: DemoHistory, tmp_path: Path) -> None:
    written = tmp_path / "data-dictionary.md"
    code = dictionary.main(["--data-dir", str(demo.data_dir), "--output", str(written)])
    assert code == 0
    assert written.read_text(encoding="utf-8") == DOCUMENT.read_text(encoding="utf-8"), (
        "docs/data-dictionary.md is stale: run `.venv/bin/python -m pipeline.dictionary"
        " --data-dir <a demo's data>` and commit it"
    )


def test_the_generator_refuses_without_a_database(tmp_path: Path) -> None:
    code = dictionary.main(["--data-dir", str(tmp_path), "--output", str(tmp_path / "d.md")])
    assert code == 2 and not (tmp_path / "d.md").exists()
