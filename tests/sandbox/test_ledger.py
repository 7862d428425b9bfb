"""The call ledger (GET /_sandbox/stats) and the moving world (POST /_sandbox/tick)."""

from __future__ import annotations

import json

import requests

from pipeline.sandbox.catalogue import Catalogue
from pipeline.sandbox.credentials import DEMO_ENV
from tests.sandbox.spapi_clients import (
    BATCH_PATH,
    COMPETITIVE_PATH,
    access_token,
    batch_body,
    competitive_params,
    stats,
)


def test_every_call_is_recorded_with_its_items_status_outcome_and_time(start_sandbox):
    server = start_sandbox(time_scale=1.0)
    catalogue = server.state.apis["catalogue"]
    good, invalid = catalogue.asins[:2], catalogue.invalid_asins[0]
    token = access_token(server)
    headers = {"x-amz-access-token": token}

    requests.post(server.url + BATCH_PATH, json=batch_body([*good, invalid]), headers=headers)
    requests.post(server.url + BATCH_PATH, json=batch_body(good), headers=headers)
    requests.get(server.url + COMPETITIVE_PATH, params=competitive_params(good), headers=headers)
    requests.get(server.url + COMPETITIVE_PATH, params=competitive_params(good))

    calls = stats(server)["calls"]
    assert [(c["api"], c["operation"], c["status"], c["outcome"], c["items"]) for c in calls] == [
        ("lwa", "token", 200, "ok", []),
        ("spapi", "getItemOffersBatch", 200, "ok", [*good, invalid]),
        ("spapi", "getItemOffersBatch", 429, "throttled", good),
        ("spapi", "getCompetitivePricing", 200, "ok", good),
        ("spapi", "getCompetitivePricing", 403, "unauthorized", good),
    ]
    assert calls[1]["detail"]["invalid"] == [invalid]
    times = [c["t"] for c in calls]
    assert times == sorted(times)
    assert all(c["wall"] > 1.7e9 for c in calls)  # unix seconds


def test_stats_can_leave_out_the_call_list(sandbox):
    access_token(sandbox)

    summary = stats(sandbox, calls=False)

    assert "calls" not in summary
    assert summary["total_calls"] == 1
    assert summary["per_operation"]["lwa.token"]["calls"] == 1
    assert summary["time_scale"] == 100.0


def test_the_ledger_never_holds_a_secret_or_a_token(sandbox):
    token = access_token(sandbox)
    requests.post(
        sandbox.url + BATCH_PATH,
        json=batch_body(sandbox.state.apis["catalogue"].asins[:1]),
        headers={"x-amz-access-token": token},
    )

    text = json.dumps(stats(sandbox))

    assert token not in text
    for name in ("LWA_CLIENT_SECRET", "SP_API_REFRESH_TOKEN", "LWA_APP_ID"):
        assert DEMO_ENV[name] not in text


def test_listing_changes_appear_in_the_stats(sandbox):
    sandbox.state.ledger.record_change("base", "shop1", "1001", {"price": 1280}, "items/edit")

    summary = stats(sandbox)

    assert summary["total_changes"] == 1
    (change,) = summary["changes"]
    assert (change["platform"], change["key"], change["changes"]) == (
        "base",
        "1001",
        {"price": 1280},
    )


def test_a_tick_moves_prices_and_stock_the_same_way_for_the_same_seed(start_sandbox):
    first, second = start_sandbox(seed=3), start_sandbox(seed=3)
    other = start_sandbox(seed=4)
    before = {
        a: first.state.apis["catalogue"].reference_price(a)
        for a in first.state.apis["catalogue"].asins
    }

    moved = [
        requests.post(s.url + "/_sandbox/tick", params={"n": 2}, timeout=5).json()
        for s in (first, second, other)
    ]

    assert moved[0] == moved[1]
    assert moved[0]["repriced"] != moved[2]["repriced"]
    assert moved[0]["tick"] == 2
    catalogue = first.state.apis["catalogue"]
    after = {a: catalogue.reference_price(a) for a in catalogue.asins}
    assert all(after[a] is None for a in moved[0]["vanished"] if a not in moved[0]["appeared"])
    changed = [a for a in catalogue.asins if before[a] != after[a]]
    assert 0 < len(changed) < len(catalogue.asins) // 5
    assert requests.get(first.url + "/_sandbox/health", timeout=5).json()["tick"] == 2


def test_the_priced_answer_follows_the_tick(sandbox):
    catalogue = sandbox.state.apis["catalogue"]
    token = access_token(sandbox)
    summary = requests.post(sandbox.url + "/_sandbox/tick", timeout=5).json()
    asin = next(a for a in summary["repriced"] if catalogue.offers(a))

    response = requests.post(
        sandbox.url + BATCH_PATH, json=batch_body([asin]), headers={"x-amz-access-token": token}
    )

    payload = response.json()["responses"][0]["body"]["payload"]
    lowest = min(p["LandedPrice"]["Amount"] for p in payload["Summary"]["LowestPrices"])
    assert lowest == catalogue.reference_price(asin)


def test_the_catalogue_is_deterministic_and_prefix_stable():
    small, big = Catalogue(42, 50), Catalogue(42, 500)

    assert big.asins[:50] == small.asins
    assert Catalogue(42, 50).demo_listings() == small.demo_listings()
    assert Catalogue(43, 50).asins != small.asins


def test_the_catalogue_has_the_promised_shape():
    catalogue = Catalogue(42)
    counts = [len(p.offers) for p in catalogue.products.values()]
    prices = [o.listing for p in catalogue.products.values() for o in p.offers]
    listings = catalogue.demo_listings()
    unique = set().union(*listings.values())

    assert len(catalogue.asins) == len(set(catalogue.asins)) == 2000
    assert max(counts) == 20
    assert 0.02 < counts.count(0) / len(counts) < 0.07
    assert min(prices) >= 300 and max(prices) <= 30_000
    assert all(isinstance(p, int) for p in prices)
    assert set(catalogue.invalid_asins) <= unique
    assert not set(catalogue.invalid_asins) & set(catalogue.asins)
    assert 2900 <= sum(map(len, listings.values())) <= 3100
    assert 1990 <= len(unique) <= 2010
    base = set(listings["shop1"]) | set(listings["shop2"])
    assert set(listings["shop1"]) & set(listings["shop2"])  # overlap across shops
    assert base & set(listings["ebay-main"])  # and across platforms
    points = [o for p in catalogue.products.values() for o in p.offers if o.points]
    assert points and all(o.landed == o.listing + o.shipping - o.points for o in points)
    assert {o.availability for p in catalogue.products.values() for o in p.offers} == {
        "NOW",
        "FUTURE_WITHOUT_DATE",
        "FUTURE_WITH_DATE",
    }


def test_reference_price_is_the_lowest_landed_price_or_none():
    catalogue = Catalogue(42, 200)
    empty = next(a for a in catalogue.asins if not catalogue.offers(a))
    priced = next(a for a in catalogue.asins if len(catalogue.offers(a)) > 3)

    assert catalogue.reference_price(empty) is None
    assert catalogue.reference_price(priced) == min(o.landed for o in catalogue.offers(priced))
    assert catalogue.reference_price("B0NOTTHERE") is None
