"""Live BASE behaviour the sandbox models: server_error on the token endpoint (in BASE's
documented HTTP 400 envelope), GET /1/users/me, and items with variations."""

from __future__ import annotations

from typing import Any

import requests

from pipeline.sandbox.credentials import DEMO_ENV
from tests.sandbox.platform_clients import BaseClient, set_faults, stats

SMALL = 150
SERVER_ERROR_BODY = {"error": "server_error", "error_description": "DB error"}


def test_the_token_endpoint_answers_server_error_and_keeps_the_refresh_token(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    set_faults(sandbox.url, {"base_token_server_error": 1.0})

    failed = client.token_response()

    assert (failed.status_code, failed.json()) == (400, SERVER_ERROR_BODY)
    set_faults(sandbox.url, {})
    assert client.refresh()["access_token"]  # the same refresh token still works
    outcomes = [c["outcome"] for c in stats(sandbox.url)["calls"]]
    assert outcomes == ["fault:server_error", "ok"]


def test_server_error_by_call_number_hits_only_those_token_requests(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    set_faults(sandbox.url, {"base_token_server_error_calls": "0-2"})

    answers = [client.token_response().status_code for _ in range(2)]
    client.refresh()  # the third request

    assert answers == [400, 400]


def test_users_me_answers_the_shop_as_the_docs_show(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP2_REFRESH_TOKEN"])
    anonymous = client.get("/1/users/me")
    client.refresh()

    answer = client.get("/1/users/me")

    assert anonymous.status_code == 400
    assert anonymous.json()["error"] == "invalid_request"
    assert answer.status_code == 200
    user: dict[str, Any] = answer.json()["user"]
    assert list(user)[:4] == ["shop_id", "shop_name", "shop_introduction", "shop_url"]
    assert isinstance(user["shop_id"], str) and "shop2" in user["shop_id"]
    assert "mail_address" not in user  # needs the read_users_mail scope
    usage = requests.get(f"{sandbox.url}/_sandbox/base/limits", timeout=5).json()
    assert usage["shop2"]["hour_calls"] == 1  # counted like every authenticated call


def test_a_few_demo_items_have_variations_whose_sum_is_their_stock(start_sandbox):
    sandbox = start_sandbox(n_asins=300)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP2_REFRESH_TOKEN"])
    client.refresh()

    items, _ = client.all_items()

    varied = [item for item in items if item["variations"]]
    assert 0 < len(varied) <= len(items) // 10  # a few, seeded
    for item in varied:
        assert 2 <= len(item["variations"]) <= 3
        assert item["stock"] == sum(v["variation_stock"] for v in item["variations"])
        assert {"variation_id", "variation", "variation_stock", "variation_identifier"} == set(
            item["variations"][0]
        )


def test_edit_with_stock_on_an_item_with_variations_keeps_their_sum(start_sandbox):
    sandbox = start_sandbox(n_asins=300)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP2_REFRESH_TOKEN"])
    client.refresh()
    items, _ = client.all_items()
    item = next(i for i in items if i["variations"])
    total = sum(v["variation_stock"] for v in item["variations"])

    edited = client.post(
        "/1/items/edit", {"item_id": item["item_id"], "price": item["price"] + 10, "stock": 99}
    )

    assert edited.status_code == 200
    answer = edited.json()["item"]
    assert (answer["price"], answer["stock"]) == (item["price"] + 10, total)  # stock ignored
    change = stats(sandbox.url)["changes"][-1]
    assert change["changes"] == {"price": item["price"] + 10, "stock": total}
