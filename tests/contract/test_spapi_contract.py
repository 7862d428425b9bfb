"""Contract: every kind of body the SP-API sandbox sends validates against the official
Product Pricing v0 model (tests/contracts/sp-api/productPricingV0.json, Swagger 2), with
no property the model does not declare; and the official sandbox examples pass the same
validator (so the validator itself is checked against Amazon's own bodies)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import requests

from pipeline.sandbox.spapi import MARKETPLACE_JP
from tests.contract import official
from tests.sandbox.spapi_clients import (
    BATCH_PATH,
    COMPETITIVE_PATH,
    access_token,
    batch_body,
    competitive_params,
    set_faults,
)

MODEL = official.spapi_pricing_v0()
DEFINITIONS = MODEL["definitions"]


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}", "definitions": DEFINITIONS}


def _declared(schema: dict[str, Any]) -> tuple[set[str], dict[str, Any]]:
    """Property names a schema declares (through $ref and allOf) and their schemas."""
    if "$ref" in schema:
        return _declared(DEFINITIONS[schema["$ref"].rsplit("/", 1)[1]])
    names: dict[str, Any] = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names.update(_declared(part)[1])
    return set(names), names


def undeclared_keys(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Paths of object keys the model does not declare (additionalProperties allowed
    only where the model says so, e.g. HttpResponseHeaders)."""
    while "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].rsplit("/", 1)[1]]
    found: list[str] = []
    if isinstance(instance, dict):
        names, properties = _declared(schema)
        open_ended = "additionalProperties" in schema or not (names or schema.get("allOf"))
        for key, value in instance.items():
            if key in properties:
                found += undeclared_keys(value, properties[key], f"{path}.{key}")
            elif not open_ended:
                found.append(f"{path}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, value in enumerate(instance):
            found += undeclared_keys(value, schema["items"], f"{path}[{i}]")
    return found


def assert_conforms(body: Any, definition: str) -> None:
    jsonschema.Draft4Validator(_schema(definition)).validate(body)
    assert undeclared_keys(body, _schema(definition)) == []


@pytest.fixture
def fast(start_sandbox):
    return start_sandbox(time_scale=10_000.0)


def _wait_get(session, url, **kwargs):
    """GET until the bucket has a token (time scale 10,000: a token per 0.2 ms)."""
    while (response := session.get(url, timeout=5, **kwargs)).status_code == 429:
        pass
    return response


def _wait_post(session, url, **kwargs):
    while (response := session.post(url, timeout=5, **kwargs)).status_code == 429:
        pass
    return response


def test_success_invalid_and_no_offer_batch_items_validate(fast):
    catalogue = fast.state.apis["catalogue"]
    priced = [a for a in catalogue.asins if catalogue.buy_box(a)][:15]
    suppressed = [a for a in catalogue.asins if catalogue.offers(a) and not catalogue.buy_box(a)][
        :2
    ]
    empty = [a for a in catalogue.asins if not catalogue.offers(a)][:2]
    asins = [*priced, *suppressed, *empty, catalogue.invalid_asins[0]]
    with requests.Session() as session:
        session.headers["x-amz-access-token"] = access_token(fast)
        body = _wait_post(session, fast.url + BATCH_PATH, json=batch_body(asins)).json()

    assert_conforms(body, "GetItemOffersBatchResponse")
    statuses = {item["status"]["statusCode"] for item in body["responses"]}
    kinds = {
        item["body"]["payload"]["status"] for item in body["responses"] if "payload" in item["body"]
    }
    assert statuses == {200, 400} and kinds == {"Success", "NoBuyableOffers"}
    offers = [
        o
        for item in body["responses"]
        if "payload" in item["body"]
        for o in item["body"]["payload"]["Offers"]
    ]
    assert any("Points" in o for o in offers)


def test_get_item_offers_bodies_validate(fast):
    catalogue = fast.state.apis["catalogue"]
    priced = next(a for a in catalogue.asins if catalogue.buy_box(a))
    empty = next(a for a in catalogue.asins if not catalogue.offers(a))
    params = {"MarketplaceId": MARKETPLACE_JP, "ItemCondition": "New"}
    with requests.Session() as session:
        session.headers["x-amz-access-token"] = access_token(fast)
        bodies = [
            _wait_get(session, f"{fast.url}/products/pricing/v0/items/{asin}/offers", params=params)
            for asin in (priced, empty, catalogue.invalid_asins[0])
        ]

    assert [b.status_code for b in bodies] == [200, 200, 400]
    for response in bodies:
        assert_conforms(response.json(), "GetOffersResponse")


def test_competitive_pricing_bodies_of_every_kind_validate(fast):
    catalogue = fast.state.apis["catalogue"]
    priced = [a for a in catalogue.asins if catalogue.buy_box(a)][:10]
    suppressed = [a for a in catalogue.asins if catalogue.offers(a) and not catalogue.buy_box(a)][
        :2
    ]
    empty = [a for a in catalogue.asins if not catalogue.offers(a)][:6]
    asins = [*priced, *suppressed, *empty, *catalogue.invalid_asins[:2]]
    with requests.Session() as session:
        session.headers["x-amz-access-token"] = access_token(fast)
        body = _wait_get(
            session, fast.url + COMPETITIVE_PATH, params=competitive_params(asins)
        ).json()
        skus = _wait_get(
            session,
            fast.url + COMPETITIVE_PATH,
            params=competitive_params([], ItemType="Sku", Skus="MY-SKU-1"),
        ).json()

    assert_conforms(body, "GetPricingResponse")
    assert_conforms(skus, "GetPricingResponse")
    products = [p.get("Product", {}) for p in body["payload"]]
    assert {p["status"] for p in body["payload"]} == {"Success", "ClientError"}
    assert any("CompetitivePricing" not in p for p in products)  # identifiers only
    assert any(p.get("CompetitivePricing", {}).get("CompetitivePrices") == [] for p in products)


@pytest.mark.parametrize(
    ("fault", "expected_status"),
    [
        (None, 400),
        ("throttle_storm=0-60", 429),
        ("error_rate=1", 500),
        ("outage=0-60", 503),
        ("expired_tokens", 403),
    ],
)
def test_every_error_body_validates_as_errors(fast, fault, expected_status):
    token = access_token(fast)
    if fault:
        set_faults(fast, fault)
    asins = fast.state.apis["catalogue"].asins[:2]
    body = batch_body([asins[0], asins[0]])  # a duplicate: 400 when nothing else answers first

    with requests.Session() as session:
        session.headers["x-amz-access-token"] = token
        batch = (
            _wait_post(session, fast.url + BATCH_PATH, json=body)
            if expected_status != 429
            else session.post(fast.url + BATCH_PATH, json=body)
        )
        pricing = session.get(
            fast.url + COMPETITIVE_PATH, params=competitive_params(asins, ItemType="ASIN")
        )

    assert batch.status_code == expected_status
    assert_conforms(batch.json(), "Errors")
    assert pricing.status_code == (404 if fault is None else expected_status)
    assert_conforms(pricing.json(), "GetPricingResponse")


def test_a_403_without_any_token_validates(fast):
    response = requests.post(fast.url + BATCH_PATH, json={"requests": []}, timeout=5)

    assert response.status_code == 403
    assert_conforms(response.json(), "Errors")


@pytest.mark.parametrize(
    "example",
    [name for name in official.spapi_example_names() if "Summary" not in name],
)
def test_the_validator_accepts_amazons_own_examples(example, official):
    recorded = official.spapi_example(example)
    definition = {
        ("getItemOffersBatch", 200): "GetItemOffersBatchResponse",
        ("getItemOffersBatch", 400): "Errors",
        ("getItemOffers", 200): "GetOffersResponse",
        ("getItemOffers", 400): "GetOffersResponse",
    }.get((recorded["operationId"], recorded["httpStatus"]), "GetPricingResponse")

    jsonschema.Draft4Validator(_schema(definition)).validate(recorded["response"])


def test_the_validator_rejects_a_misspelt_or_mistyped_body():
    good = {"errors": [{"code": "QuotaExceeded", "message": "m", "details": ""}]}
    assert_conforms(good, "Errors")

    with pytest.raises(AssertionError):
        assert_conforms({"errors": [{"code": "X", "message": "m", "detail": ""}]}, "Errors")
    with pytest.raises(jsonschema.ValidationError):
        assert_conforms({"errors": [{"code": "X"}]}, "Errors")
    with pytest.raises(jsonschema.ValidationError):
        assert_conforms({"payload": {"status": "Success"}}, "GetOffersResponse")
