"""docs/architecture.md names every module of pipeline/ with its job, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def modules() -> set[str]:
    """Every Python module under pipeline/, as a repository path (``pipeline/x.py``)."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pipeline").rglob("*.py")
        if path.name != "__main__.py" and "__pycache__" not in path.parts
    }


def documented() -> dict[str, str]:
    """``| `pipeline/x.py` | its job |`` rows of the module table."""
    rows = re.findall(r"^\| `(pipeline/[^`]+\.py)` \| (.+?) \|\s*$", DOC.read_text(), flags=re.M)
    return {path: job.strip() for path, job in rows}


def test_every_module_is_in_the_architecture_doc_with_its_job() -> None:
    listed = documented()
    missing = sorted(modules() - set(listed))
    assert not missing, f"docs/architecture.md does not list {missing}"
    for path, job in listed.items():
        assert len(job.split()) >= 3, f"{path}: say what it does in docs/architecture.md"


def test_the_architecture_doc_lists_no_module_that_is_gone() -> None:
    gone = sorted(set(documented()) - modules())
    assert not gone, f"docs/architecture.md lists modules that no longer exist: {gone}"
