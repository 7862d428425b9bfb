"""The freshness bench end to end on a tiny world: three designs, each against a sandbox
process of its own, for two sandbox hours at a high time scale (bench/freshness_day.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.freshness_day import DayPlan, run_day
from bench.freshness_report import section, target_rows


@pytest.mark.slow
def test_a_tiny_day_measures_every_design_against_the_same_world(tmp_path: Path) -> None:
    plan = DayPlan(n_asins=60, time_scale=400.0, day_seconds=2 * 3600.0, budget_seconds=120.0)
    day = run_day(plan, tmp_path)

    assert {name: d.error for name, d in day.designs.items()} == dict.fromkeys("ABC")
    # the standalone replay is the world every sandbox lived, change for change
    assert day.replayed and day.replay_agrees()
    for design in day.designs.values():
        # every change of the day is accounted for exactly once
        assert sum(r.total for r in design.reactions.values()) == len(day.replayed)
        assert design.runs and design.listed_asins > 50
        assert design.max_age > 0
    # B is getItemOffersBatch alone; C pools getItemOffers beside it (counted over the whole
    # ledger: on a busy machine a 7-wall-second sync overhead can fill this tiny day)
    assert set(day.designs["B"].calls_all) == {"getItemOffersBatch"}
    assert set(day.designs["C"].calls_all) == {"getItemOffersBatch", "getItemOffers"}
    assert set(day.designs["C"].calls) <= {"getItemOffersBatch", "getItemOffers"}
    # A reads any offer and prices at its markup, blind to the offer policy: exposed more
    assert day.designs["A"].exposure_minutes > day.designs["B"].exposure_minutes
    text = "\n".join(section(day))
    assert "## Freshness on a simulated day" in text and "matches every sandbox" in text
    assert len(target_rows(day)) == 4
