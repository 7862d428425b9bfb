"""A real demo history for the analysts' views and their documents: three `invsync sync` runs
against the in-process sandbox (300 ASINs, a 10 % move limit so the review gate holds rows),
with one decision of each kind taken on the second run's held rows before the third, which
publishes them. Built once per test process (about 20 s) and only read afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tests.conftest import run_cli

DEMO = """
[sandbox]
n_asins = 300
time_scale = 400

[guardrails]
max_price_change_pct = 10
"""
DEMO_ASIN = "B002EQCM50"  # an ASIN of the seeded demo catalogue (seed 42), on sale throughout


@dataclass(frozen=True)
class DemoHistory:
    data_dir: Path
    runs: list[str]  # oldest first
    decided: dict[str, tuple[str, str]]  # decision -> (platform, listing_key) of run 2


_built: list[DemoHistory] = []


def _sync(work: Path) -> None:
    result = run_cli("sync", cwd=work, timeout=300)
    assert result.exit_code in (0, 3), result.output  # 3: the gate held demo rows


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def demo_history(tmp_path_factory: Any) -> DemoHistory:
    if _built:
        return _built[0]
    work = tmp_path_factory.mktemp("demo-history")
    (work / "invsync.toml").write_text(DEMO)
    data_dir = work / "data"
    _sync(work)
    _sync(work)
    second = _query(data_dir, "select max(run_id) from runs")[0][0]
    waiting = _query(
        data_dir,
        "select platform, listing_key from diffs where held and protection is null"
        f" and run_id = '{second}' order by platform, listing_key limit 3",
    )
    assert len(waiting) == 3, waiting
    decided = dict(zip(("approve", "reject", "hold"), waiting, strict=True))
    for decision, (platform, key) in decided.items():
        result = run_cli(decision, second, "--platform", platform, "--listing", key, cwd=work)
        assert result.exit_code == 0, result.output
    _sync(work)
    runs = [r[0] for r in _query(data_dir, "select run_id from runs order by started_at")]
    _built.append(DemoHistory(data_dir, runs, decided))
    return _built[0]
