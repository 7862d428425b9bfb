"""The sandbox's eBay Inventory API over real HTTP: token, reads, bulk updates, limits, faults."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.sandbox.platform_clients import (
    EbayClient,
    advance,
    set_faults,
    set_limits,
    stats,
    wait_for_window,
)

SMALL = 150  # catalogue ASINs

INVALID_TOKEN = {
    "errorId": 1001,
    "domain": "OAuth",
    "category": "REQUEST",
    "message": "Invalid access token",
    "longMessage": "Invalid access token. Check the value of the Authorization HTTP request header.",
}
TOO_MANY = {
    "errorId": 2001,
    "domain": "ACCESS",
    "category": "REQUEST",
    "message": "Too many requests.",
    "longMessage": "The request limit has been reached for the resource.",
}


def account(sandbox: Any) -> EbayClient:
    client = EbayClient(sandbox.url)
    client.refresh()
    return client


def price_quantity(offer: dict[str, Any], cents: int, quantity: int) -> dict[str, Any]:
    """One bulk_update_price_quantity request entry for an offer."""
    return {
        "sku": offer["sku"],
        "shipToLocationAvailability": {"quantity": quantity},
        "offers": [
            {
                "offerId": offer["offerId"],
                "availableQuantity": quantity,
                "price": {"value": f"{cents // 100}.{cents % 100:02d}", "currency": "USD"},
            }
        ],
    }


def offers_for(client: EbayClient, n: int) -> list[dict[str, Any]]:
    items, _ = client.all_inventory_items()
    return [client.offer_of(item["sku"]) for item in items[:n]]


def test_a_client_reads_every_item_and_updates_25_with_an_exact_ledger(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = EbayClient(sandbox.url)
    token = client.refresh()
    assert token["token_type"] == "User Access Token" and token["expires_in"] == 7200
    assert "refresh_token" not in token  # eBay does not rotate refresh tokens

    items, first = client.all_inventory_items(limit=20)
    asins = sandbox.state.apis["catalogue"].demo_listings()["ebay-main"]
    trading = [
        sku for sku, row in sandbox.state.apis["ebay"].listings.items() if row.api == "trading"
    ]
    assert first["total"] == len(items) == len(asins) - len(trading)
    assert trading and len(trading) == len(asins) // 10  # every 10th listing is a Trading listing
    assert all(item["sku"].split("-")[1] in asins for item in items)  # s-<ASIN>-<listed>
    assert len({item["sku"] for item in items}) == len(items)

    offers = [client.offer_of(item["sku"]) for item in items[:25]]
    for offer in offers:
        assert (
            offer["status"] == "PUBLISHED" and offer["pricingSummary"]["price"]["currency"] == "USD"
        )
        assert isinstance(offer["pricingSummary"]["price"]["value"], str)
    response = client.bulk_update(
        [price_quantity(o, 1999 + i, i % 4) for i, o in enumerate(offers)]
    )
    assert response.status_code == 200, response.text
    results = response.json()["responses"]
    assert [(r["statusCode"], r["sku"], r["offerId"]) for r in results] == [
        (200, o["sku"], o["offerId"]) for o in offers
    ]
    assert all("errors" not in r for r in results)
    again = client.offer_of(offers[3]["sku"])
    assert again["pricingSummary"]["price"]["value"] == "20.02"
    assert again["availableQuantity"] == 3
    item = client.get(f"/inventory_item/{offers[3]['sku']}").json()
    assert item["availability"]["shipToLocationAvailability"]["quantity"] == 3

    ledger = stats(sandbox.url)
    per_op = ledger["per_operation"]
    assert per_op["ebay.oauth2/token"]["calls"] == 1
    assert per_op["ebay.getInventoryItems"]["calls"] == -(-len(items) // 20)
    assert per_op["ebay.getOffers"]["calls"] == 26
    assert per_op["ebay.bulkUpdatePriceQuantity"] == {
        "calls": 1,
        "throttled": 0,
        "items": 25,
        "by_status": {"200": 1},
        "by_outcome": {"ok": 1},
    }
    changes = [(c["key"], c["changes"], c["via"]) for c in ledger["changes"]]
    assert changes == [
        (
            o["sku"],
            {"quantity": i % 4, "price": 1999 + i, "currency": "USD"},
            "bulk_update_price_quantity",
        )
        for i, o in enumerate(offers)
    ]


def test_207_names_each_failed_item_and_applies_only_the_good_ones(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = account(sandbox)
    offers = offers_for(client, 6)
    set_faults(sandbox.url, {"partial_failure_skus": [offers[0]["sku"]]})
    trading_sku = next(
        s for s, r in sandbox.state.apis["ebay"].listings.items() if r.api == "trading"
    )
    before = client.offer_of(offers[2]["sku"])
    entries = [
        price_quantity(offers[0], 1500, 1),  # partial-failure fault: 500 inside the 207
        price_quantity(offers[1], 1600, 1),  # fine
        {
            "offers": [
                {"offerId": offers[2]["offerId"], "price": {"value": "12.345", "currency": "USD"}}
            ]
        },
        {
            "offers": [
                {"offerId": offers[3]["offerId"], "price": {"value": "12.00", "currency": "JPY"}}
            ]
        },
        {"offers": [{"offerId": "999", "availableQuantity": 1}]},
        {"sku": trading_sku, "shipToLocationAvailability": {"quantity": 1}},  # no Inventory object
        {"sku": offers[4]["sku"], "shipToLocationAvailability": {"quantity": -1}},
        {"offers": [{"offerId": offers[5]["offerId"], "availableQuantity": 2}]},  # fine
    ]
    response = client.bulk_update(entries)
    assert response.status_code == 207, response.text
    results = response.json()["responses"]
    summary = [(r["statusCode"], [e["errorId"] for e in r.get("errors", [])]) for r in results]
    assert summary == [
        (500, [25001]),
        (200, []),
        (400, [25003]),
        (400, [25003]),
        (400, [25713]),
        (400, [25702]),
        (400, [25004]),
        (200, []),
    ]
    assert results[0]["sku"] == offers[0]["sku"] and results[0]["offerId"] == offers[0]["offerId"]
    assert results[5] == {
        "statusCode": 400,
        "sku": trading_sku,
        "errors": [
            {
                "errorId": 25702,
                "domain": "API_INVENTORY",
                "subdomain": "Selling",
                "category": "REQUEST",
                "message": f"SKU {trading_sku} could not be found or is not available in the system.",
            }
        ],
    }
    assert client.offer_of(offers[2]["sku"])["pricingSummary"] == before["pricingSummary"]
    ledger = stats(sandbox.url)
    assert [c["key"] for c in ledger["changes"]] == [offers[1]["sku"], offers[5]["sku"]]
    assert ledger["per_operation"]["ebay.bulkUpdatePriceQuantity"]["by_outcome"] == {"partial": 1}


def test_a_random_partial_failure_rate_fails_about_that_share(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL, faults="partial_failure_rate=0.5")
    client = account(sandbox)
    offers = offers_for(client, 25)
    results = client.bulk_update([price_quantity(o, 2500, 1) for o in offers]).json()["responses"]
    failed = [r for r in results if r["statusCode"] != 200]
    assert 3 <= len(failed) <= 22
    assert stats(sandbox.url)["total_changes"] == 25 - len(failed)


@pytest.mark.parametrize(
    "body",
    [
        {"requests": []},
        {"requests": "x"},
        {"nothing": 1},
    ],
)
def test_a_bad_envelope_is_a_400_and_changes_nothing(start_sandbox, body):
    sandbox = start_sandbox(n_asins=SMALL)
    client = account(sandbox)
    response = requests.post(
        f"{sandbox.url}/sell/inventory/v1/bulk_update_price_quantity",
        json=body,
        headers=client.headers(),
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorId"] == 25709


def test_more_than_25_requests_is_refused_whole(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = account(sandbox)
    offers = offers_for(client, 26)
    response = client.bulk_update([price_quantity(o, 2000, 1) for o in offers])
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["errorId"] == 25709 and "25" in error["message"]
    assert stats(sandbox.url)["total_changes"] == 0


def test_the_token_endpoint_refuses_bad_clients_and_grants(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = EbayClient(sandbox.url)
    bad_grant = client.token_response(refresh_token="v^1.1#i^1#revoked")
    assert bad_grant.status_code == 400
    assert bad_grant.json() == {
        "error": "invalid_grant",
        "error_description": "the provided authorization refresh token is invalid or was issued to another client",
    }
    bad_client = client.token_response(client=("someone", "else"))
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    wrong_type = client.token_response(grant_type="client_credentials")
    assert wrong_type.json()["error"] == "unsupported_grant_type"
    assert client.token_response().status_code == 200
    assert client.token_response().status_code == 200  # not rotated: the same one works again


def test_401_errorid_1001_for_a_missing_unknown_or_expired_token(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    set_limits(sandbox.url, "ebay", {"token_lifetime": 60.0})
    client = account(sandbox)
    assert client.get("/inventory_item", limit=1).status_code == 200
    advance(sandbox.url, seconds=59.0)  # clock seconds: still inside the token's life
    assert client.get("/inventory_item", limit=1).status_code == 200
    advance(sandbox.url, seconds=1.0)  # its 60 s are up
    for headers in (client.headers(), {}, {"Authorization": "Bearer nope"}):
        response = requests.get(
            f"{sandbox.url}/sell/inventory/v1/inventory_item", headers=headers, timeout=10
        )
        assert (response.status_code, response.json()) == (401, {"errors": [INVALID_TOKEN]})
    outcomes = stats(sandbox.url)["per_operation"]["ebay.getInventoryItems"]["by_outcome"]
    assert outcomes == {"ok": 2, "expired_token": 1, "unauthorized": 2}


def test_429_errorid_2001_at_the_daily_quota_and_from_the_429_fault(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = account(sandbox)
    set_limits(sandbox.url, "ebay", {"daily_call_limit": 5})
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 5.0)
    for _ in range(5):
        assert client.get("/inventory_item", limit=1).status_code == 200
    over = client.get("/inventory_item", limit=1)
    assert (over.status_code, over.json()) == (429, {"errors": [TOO_MANY]})
    assert "Retry-After" not in over.headers

    set_limits(sandbox.url, "ebay", {"daily_call_limit": 1000})
    set_faults(sandbox.url, {"ebay_429_rate": 1.0})
    assert (
        client.bulk_update([{"offers": [{"offerId": "1", "availableQuantity": 1}]}]).status_code
        == 429
    )
    per_op = stats(sandbox.url)["per_operation"]
    assert per_op["ebay.getInventoryItems"]["throttled"] == 1
    assert per_op["ebay.bulkUpdatePriceQuantity"]["throttled"] == 1


def test_the_251st_revision_of_a_listing_in_a_day_fails_for_that_sku(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)  # time scale 100: a sandbox day is 864 s
    client = account(sandbox)
    offers = offers_for(client, 2)
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 15.0)
    for n in range(250):
        response = client.bulk_update([price_quantity(offers[0], 1000 + n, 1)])
        assert response.status_code == 200, (n, response.text)
    blocked = client.bulk_update(
        [price_quantity(offers[0], 5000, 2), price_quantity(offers[1], 5000, 2)]
    )
    assert blocked.status_code == 207
    first, second = blocked.json()["responses"]
    assert first["statusCode"] == 400 and first["errors"][0]["errorId"] == 25019
    assert "250" in first["errors"][0]["message"]
    assert second["statusCode"] == 200  # other listings keep their own budget
    assert client.offer_of(offers[0]["sku"])["pricingSummary"]["price"]["value"] == "12.49"
    changes = [c["key"] for c in stats(sandbox.url)["changes"]]
    assert changes.count(offers[0]["sku"]) == 250 and changes.count(offers[1]["sku"]) == 1


def test_the_revision_budget_returns_the_next_sandbox_day(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)  # time scale 100: a sandbox day is 864 clock s
    client = account(sandbox)
    offer = offers_for(client, 1)[0]
    set_limits(sandbox.url, "ebay", {"revisions_per_day": 3})
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 10.0)
    codes = [client.bulk_update([price_quantity(offer, 1000, 1)]).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 207]
    usage = requests.get(f"{sandbox.url}/_sandbox/ebay/limits", timeout=10).json()
    advance(sandbox.url, seconds=usage["seconds_to_next_day"] / 2)
    assert client.bulk_update([price_quantity(offer, 1000, 1)]).status_code == 207  # same day
    advance(sandbox.url, sandbox_seconds=43_200.0)  # half a day more: past midnight PST
    assert client.bulk_update([price_quantity(offer, 1000, 1)]).status_code == 200


@pytest.mark.parametrize(
    ("faults", "status", "outcome"),
    [
        ({"outage": "0-60"}, 503, "fault:outage"),
        ({"html_rate": 1.0}, 503, "fault:html"),
        ({"error_rate": 1.0}, 500, "fault:error"),
        ({"throttle_storm": "0-60"}, 429, "fault:throttle_storm"),
        ({"malformed_rate": 1.0}, 200, "fault:malformed"),
    ],
)
def test_infrastructure_faults_answer_instead_of_ebay(start_sandbox, faults, status, outcome):
    sandbox = start_sandbox(n_asins=SMALL)
    client = account(sandbox)
    set_faults(sandbox.url, faults)
    response = client.get("/inventory_item", limit=2)
    assert response.status_code == status
    if outcome == "fault:malformed":
        with pytest.raises(requests.exceptions.JSONDecodeError):
            response.json()
    elif outcome == "fault:error":
        assert response.json()["errors"][0]["errorId"] == 25001
    elif outcome == "fault:throttle_storm":
        assert response.json() == {"errors": [TOO_MANY]}
    assert stats(sandbox.url)["per_operation"]["ebay.getInventoryItems"]["by_outcome"] == {
        outcome: 1
    }


def test_paging_errors_and_unknown_skus(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = account(sandbox)
    for params in ({"limit": 201}, {"limit": 0}, {"offset": -1}, {"limit": "x"}):
        response = client.get("/inventory_item", **params)
        assert response.status_code == 400 and response.json()["errors"][0]["errorId"] == 25706
    missing = client.get("/offer", sku="s-B000000000-none")
    assert missing.status_code == 404 and missing.json()["errors"][0]["errorId"] == 25713
    assert client.get("/offer").json()["errors"][0]["errorId"] == 25709
    assert client.get("/inventory_item/nope").status_code == 404
