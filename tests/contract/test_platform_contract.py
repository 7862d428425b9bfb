"""Contract: every kind of body the sandbox's BASE and eBay send matches the official documents.

eBay: bodies validate against the Sell Inventory OpenAPI 3 document
(``tests/contracts/ebay/sell_inventory_v1_oas3.json``) with openapi-schema-validator,
made strict — an object may carry only the properties the document declares — so an extra
or misspelt field fails. The document declares no schema for 207 (it is the 200 schema) nor
an error envelope (eBay's is ``{"errors": [Error]}``, built here from its ``Error``).
BASE: field lists written out from ``base_api_v1_items*.md`` and the oauth docs, and every
(error, error_description) pair the docs show.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator

from pipeline.sandbox.credentials import DEMO_ENV
from tests.contract import official
from tests.sandbox.platform_clients import BaseClient, EbayClient, set_faults, set_limits

SMALL = 150  # catalogue ASINs

# ---- eBay -----------------------------------------------------------------------------------


@cache
def ebay_spec() -> dict[str, Any]:
    return official.ebay_inventory()


def strict(schema: Any) -> Any:
    """A copy where every object schema with properties forbids undeclared ones."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(value) for value in schema]
    return schema


@cache
def strict_components() -> dict[str, Any]:
    return strict(copy.deepcopy(ebay_spec()["components"]))


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    """The spec's response schema for an operation (207 borrows 200's, which it repeats)."""
    responses = ebay_spec()["paths"][path][method]["responses"]
    entry = responses[status]
    if "content" not in entry and status == "207":
        entry = responses["200"]
    return entry["content"]["application/json"]["schema"]


ERROR_ENVELOPE = {
    "type": "object",
    "required": ["errors"],
    "additionalProperties": False,
    "properties": {
        "errors": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Error"}}
    },
}


def assert_valid(body: Any, schema: dict[str, Any]) -> None:
    root = {**schema, "components": strict_components()}
    errors = sorted(OAS30Validator(root).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def assert_ebay_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid(body, ERROR_ENVELOPE)
    for error in body["errors"]:
        assert {"errorId", "domain", "category", "message"} <= set(error)


def price_quantity(offer: dict[str, Any], value: str, quantity: int) -> dict[str, Any]:
    return {
        "sku": offer["sku"],
        "shipToLocationAvailability": {"quantity": quantity},
        "offers": [
            {
                "offerId": offer["offerId"],
                "availableQuantity": quantity,
                "price": {"value": value, "currency": "USD"},
            }
        ],
    }


def test_the_validator_is_strict_enough_to_fail():
    with pytest.raises(AssertionError):
        assert_valid(
            {"responses": [{"statusCode": "200"}]},
            response_schema("/bulk_update_price_quantity", "post", "200"),
        )
    with pytest.raises(AssertionError):
        assert_valid(
            {"responses": [{"statusCode": 200, "sku_id": "x"}]},
            response_schema("/bulk_update_price_quantity", "post", "200"),
        )
    with pytest.raises(AssertionError):
        assert_valid({"errors": [{"errorId": "1001"}]}, ERROR_ENVELOPE)


def test_every_ebay_success_body_validates_against_the_openapi_document(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = EbayClient(sandbox.url)
    client.refresh()

    first = client.get("/inventory_item", limit=3, offset=0)
    second = client.get("/inventory_item", limit=3, offset=3)
    for page in (first, second):
        assert page.status_code == 200
        assert_valid(page.json(), response_schema("/inventory_item", "get", "200"))
    assert "next" in first.json() and "prev" in second.json()
    sku = first.json()["inventoryItems"][0]["sku"]

    one = client.get(f"/inventory_item/{sku}")
    assert_valid(one.json(), response_schema("/inventory_item/{sku}", "get", "200"))
    offers = client.get("/offer", sku=sku)
    assert_valid(offers.json(), response_schema("/offer", "get", "200"))
    offer = offers.json()["offers"][0]
    by_id = client.get(f"/offer/{offer['offerId']}")
    assert_valid(by_id.json(), response_schema("/offer/{offerId}", "get", "200"))

    request_schema = ebay_spec()["paths"]["/bulk_update_price_quantity"]["post"]["requestBody"]
    request_schema = request_schema["content"]["application/json"]["schema"]
    good = {"requests": [price_quantity(offer, "31.40", 2)]}
    assert_valid(good, request_schema)  # what we send is what eBay accepts
    ok = client.bulk_update(good["requests"])
    assert ok.status_code == 200
    assert_valid(ok.json(), response_schema("/bulk_update_price_quantity", "post", "200"))

    set_faults(sandbox.url, {"partial_failure_skus": [sku]})
    other = client.offer_of(first.json()["inventoryItems"][1]["sku"])
    mixed = [
        price_quantity(offer, "31.40", 2),
        price_quantity(other, "0.10", 1),
        {"offers": [{"offerId": "999", "availableQuantity": 1}]},
        {"sku": "nope", "shipToLocationAvailability": {"quantity": 1}},
    ]
    assert_valid({"requests": mixed}, request_schema)
    partial = client.bulk_update(mixed)
    assert partial.status_code == 207
    assert_valid(partial.json(), response_schema("/bulk_update_price_quantity", "post", "207"))
    assert [r["statusCode"] for r in partial.json()["responses"]] == [500, 400, 400, 400]


def test_every_ebay_error_body_validates_against_the_openapi_error(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = EbayClient(sandbox.url)
    client.refresh()
    base = f"{sandbox.url}/sell/inventory/v1"

    assert_ebay_error(requests.get(f"{base}/inventory_item", timeout=10), 401)
    assert_ebay_error(client.get("/inventory_item", limit=500), 400)
    assert_ebay_error(client.get("/inventory_item/nope"), 404)
    assert_ebay_error(client.get("/offer", sku="nope"), 404)
    assert_ebay_error(client.get("/offer"), 400)
    assert_ebay_error(client.get("/offer/123"), 404)
    assert_ebay_error(client.bulk_update([]), 400)
    too_many = [{"offers": [{"offerId": str(n), "availableQuantity": 1}]} for n in range(26)]
    assert_ebay_error(client.bulk_update(too_many), 400)
    not_json = requests.post(
        f"{base}/bulk_update_price_quantity",
        data="{not json",
        headers={**client.headers(), "Content-Type": "application/json"},
        timeout=10,
    )
    assert_ebay_error(not_json, 400)

    set_faults(sandbox.url, {"error_rate": 1.0})
    assert_ebay_error(client.get("/inventory_item"), 500)
    set_faults(sandbox.url, {"outage": "0-60"})
    assert_ebay_error(client.get("/inventory_item"), 503)
    set_faults(sandbox.url, {"ebay_429_rate": 1.0})
    assert_ebay_error(client.get("/inventory_item"), 429)
    set_faults(sandbox.url, {})
    set_limits(sandbox.url, "ebay", {"daily_call_limit": 0})
    assert_ebay_error(client.get("/inventory_item"), 429)


# ---- BASE -----------------------------------------------------------------------------------

# From base_api_v1_items.md (GET /1/items, default max_image_no=5, image_size=origin).
LIST_ITEM_FIELDS = [
    "item_id",
    "title",
    "detail",
    "price",
    "proper_price",
    "stock",
    "visible",
    "list_order",
    "identifier",
    "img1_origin",
    "img2_origin",
    "img3_origin",
    "img4_origin",
    "img5_origin",
    "modified",
    "variations",
]
# From base_api_v1_items_detail.md, _edit.md and _edit_stock.md: modified before 5 images × 8 sizes.
IMAGE_SIZES = ["origin", "76", "146", "300", "500", "640", "sp_480", "sp_640"]
DETAIL_ITEM_FIELDS = [
    *LIST_ITEM_FIELDS[:9],
    "modified",
    *[f"img{n}_{size}" for n in range(1, 6) for size in IMAGE_SIZES],
    "variations",
]
VARIATION_FIELDS = ["variation_id", "variation", "variation_stock", "variation_identifier"]
TOKEN_FIELDS = ["access_token", "token_type", "expires_in", "refresh_token"]  # oauth docs
ERROR_FIELDS = ["error", "error_description"]
# Every (error, error_description) pair in README.md and the items/oauth docs.
DOCUMENTED_ERRORS = {
    ("access_denied", "POSTで送信してください。"),
    ("invalid_request", "不正なgrant_typeです。"),
    ("invalid_request", "不正なパラメーターです。"),
    ("invalid_request", "client_idもしくはclient_secretがありません。"),
    ("unauthorized_client", "クライアントが見つかりませんでした。"),
    ("invalid_request", "不正なリフレッシュトークンです。"),
    ("server_error", "DB error"),
    ("invalid_request", "アクセストークンが無効です。"),
    ("not_post_method", "POSTで送信してください。"),
    ("bad_item_id", "不正なitem_idです。"),
    ("bad_variation_id", "不正なvariation_idです。"),
    ("validation_error", "バリデーションエラーです。"),
    ("bad_params", "不正なパラメーターです。"),
    ("no_item_id", "item_idは必須です。"),
    ("no_item", "商品が見つかりませんでした。"),
    (
        "hour_api_limit",
        "1時間のAPIの利用上限を超えました。時間が変わってからもう一度アクセスしてください。",
    ),
    (
        "day_api_limit",
        "1日のAPIの利用上限を超えました。日付が変わってからもう一度アクセスしてください。",
    ),
}


def assert_item_shape(item: dict[str, Any], fields: list[str]) -> None:
    assert list(item) == fields
    for name in ("item_id", "price", "stock", "visible", "list_order", "modified"):
        assert type(item[name]) is int, name
    assert item["visible"] in (0, 1)
    assert item["proper_price"] is None or type(item["proper_price"]) is int
    assert item["identifier"] is None or isinstance(item["identifier"], str)
    for variation in item["variations"]:
        assert list(variation) == VARIATION_FIELDS
        assert type(variation["variation_id"]) is int and type(variation["variation_stock"]) is int


def assert_base_error(response: requests.Response, seen: set[tuple[str, str]]) -> None:
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ERROR_FIELDS
    pair = (body["error"], body["error_description"])
    assert pair in DOCUMENTED_ERRORS, pair
    seen.add(pair)


def test_every_base_success_body_carries_exactly_the_documented_fields(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    token = client.token_response()
    assert list(token.json()) == TOKEN_FIELDS
    client.access_token, client.refresh_token = (
        token.json()["access_token"],
        token.json()["refresh_token"],
    )

    listed = client.get("/1/items", limit=3).json()
    assert list(listed) == ["items"]
    for item in listed["items"]:
        assert_item_shape(item, LIST_ITEM_FIELDS)
    sized = client.get("/1/items", limit=1, max_image_no=2, image_size="76,sp_640").json()["items"][
        0
    ]
    images = ["img1_76", "img1_sp_640", "img2_76", "img2_sp_640"]
    assert list(sized) == [*LIST_ITEM_FIELDS[:9], *images, "modified", "variations"]

    item_id = listed["items"][0]["item_id"]
    detail = client.get(f"/1/items/detail/{item_id}").json()
    assert list(detail) == ["item"]
    assert_item_shape(detail["item"], DETAIL_ITEM_FIELDS)
    edited = client.post(
        "/1/items/edit",
        {
            "item_id": item_id,
            "price": 2000,
            "variation_id[0]": "",
            "variation[0]": "黒色",
            "variation_stock[0]": 1,
        },
    ).json()
    assert_item_shape(edited["item"], DETAIL_ITEM_FIELDS)
    assert len(edited["item"]["variations"]) == 1
    stocked = client.post(
        "/1/items/edit_stock", {"item_id": listed["items"][1]["item_id"], "stock": 4}
    ).json()
    assert_item_shape(stocked["item"], DETAIL_ITEM_FIELDS)


def test_every_base_error_body_is_one_the_docs_show(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    seen: set[tuple[str, str]] = set()
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    assert_base_error(requests.get(f"{sandbox.url}/1/oauth/token", timeout=10), seen)
    assert_base_error(client.token_response(grant_type="password"), seen)
    assert_base_error(client.token_response(redirect_uri=None), seen)
    assert_base_error(client.token_response(client_id=None), seen)
    assert_base_error(client.token_response(client_secret="wrong"), seen)
    assert_base_error(client.token_response(refresh_token="wrong"), seen)
    client.refresh()
    item_id = client.get("/1/items", limit=1).json()["items"][0]["item_id"]
    assert_base_error(client.get("/1/items/edit"), seen)
    assert_base_error(client.post("/1/items/edit", {"item_id": 1, "price": 100}), seen)
    assert_base_error(client.post("/1/items/edit", {"item_id": item_id, "price": "x"}), seen)
    assert_base_error(
        client.post(
            "/1/items/edit", {"item_id": item_id, "variation_id[0]": "42", "variation_stock[0]": 1}
        ),
        seen,
    )
    assert_base_error(client.post("/1/items/edit_stock", {"item_id": item_id}), seen)
    assert_base_error(client.get("/1/items/detail"), seen)
    assert_base_error(client.get("/1/items/detail/1"), seen)
    set_limits(sandbox.url, "base", {"hour_limit": 0})
    assert_base_error(client.get("/1/items"), seen)
    set_limits(sandbox.url, "base", {"hour_limit": 5000, "day_limit": 0})
    assert_base_error(client.get("/1/items"), seen)
    set_limits(sandbox.url, "base", {"day_limit": 100_000})
    set_faults(sandbox.url, {"error_rate": 1.0})
    failed = client.get("/1/items")
    assert failed.status_code == 500
    assert_base_error(failed, seen)
    set_faults(sandbox.url, {})
    client.access_token = "nope"
    assert_base_error(client.get("/1/items"), seen)
    assert seen == DOCUMENTED_ERRORS  # every documented error is reachable, and reached
