"""SP-API request validation and rate limits on the wire: statuses, bodies, headers, and
the ledger's exact counts (issue 3, points 2 and 4)."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from typing import Any

import pytest
import requests

from bench.sandbox_process import sandbox_process
from pipeline.sandbox.spapi import DUPLICATE_REQUESTS, INVALID_MARKETPLACE, MARKETPLACE_JP
from tests.integration.test_fetch import catalogue
from tests.sandbox.spapi_clients import (
    BATCH_PATH,
    COMPETITIVE_PATH,
    access_token,
    batch_body,
    competitive_params,
    offer_request,
    set_faults,
    stats,
)

QUOTA_BODY = {
    "errors": [
        {
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }
    ]
}


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def _post_batch(session, server, token, body):
    return session.post(
        server.url + BATCH_PATH, json=body, headers={"x-amz-access-token": token}, timeout=5
    )


def _asins(server, n):
    return server.state.apis["catalogue"].asins[:n]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("duplicate", DUPLICATE_REQUESTS),
        ("query_params", INVALID_MARKETPLACE),
        ("other_marketplace", INVALID_MARKETPLACE),
        ("no_condition", "Invalid Input"),
        ("lower_case_condition", "Invalid Input"),
        ("bad_customer_type", "Invalid Input"),
        ("empty", "Invalid Input"),
        ("twenty_one", "Invalid Input"),
        ("bad_uri", "Invalid Input"),
        ("post_method", "Invalid Input"),
        ("not_an_object", "Invalid Input"),
    ],
)
def test_batch_requests_the_model_rejects_get_400_invalid_input_with_rate_header(
    start_sandbox, session, body, message
):
    server = start_sandbox(time_scale=1000.0)
    asins = _asins(server, 21)
    bodies = {
        "duplicate": batch_body([asins[0], asins[1], asins[0]]),
        "query_params": {
            "requests": [
                {
                    "uri": f"/products/pricing/v0/items/{asins[0]}/offers",
                    "method": "GET",
                    "queryParams": {"MarketplaceId": MARKETPLACE_JP, "ItemCondition": "New"},
                }
            ]
        },
        "other_marketplace": batch_body(asins[:2], MarketplaceId="ATVPDKIKX0DER"),
        "no_condition": batch_body(asins[:2], ItemCondition=None),
        "lower_case_condition": batch_body(asins[:2], ItemCondition="new"),
        "bad_customer_type": batch_body(asins[:2], CustomerType="Retail"),
        "empty": {"requests": []},
        "twenty_one": batch_body(asins),
        "bad_uri": {
            "requests": [offer_request(asins[0], uri=f"/products/pricing/v0/items/{asins[0]}")]
        },
        "post_method": batch_body(asins[:1], method="POST"),
        "not_an_object": [offer_request(asins[0])],
    }

    response = _post_batch(session, server, access_token(server), bodies[body])

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["code"] == "InvalidInput"
    assert error["message"] == message
    assert response.headers["x-amzn-RateLimit-Limit"] == "100.0"
    calls = stats(server)["per_operation"]["spapi.getItemOffersBatch"]
    assert calls["by_outcome"] == {"invalid_input": 1}


def test_batch_tolerates_nulls_and_extra_fields_the_library_sends(sandbox, session):
    asins = _asins(sandbox, 2)
    body = batch_body(asins, CustomerType=None, headers=None)

    response = _post_batch(session, sandbox, access_token(sandbox), body)

    assert response.status_code == 200
    assert [r["status"]["statusCode"] for r in response.json()["responses"]] == [200, 200]


def test_an_invalid_asin_is_a_per_item_400_inside_a_200_batch(sandbox, session):
    catalogue = sandbox.state.apis["catalogue"]
    invalid = catalogue.invalid_asins[0]
    asins = [catalogue.asins[0], invalid, catalogue.asins[1]]

    response = _post_batch(session, sandbox, access_token(sandbox), batch_body(asins))

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "10.0"
    items = response.json()["responses"]
    assert [i["status"] for i in items] == [
        {"statusCode": 200, "reasonPhrase": "OK"},
        {"statusCode": 400, "reasonPhrase": "Bad Request"},
        {"statusCode": 200, "reasonPhrase": "OK"},
    ]
    assert items[1]["body"] == {
        "errors": [
            {
                "code": "InvalidInput",
                "message": f"{invalid} is an invalid ASIN for marketplace {MARKETPLACE_JP}",
                "details": "",
            }
        ]
    }
    assert items[1]["request"] == {
        "MarketplaceId": MARKETPLACE_JP,
        "Asin": invalid,
        "ItemCondition": "New",
    }
    (call,) = [c for c in stats(sandbox)["calls"] if c["api"] == "spapi"]
    assert call["items"] == asins
    assert call["detail"]["invalid"] == [invalid]


def test_an_asin_without_offers_is_no_buyable_offers(sandbox, session):
    catalogue = sandbox.state.apis["catalogue"]
    empty = next(a for a in catalogue.asins if not catalogue.offers(a))

    response = _post_batch(session, sandbox, access_token(sandbox), batch_body([empty]))

    (item,) = response.json()["responses"]
    payload = item["body"]["payload"]
    assert payload["status"] == "NoBuyableOffers"
    assert payload["Summary"] == {"TotalOfferCount": 0}
    assert payload["Offers"] == []
    (call,) = [c for c in stats(sandbox)["calls"] if c["api"] == "spapi"]
    assert call["detail"]["no_offers"] == [empty]


def test_wrong_case_item_type_is_a_404_not_found(sandbox, session):
    response = session.get(
        sandbox.url + COMPETITIVE_PATH,
        params=competitive_params(_asins(sandbox, 2), ItemType="ASIN"),
        headers={"x-amz-access-token": access_token(sandbox)},
        timeout=5,
    )

    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {"code": "NotFound", "message": "The requested resource doesn't exist.", "details": ""}
        ]
    }
    assert response.headers["x-amzn-RateLimit-Limit"] == "50.0"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"MarketplaceId": ""}, INVALID_MARKETPLACE),
        ({"ItemType": "Isbn"}, "Invalid Input"),
        ({"Asins": ""}, "Invalid Input"),
        ({"Asins": ",".join(f"B0TWENTYON{i}" for i in range(21))}, "Invalid Input"),
    ],
)
def test_competitive_pricing_rejects_what_the_model_rejects(
    start_sandbox, session, params, message
):
    server = start_sandbox(time_scale=1000.0)
    query = competitive_params(_asins(server, 2))
    query.update(params)

    response = session.get(
        server.url + COMPETITIVE_PATH,
        params=query,
        headers={"x-amz-access-token": access_token(server)},
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == message
    assert response.headers["x-amzn-RateLimit-Limit"] == "500.0"


def test_get_item_offers_requires_item_condition_and_ignores_extra_marketplace_keys(
    start_sandbox, session
):
    server = start_sandbox(time_scale=1000.0)
    asin = _asins(server, 1)[0]
    token = access_token(server)
    url = f"{server.url}/products/pricing/v0/items/{asin}/offers"
    extras = {"MarketplaceIds": MARKETPLACE_JP, "marketplace_ids": MARKETPLACE_JP}

    missing = session.get(
        url,
        params={"MarketplaceId": MARKETPLACE_JP, **extras},
        headers={"x-amz-access-token": token},
    )
    server.clock.advance(1.0)  # clock seconds: the bucket is full again
    good = session.get(
        url,
        params={"MarketplaceId": MARKETPLACE_JP, "ItemCondition": "New", **extras},
        headers={"x-amz-access-token": token},
    )

    assert missing.status_code == 400
    assert good.status_code == 200
    assert good.json()["payload"]["ASIN"] == asin


@pytest.mark.parametrize(
    ("operation", "rate"),
    [("getItemOffersBatch", "0.1"), ("getItemOffers", "0.5"), ("getCompetitivePricing", "0.5")],
)
def test_each_operation_allows_its_burst_then_429_without_rate_header(
    start_sandbox, session, operation, rate
):
    server = start_sandbox(time_scale=1.0)  # unscaled: no token refills during the test
    token = access_token(server)
    asins = _asins(server, 2)
    headers = {"x-amz-access-token": token}

    def call():
        if operation == "getItemOffersBatch":
            return session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers)
        if operation == "getItemOffers":
            return session.get(
                f"{server.url}/products/pricing/v0/items/{asins[0]}/offers",
                params={"MarketplaceId": MARKETPLACE_JP, "ItemCondition": "New"},
                headers=headers,
            )
        return session.get(
            server.url + COMPETITIVE_PATH, params=competitive_params(asins), headers=headers
        )

    first, second, third = call(), call(), call()

    assert first.status_code == 200
    assert first.headers["x-amzn-RateLimit-Limit"] == rate
    for throttled in (second, third):
        assert throttled.status_code == 429
        assert throttled.json() == QUOTA_BODY
        assert "x-amzn-RateLimit-Limit" not in throttled.headers
        assert throttled.headers["x-amzn-RequestId"]
    ledger = stats(server)["per_operation"]
    assert ledger == {
        "lwa.token": {
            "calls": 1,
            "throttled": 0,
            "items": 0,
            "by_status": {"200": 1},
            "by_outcome": {"ok": 1},
        },
        f"spapi.{operation}": {
            "calls": 3,
            "throttled": 2,
            "items": 3 * (1 if operation == "getItemOffers" else 2),
            "by_status": {"200": 1, "429": 2},
            "by_outcome": {"ok": 1, "throttled": 2},
        },
    }


def test_buckets_are_per_operation(start_sandbox, session):
    server = start_sandbox(time_scale=1.0)
    headers = {"x-amz-access-token": access_token(server)}
    asins = _asins(server, 2)

    batch = session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers)
    pricing = session.get(
        server.url + COMPETITIVE_PATH, params=competitive_params(asins), headers=headers
    )

    assert (batch.status_code, pricing.status_code) == (200, 200)


def test_rate_override_changes_the_rate_and_the_header_live(start_sandbox, session):
    server = start_sandbox(time_scale=1.0)
    headers = {"x-amz-access-token": access_token(server)}
    asins = _asins(server, 1)
    assert (
        session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers).headers[
            "x-amzn-RateLimit-Limit"
        ]
        == "0.1"
    )

    set_faults(server, "rate_override.getItemOffersBatch=50")
    server.clock.advance(0.03)  # clock seconds: more than one token at 50 req/s (not at 0.1)
    response = session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers)

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "50.0"


def test_reset_clears_the_ledger_and_refills_the_buckets(start_sandbox, session):
    server = start_sandbox(time_scale=1.0)
    headers = {"x-amz-access-token": access_token(server)}
    asins = _asins(server, 1)
    session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers)
    assert (
        session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers).status_code
        == 429
    )

    assert session.post(server.url + "/_sandbox/reset").json() == {"ok": True}

    assert stats(server)["total_calls"] == 0
    assert (
        session.post(server.url + BATCH_PATH, json=batch_body(asins), headers=headers).status_code
        == 200
    )


@pytest.mark.slow  # 5 s of driving: the rate is measured on real time, not the clock
def test_at_time_scale_100_the_batch_accepts_10_per_second_and_429s_the_rest():
    """Issue 3 point 4: driven as fast as possible for 5 s, 10 req/s within 2 % after the burst.

    The sandbox runs in a process of its own, as Amazon does, so its threads do not share an
    interpreter lock with the four threads driving it (plain http.client; werkzeug closes
    every connection, so each call is a fresh one). The ledger's server-side times give the
    rate; see ``_bucket_rate`` for why the figure is bracketed by refusals and acceptances.
    """
    with sandbox_process(time_scale=100.0, n_asins=20) as sandbox:
        token = access_token(sandbox)
        body = json.dumps(batch_body(catalogue(sandbox)["asins"][:1]))
        sandbox.reset()
        statuses = _drive(sandbox, body, token, seconds=5.0)
        ledger = stats(sandbox)

    accepted = statuses.count(200)
    assert set(statuses) == {200, 429}
    assert len(statuses) > 20 * accepted  # driven far past the limit
    batch = ledger["per_operation"]["spapi.getItemOffersBatch"]
    assert batch["calls"] == len(statuses)
    assert batch["by_status"] == {"200": accepted, "429": len(statuses) - accepted}
    calls = [c for c in ledger["calls"] if c["operation"] == "getItemOffersBatch"]
    ok_times = [c["t"] for c in calls if c["status"] == 200]
    # never faster than the rate: the ledger's times are the bucket checks, so each
    # acceptance comes at least one interval (0.1 s) after the last
    gaps = [b - a for a, b in itertools.pairwise(ok_times)]
    assert min(gaps) >= 0.1 - 1e-9, min(gaps)
    # and never a 429 while a token was due: replay the admissions through an ideal bucket
    # (10 tokens/s, at most 1), skipping calls within a microsecond of a token falling due
    tokens, last = 1.0, None
    for call in calls:
        earned = tokens if last is None else tokens + (call["t"] - last) * 10.0
        last = call["t"]
        if abs(earned - 1.0) > 1e-5:
            assert call["status"] == (200 if earned >= 1.0 else 429), (earned, call)
        tokens = min(1.0, earned) - (1.0 if call["status"] == 200 else 0.0)
    slowest, estimate, fastest = _bucket_rate(calls)
    assert slowest <= estimate <= fastest
    assert abs(estimate - 10.0) <= 0.2, (accepted, slowest, estimate, fastest)
    assert slowest <= 10.0 * 1.02  # even the client's lag aside, never 2 % fast
    assert fastest >= 10.0 * 0.98  # and refusals never came 2 % before a token was due


def _drive(sandbox: Any, body: str, token: str, *, seconds: float) -> list[int]:
    """Four threads sending getItemOffersBatch back to back for ``seconds``; the statuses."""
    host, port = sandbox.url.removeprefix("http://").split(":")
    headers = {"x-amz-access-token": token, "content-type": "application/json"}
    statuses: list[int] = []
    stop = time.monotonic() + seconds

    def hammer() -> None:
        while time.monotonic() < stop:
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            connection.request("POST", BATCH_PATH, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status == 429:
                assert response.getheader("x-amzn-RateLimit-Limit") is None
            statuses.append(response.status)
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _bucket_rate(calls: list[dict[str, Any]]) -> tuple[float, float, float]:
    """The bucket's refill rate after the burst, from the ledger: (slowest, estimate, fastest).

    Between two acceptances at ``a`` and ``b`` the next token fell due somewhere after the
    last refusal ``r`` before ``b`` and no later than ``b``: the client's arrival lag is in
    ``[r, b]``, not in the server. Accepted ÷ (sum of ``b − a``) is therefore the slowest the
    bucket can be, accepted ÷ (sum of ``r − a``) the fastest, and the midpoints the estimate.
    A client on a loaded machine arrives late and widens the bracket; it does not move it.
    """
    slowest = estimate = fastest = 0.0  # summed seconds per refill, by each reading
    accepted_at: float | None = None
    refused_at: float | None = None
    intervals = 0
    for call in calls:
        if call["status"] != 200:
            refused_at = call["t"]
            continue
        if accepted_at is not None:
            due_after = refused_at if refused_at is not None else accepted_at
            slowest += call["t"] - accepted_at
            fastest += due_after - accepted_at
            estimate += (due_after + call["t"]) / 2 - accepted_at
            intervals += 1
        accepted_at, refused_at = call["t"], None
    return intervals / slowest, intervals / estimate, intervals / fastest
