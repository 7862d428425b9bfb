"""Amazon in time, standalone: the change process over a catalogue is deterministic,
heterogeneous by class, and keeps stock-outs, restocks and price moves consistent."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from pipeline.sandbox.catalogue import Catalogue
from pipeline.sandbox.process import HOUR, AmazonChange, ProcessSpec, WorldProcess

N = 300


def _offers(catalogue: Catalogue) -> dict[str, list[tuple]]:
    return {
        asin: [dataclasses.astuple(o) for o in catalogue.products[asin].offers]
        for asin in catalogue.asins
    }


def _world(spec: ProcessSpec, n: int = N, seed: int = 42) -> WorldProcess:
    return WorldProcess(Catalogue(seed, n), spec)


def test_one_step_and_many_small_steps_make_the_same_world_and_the_same_changes():
    spec = ProcessSpec()
    once, stepped = _world(spec), _world(spec)
    horizon = 2 * 86_400.0

    in_one = once.advance_to(horizon)
    in_many: list[AmazonChange] = []
    t = 0.0
    while t < horizon:
        t = min(horizon, t + 977.0)
        in_many.extend(stepped.advance_to(t))

    assert len(in_one) > 100  # the world did move
    assert {c.kind for c in in_one} == {"price", "stockout", "restock"}
    assert in_many == in_one
    assert _offers(stepped.catalogue) == _offers(once.catalogue)
    assert _offers(once.catalogue) != _offers(Catalogue(42, N))


def test_two_worlds_from_one_seed_agree_and_another_seed_draws_another_world():
    first, second = _world(ProcessSpec()), _world(ProcessSpec())
    other = _world(ProcessSpec(seed=8))

    assert first.advance_to(86_400.0) == second.advance_to(86_400.0)
    assert _offers(first.catalogue) == _offers(second.catalogue)
    assert [first.rate_class(a) for a in first.catalogue.asins] == [
        second.rate_class(a) for a in second.catalogue.asins
    ]
    assert [first.rate_class(a) for a in first.catalogue.asins] != [
        other.rate_class(a) for a in other.catalogue.asins
    ]
    assert other.advance_to(86_400.0) != _world(ProcessSpec()).advance_to(86_400.0)


def test_each_class_changes_at_its_own_rate_over_a_long_horizon():
    spec = ProcessSpec(classes=((0.1, HOUR), (0.3, 6 * HOUR), (0.6, 24 * HOUR)), stockout_share=0)
    world = _world(spec, n=1000)
    horizon = 20 * 86_400.0

    world.advance_to(horizon)

    members = Counter(world.rate_class(a)[0] for a in world.catalogue.asins)
    assert members == {0: 100, 1: 300, 2: 600}  # exact shares
    for number, (_, mean) in enumerate(spec.classes):
        asins = [a for a in world.catalogue.asins if world.rate_class(a)[0] == number]
        drawn = sum(world.change_events(a) for a in asins)
        expected = len(asins) * horizon / mean
        assert abs(drawn - expected) < 0.05 * expected, (number, drawn, expected)


def test_over_a_simulated_day_the_recorded_changes_follow_the_classes():
    world = _world(ProcessSpec.from_json("day"), n=2000)

    changes = world.advance_to(86_400.0)

    per_class = Counter(world.rate_class(c.asin)[0] for c in changes if c.kind != "restock")
    pristine = Catalogue(42, 2000)
    rates = []
    for number, (_, mean) in enumerate(world.spec.classes):
        selling = [
            a
            for a in pristine.asins
            if pristine.products[a].offers and world.rate_class(a)[0] == number
        ]
        expected = len(selling) * 86_400.0 / mean
        # stock-outs drawn while out of stock and moves lost in the 10-yen floor leave no record
        assert 0.75 * expected < per_class[number] <= 1.1 * expected, (number, per_class, expected)
        rates.append(per_class[number] / len(selling))
    assert rates[0] > 10 * rates[1] > 10 * 3 * rates[2]  # hourly, daily, weekly per ASIN


def test_a_stock_out_puts_every_offer_aside_and_the_restock_brings_them_back_repriced():
    spec = ProcessSpec(classes=((1.0, HOUR),), stockout_share=0.3, mean_outage_seconds=4 * HOUR)
    world = _world(spec, n=100)
    pristine = Catalogue(42, 100)
    changes = world.advance_to(10 * 86_400.0)

    state: dict[str, str] = {}
    for change in changes:
        before = state.get(change.asin, "in")
        if change.kind == "stockout":
            assert before == "in"  # never a stock-out while out of stock
            state[change.asin] = "out"
        elif change.kind == "restock":
            assert before == "out"
            state[change.asin] = "in"
        else:
            assert change.kind == "price"
            lo, hi = spec.price_move
            move = max(change.factor, 1.0 / change.factor) - 1.0
            assert lo - 1e-12 <= move <= hi + 1e-12
    repriced_while_out = {
        c.asin for c in changes if c.kind == "price" and state.get(c.asin) == "out"
    }
    for asin in world.catalogue.asins:
        offers = world.catalogue.products[asin].offers
        out = world.out_of_stock(asin)
        assert out == (state.get(asin) == "out")
        if out:
            assert offers == []
        else:  # the same sellers as at the start, prices floored to 10 yen
            assert [o.seller_id for o in offers] == [
                o.seller_id for o in pristine.products[asin].offers
            ]
            assert all(o.listing % 10 == 0 for o in offers)
    assert repriced_while_out or any(c.kind == "restock" for c in changes)


def test_a_price_change_during_an_outage_shows_on_return():
    spec = ProcessSpec(classes=((1.0, HOUR),), stockout_share=0.5, mean_outage_seconds=10 * HOUR)
    world = _world(spec, n=100)
    changes = world.advance_to(5 * 86_400.0)
    out: set[str] = set()
    found = None
    for change in changes:
        if change.kind == "stockout":
            out.add(change.asin)
        elif change.kind == "restock":
            out.discard(change.asin)
        elif change.asin in out and found is None:
            found = change
    assert found is not None
    replay = _world(spec, n=100)
    replay.advance_to(found.t - 1e-6)
    aside = [o.listing for o in replay._asins[found.asin].aside]
    replay.advance_to(found.t)
    assert replay.catalogue.products[found.asin].offers == []
    after = [o.listing for o in replay._asins[found.asin].aside]
    assert after != aside
    restock = next(
        c for c in changes if c.asin == found.asin and c.kind == "restock" and c.t > found.t
    )
    replay.advance_to(restock.t - 1e-6)
    held = [o.listing for o in replay._asins[found.asin].aside]
    replay.advance_to(restock.t)
    assert [o.listing for o in replay.catalogue.products[found.asin].offers] == held


def test_spec_round_trips_through_json_and_presets():
    spec = ProcessSpec(seed=3, classes=((0.5, 60.0), (0.5, 600.0)), stockout_share=0.2)
    assert ProcessSpec.from_json(spec.to_json()) == spec
    import json

    assert ProcessSpec.from_json(json.dumps(spec.to_json())) == spec
    assert ProcessSpec.from_json("day") == ProcessSpec()
    with pytest.raises(ValueError, match="preset"):
        ProcessSpec.from_json("weekly-ish")
    with pytest.raises(ValueError, match="add up to 1"):
        ProcessSpec(classes=((0.5, 60.0),))
