"""The SP-API quota pool's arithmetic: the pooled floor, capacity and split, and one lane
equal to the single-operation formula the fetch has always recorded."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import fetch, pool
from pipeline.pacer import DEFAULT_PLANS, quota_floor_seconds

POOLED = pool.lanes_for("item_offers")
BATCH = pool.lane("item_offers")


def test_getitemoffers_is_a_lane_the_pacer_knows() -> None:
    assert DEFAULT_PLANS["getItemOffers"] == (0.5, 1)
    assert [lane.operation_id for lane in POOLED] == ["getItemOffersBatch", "getItemOffers"]
    assert pool.pooled_rate(POOLED) == pytest.approx(2.5)  # 2 + 0.5 ASINs/s


def test_ten_thousand_asins_pooled_against_the_batch_floor() -> None:
    pooled = pool.floor_seconds(10_000, POOLED)
    alone = pool.single_floor_seconds(10_000, BATCH)
    assert alone == pytest.approx(4_990.0) == quota_floor_seconds(500, 0.1)
    assert pooled == pytest.approx(3_998.0)
    assert pooled / alone == pytest.approx(0.801, abs=0.001)  # ≤ 0.82 × the batch floor
    assert pool.capacity(pooled, POOLED) >= 10_000 > pool.capacity(pooled - 2.0, POOLED)


@given(st.integers(min_value=1, max_value=50_000), st.sampled_from([0.05, 0.1, 0.2, 2.0]))
def test_one_lane_is_todays_formula(n: int, rate: float) -> None:
    one = pool.lane("item_offers", rate)
    expected = quota_floor_seconds(math.ceil(n / 20), rate)
    assert pool.floor_seconds(n, [one]) == pytest.approx(expected)


@given(st.integers(min_value=0, max_value=30_000))
def test_the_split_answers_every_asin_by_the_pooled_floor(n: int) -> None:
    shares = pool.split(n, POOLED)
    assert sum(shares.values()) == n
    moment = pool.floor_seconds(n, POOLED)
    for lane in POOLED:
        assert shares[lane.operation] <= lane.batch * lane.calls_within(moment)


def test_rates_scale_every_lane_from_the_main_lanes() -> None:
    rates = fetch.lane_rates("item_offers", pooled=True, initial_rate=5.0, initial_rates=None)
    assert rates == pytest.approx({"item_offers": 5.0, "item_offers_single": 25.0})
    scaled = pool.lanes_for("item_offers", rates=rates)
    # the same quota at 50 × the speed: the floor is 50 × shorter
    assert pool.floor_seconds(10_000, scaled) == pytest.approx(3_998.0 / 50)
    alone = fetch.lane_rates("item_offers", pooled=False, initial_rate=5.0, initial_rates=None)
    assert alone == pytest.approx({"item_offers": 5.0})
