"""The freshness bench's figures on small hand-built ledgers (bench/freshness_metrics.py):
each expected number is worked out here from the definitions, not copied from a run."""

from __future__ import annotations

import math

from bench.freshness_metrics import (
    Change,
    exposure_seconds,
    exposure_yen_seconds,
    max_observation_age,
    no_supply_causes,
    percentile,
    reactions,
)


def test_latency_runs_from_the_change_to_the_first_push_after_its_observation() -> None:
    # A changes at 100; observed at 130 (the 90 observation is before the change); the run
    # pushes at 170 (the push at 120 belongs to an earlier run): latency 170 - 100 = 70.
    changes = [Change("A", 100.0, "price")]
    result = reactions(changes, {"A": [90.0, 130.0, 400.0]}, {"A": [120.0, 170.0]}, end=1000.0)
    assert result["price"].latencies == [70.0]
    assert result["price"].total == 1


def test_superseded_unobserved_and_not_pushed_are_counted_apart() -> None:
    changes = [
        Change("A", 10.0, "stockout"),  # A changes again at 20 before its observation at 50
        Change("A", 20.0, "restock"),  # observed at 50, pushed at 60: 40
        Change("B", 10.0, "price"),  # observed at 30 and 80, no push in between: not pushed
        Change("C", 10.0, "price"),  # observed only at 500, after the end: unobserved
        Change("D", 10.0, "price"),  # observed at 30, the push at 60 is after the end (50)
    ]
    observations = {"A": [50.0], "B": [30.0, 80.0], "C": [500.0], "D": [30.0]}
    pushes = {"A": [60.0], "B": [90.0], "D": [60.0]}
    result = reactions(changes, observations, pushes, end=100.0)
    assert result["stockout"].superseded == 1 and not result["stockout"].latencies
    assert result["restock"].latencies == [40.0]
    assert result["price"].not_pushed == 1  # B: its push at 90 follows the next look at 80
    assert result["price"].unobserved == 1  # C
    early = reactions(changes, observations, pushes, end=50.0)
    assert early["price"].not_pushed == 2  # D's push at 60 falls after the end now too


def test_an_observation_at_the_change_instant_sees_it() -> None:
    result = reactions([Change("A", 5.0, "price")], {"A": [5.0]}, {"A": [5.0]}, end=10.0)
    assert result["price"].latencies == [0.0]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 0.5) == 10.0  # ceil(0.5 * 20) = 10th smallest
    assert percentile(values, 0.95) == 19.0  # ceil(19.0) = 19th
    assert percentile(values, 1.0) == 20.0
    assert percentile([7.0], 0.5) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_exposure_counts_buyable_time_below_cost_and_without_supply() -> None:
    # Listing: 1,000 yen buyable from 0; at 50 raised to 1,500; at 80 stock 0.
    listing = [(0.0, 1000, True), (50.0, 1500, True), (80.0, 1500, False)]
    # Cost: 900 until 20, 1,100 until 40, no supply 40..60, 1,200 from 60.
    cost = [(-5.0, 900), (20.0, 1100), (40.0, None), (60.0, 1200)]
    below, missing = exposure_seconds(listing, cost, start=0.0, end=100.0)
    # below cost: 20..40 (1,000 < 1,100); 60..80 is 1,500 >= 1,200; after 80 not buyable
    assert below == 20.0
    # no supply: 40..60 while buyable (price irrelevant)
    assert missing == 20.0
    # the window cuts: only 30..45 counts → 30..40 below, 40..45 missing
    assert exposure_seconds(listing, cost, start=30.0, end=45.0) == (10.0, 5.0)


def test_a_listing_priced_at_cost_is_not_exposed() -> None:
    assert exposure_seconds([(0.0, 1000, True)], [(0.0, 1000)], 0.0, 10.0) == (0.0, 0.0)


def test_max_observation_age_includes_the_time_before_the_first_and_after_the_last() -> None:
    # last look before the window at -30; inside at 10, 70; window 0..100:
    # gaps 10 - (-30) = 40, 70 - 10 = 60, 100 - 70 = 30 → 60
    assert max_observation_age([-30.0, 10.0, 70.0], 0.0, 100.0) == 60.0
    # never looked at inside: 100 - (-30) = 130
    assert max_observation_age([-30.0], 0.0, 100.0) == 130.0
    # looks after the end do not count: 100 - 70 = 30 still the tail
    assert max_observation_age([-5.0, 70.0, 150.0], 0.0, 100.0) == 75.0


def test_no_supply_minutes_split_by_whether_a_fetch_had_seen_the_loss() -> None:
    # buyable at 1,000 yen until a push hides it at 250; Amazon has no supply 100-300
    listing = [(float("-inf"), 1000.0, True), (250.0, 1000.0, False)]
    cost = [(0.0, 800), (100.0, None), (300.0, 800)]
    causes = no_supply_causes(listing, cost, [50.0, 200.0, 320.0], 0.0, 400.0)
    assert causes == {"never_supplied": 0.0, "not_yet_observed": 100.0,
                      "observed_not_pushed": 50.0}  # fmt: skip
    # the parts add up to exposure_seconds' no-supply seconds
    assert sum(causes.values()) == exposure_seconds(listing, cost, 0.0, 400.0)[1]
    # an ASIN without supply all day (an invalid one) is its own cause
    never = no_supply_causes(listing, [(0.0, None)], [], 0.0, 400.0)
    assert never == {"never_supplied": 250.0, "not_yet_observed": 0.0,
                     "observed_not_pushed": 0.0}  # fmt: skip


def test_the_value_weighed_exposure_counts_the_loss_below_cost_and_the_price_without_supply() -> (
    None
):
    # 1,000 yen; Amazon costs 1,200 from 100 to 200 (200 yen lost a sale), none 200-300
    listing = [(float("-inf"), 1000.0, True)]
    cost = [(0.0, 800), (100.0, 1200), (200.0, None), (300.0, 800)]
    assert exposure_yen_seconds(listing, cost, 0.0, 400.0) == (100.0 * 200, 100.0 * 1000)
    hidden = [(float("-inf"), 1000.0, False)]
    assert exposure_yen_seconds(hidden, cost, 0.0, 400.0) == (0.0, 0.0)
