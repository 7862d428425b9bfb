"""Fault knobs on the SP-API side: each one set live (POST /_sandbox/faults) or at start,
driven over HTTP, with the status, body and headers it must produce."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from sp_api.base import SellingApiServerException

from tests.sandbox.spapi_clients import (
    BATCH_PATH,
    access_token,
    advance,
    batch_body,
    offer_request,
    products_client,
    set_faults,
    stats,
)


def _batch(server, token, asins):
    return requests.post(
        server.url + BATCH_PATH,
        json=batch_body(asins),
        headers={"x-amz-access-token": token},
        timeout=5,
    )


@pytest.fixture
def fast(start_sandbox):
    """A sandbox whose buckets refill every millisecond (time scale 10,000)."""
    return start_sandbox(time_scale=10_000.0)


def test_error_rate_answers_500_internal_failure(fast):
    token = access_token(fast)
    set_faults(fast, {"error_rate": 1.0})

    response = _batch(fast, token, fast.state.apis["catalogue"].asins[:2])

    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {
                "code": "InternalFailure",
                "message": "We encountered an internal error. Please try again.",
                "details": "",
            }
        ]
    }
    assert "x-amzn-RateLimit-Limit" not in response.headers


def test_error_rate_per_operation_spares_the_others(fast):
    set_faults(fast, "error_rate.getItemOffersBatch=1")
    client = products_client(fast)
    asins = fast.state.apis["catalogue"].asins[:2]

    with pytest.raises(SellingApiServerException):
        client.get_item_offers_batch([offer_request(a) for a in asins])
    assert client.get_competitive_pricing_for_asins(asins).payload


def test_outage_window_answers_503_inside_it_only(fast):
    token = access_token(fast)
    asins = fast.state.apis["catalogue"].asins[:1]
    set_faults(fast, "outage=30-60")  # clock seconds since set

    before = _batch(fast, token, asins)
    advance(fast, 35.0)  # inside the window
    inside = _batch(fast, token, asins)
    advance(fast, 24.0)  # 59 s: still inside
    last = _batch(fast, token, asins)
    advance(fast, 1.0)  # 60 s: past its end
    after = _batch(fast, token, asins)

    statuses = [r.status_code for r in (before, inside, last, after)]
    assert statuses == [200, 503, 503, 200]
    assert inside.json()["errors"][0]["code"] == "ServiceUnavailable"
    outcomes = [c["outcome"] for c in stats(fast)["calls"] if c["api"] == "spapi"]
    assert outcomes == ["ok", "fault:outage", "fault:outage", "ok"]


def test_call_windows_count_requests_not_seconds(start_sandbox):
    server = start_sandbox(time_scale=1.0)
    token = access_token(server)
    asins = server.state.apis["catalogue"].asins[:1]
    set_faults(server, "throttle_storm_calls=1-3,outage_calls=3-5")

    statuses = []
    for _ in range(7):
        server.clock.advance(10.0)  # a full bucket (0.1 req/s) for every call
        statuses.append(_batch(server, token, asins).status_code)

    assert statuses == [200, 429, 429, 503, 503, 200, 200]
    outcomes = [c["outcome"] for c in stats(server)["calls"] if c["api"] == "spapi"]
    assert outcomes[1:5] == ["fault:throttle_storm"] * 2 + ["fault:outage"] * 2
    assert server.call_counts(prefix="spapi.") == {"spapi.getItemOffersBatch": 7}


def test_outage_html_sends_an_html_503_that_the_library_turns_into_an_empty_payload(fast):
    client = products_client(fast)
    asins = fast.state.apis["catalogue"].asins[:1]
    client.get_competitive_pricing_for_asins(asins)  # the token, before the outage
    set_faults(fast, "outage=0-60,outage_html")

    response = client.get_competitive_pricing_for_asins(asins)

    assert response.payload == {}  # why the fetch step must treat an empty payload as failure
    raw = requests.get(fast.url + "/products/pricing/v0/competitivePrice", timeout=5)
    assert raw.status_code == 503
    assert raw.headers["content-type"].startswith("text/html")
    assert "<h1>503 Service Temporarily Unavailable</h1>" in raw.text


def test_html_rate_answers_503_html_after_spending_a_token(start_sandbox):
    server = start_sandbox(time_scale=1.0)
    token = access_token(server)
    set_faults(server, {"html_rate": 1.0})
    asins = server.state.apis["catalogue"].asins[:1]

    first = _batch(server, token, asins)
    second = _batch(server, token, asins)

    assert first.status_code == 503
    assert first.headers["content-type"].startswith("text/html")
    assert second.status_code == 429  # the 503 spent the only token


def test_throttle_storm_answers_429_quota_exceeded_without_the_rate_header(fast):
    token = access_token(fast)
    set_faults(fast, "throttle_storm=0-60")

    response = _batch(fast, token, fast.state.apis["catalogue"].asins[:1])

    assert response.status_code == 429
    assert response.json()["errors"][0]["code"] == "QuotaExceeded"
    assert "x-amzn-RateLimit-Limit" not in response.headers
    per_op = stats(fast)["per_operation"]["spapi.getItemOffersBatch"]
    assert per_op["throttled"] == 1
    assert per_op["by_outcome"] == {"fault:throttle_storm": 1}


def test_malformed_rate_cuts_the_json_of_a_200(fast):
    token = access_token(fast)
    set_faults(fast, "malformed_rate=1")

    response = _batch(fast, token, fast.state.apis["catalogue"].asins[:3])

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_slow_responses_sleep_outside_the_lock(fast):
    token = access_token(fast)
    set_faults(fast, "slow_ms=300")
    asins = fast.state.apis["catalogue"].asins[:1]
    durations: list[float] = []

    def timed_call() -> None:
        started = time.monotonic()
        requests.get(
            f"{fast.url}/products/pricing/v0/items/{asins[0]}/offers",
            params={"MarketplaceId": "A1VC38T7YXB528", "ItemCondition": "New"},
            headers={"x-amz-access-token": token},
            timeout=5,
        )
        durations.append(time.monotonic() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=timed_call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.monotonic() - started

    assert min(durations) >= 0.3
    assert total < 0.6  # three 300 ms answers overlapped; held under the lock they'd take 0.9 s


def test_expired_tokens_fault_refuses_even_a_fresh_token(fast):
    token = access_token(fast)
    set_faults(fast, "expired_tokens")

    response = _batch(fast, token, fast.state.apis["catalogue"].asins[:1])

    assert response.status_code == 403
    assert response.json()["errors"][0]["details"] == "The access token you provided has expired."


def test_zero_offers_fault_reports_no_buyable_offers_for_every_asin(fast):
    token = access_token(fast)
    catalogue = fast.state.apis["catalogue"]
    priced = [a for a in catalogue.asins if catalogue.offers(a)][:5]
    set_faults(fast, {"zero_offers": True})

    items = _batch(fast, token, priced).json()["responses"]
    pricing = requests.get(
        fast.url + "/products/pricing/v0/competitivePrice",
        params={"Asins": ",".join(priced), "ItemType": "Asin", "MarketplaceId": "A1VC38T7YXB528"},
        headers={"x-amz-access-token": token},
        timeout=5,
    ).json()["payload"]

    assert [i["body"]["payload"]["status"] for i in items] == ["NoBuyableOffers"] * 5
    for price in pricing:
        assert not price["Product"].get("CompetitivePricing", {}).get("CompetitivePrices")


def test_invalid_asins_fault_turns_chosen_asins_into_per_item_400s(fast):
    token = access_token(fast)
    asins = fast.state.apis["catalogue"].asins[:3]
    set_faults(fast, f"invalid_asins={asins[0]}+{asins[2]}")

    items = _batch(fast, token, asins).json()["responses"]

    assert [i["status"]["statusCode"] for i in items] == [400, 200, 400]


def test_faults_set_at_start_and_read_back(start_sandbox):
    server = start_sandbox(faults="zero_offers,slow_ms=5,error_rate.getItemOffers=0.5")

    knobs = requests.get(server.url + "/_sandbox/faults", timeout=5).json()

    assert knobs["zero_offers"] is True
    assert knobs["slow_ms"] == 5.0
    assert knobs["error_rate_by_operation"] == {"getItemOffers": 0.5}


def test_posting_faults_replaces_every_knob(fast):
    set_faults(fast, "zero_offers,slow_ms=5")

    knobs = set_faults(fast, {"error_rate": 0.1})

    assert knobs["zero_offers"] is False
    assert knobs["slow_ms"] == 0.0
    assert knobs["error_rate"] == 0.1


def test_an_unknown_fault_is_a_400_that_names_it(fast):
    response = requests.post(fast.url + "/_sandbox/faults", json={"eror_rate": 1}, timeout=5)

    assert response.status_code == 400
    assert "eror_rate" in response.json()["error"]
    assert requests.get(fast.url + "/_sandbox/faults", timeout=5).json()["error_rate"] == 0.0


def test_error_rate_is_a_share_of_calls_deterministic_per_seed(start_sandbox):
    outcomes = []
    for _ in range(2):
        server = start_sandbox(time_scale=1.0, seed=7, faults="error_rate=0.3")
        token = access_token(server)
        statuses = []
        for _ in range(100):
            server.clock.advance(10.0)  # clock seconds: one token at 0.1 req/s, never a 429
            response = _batch(server, token, server.state.apis["catalogue"].asins[:1])
            statuses.append(response.status_code)
        outcomes.append(statuses)

    assert outcomes[0] == outcomes[1]
    assert 15 <= outcomes[0].count(500) <= 45
