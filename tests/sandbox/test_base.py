"""The sandbox's BASE API over real HTTP: tokens, items, edits, limits and faults."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pipeline.sandbox.credentials import DEMO_ENV
from tests.sandbox.platform_clients import (
    BaseClient,
    advance,
    set_faults,
    set_limits,
    stats,
    wait_for_window,
)

SMALL = 150  # catalogue ASINs: enough for several pages per shop, fast to build

HOUR_LIMIT_BODY = {
    "error": "hour_api_limit",
    "error_description": "1時間のAPIの利用上限を超えました。時間が変わってからもう一度アクセスしてください。",
}
DAY_LIMIT_BODY = {
    "error": "day_api_limit",
    "error_description": "1日のAPIの利用上限を超えました。日付が変わってからもう一度アクセスしてください。",
}
INVALID_TOKEN_BODY = {
    "error": "invalid_request",
    "error_description": "アクセストークンが無効です。",
}
VALIDATION_BODY = {"error": "validation_error", "error_description": "バリデーションエラーです。"}
BAD_ITEM_BODY = {"error": "bad_item_id", "error_description": "不正なitem_idです。"}


def shop(sandbox: Any, account: str = "shop1") -> BaseClient:
    client = BaseClient(sandbox.url, DEMO_ENV[f"BASE_{account.upper()}_REFRESH_TOKEN"])
    client.refresh()
    return client


def test_a_client_refreshes_reads_every_item_and_edits_with_an_exact_ledger(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    token = client.refresh()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600

    items, pages = client.all_items(limit=50)
    expected = sandbox.state.apis["catalogue"].demo_listings()["shop1"]
    assert [item["identifier"] for item in items] == expected  # the ASIN is the 商品コード
    assert pages == len(expected) // 50 + 1
    assert all(isinstance(item["price"], int) and item["price"] > 0 for item in items)

    first, second = items[0], items[1]
    detail = client.get(f"/1/items/detail/{first['item_id']}")
    assert detail.status_code == 200 and detail.json()["item"]["price"] == first["price"]

    edited = client.post(
        "/1/items/edit", {"item_id": first["item_id"], "price": first["price"] + 100, "stock": 7}
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["item"]["price"], edited.json()["item"]["stock"]) == (
        first["price"] + 100,
        7,
    )
    stocked = client.post("/1/items/edit_stock", {"item_id": second["item_id"], "stock": 0})
    assert stocked.status_code == 200 and stocked.json()["item"]["stock"] == 0
    again = client.get(f"/1/items/detail/{first['item_id']}").json()["item"]
    assert (again["price"], again["stock"]) == (first["price"] + 100, 7)

    ledger = stats(sandbox.url)
    per_op = ledger["per_operation"]
    assert per_op["base.oauth/token"]["calls"] == 1
    assert per_op["base.items"]["calls"] == pages
    assert per_op["base.items"]["items"] == len(expected)
    assert per_op["base.items/detail"]["calls"] == 2
    assert per_op["base.items/edit"]["by_status"] == {"200": 1}
    assert per_op["base.items/edit_stock"]["by_status"] == {"200": 1}
    changes = [(c["account"], c["key"], c["changes"], c["via"]) for c in ledger["changes"]]
    assert changes == [
        ("shop1", str(first["item_id"]), {"price": first["price"] + 100, "stock": 7}, "items/edit"),
        ("shop1", str(second["item_id"]), {"stock": 0}, "items/edit_stock"),
    ]


def test_shops_are_separate_and_an_item_of_another_shop_is_a_bad_item_id(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    one, two = shop(sandbox, "shop1"), shop(sandbox, "shop2")
    first_of_two = two.get("/1/items", limit=1).json()["items"][0]
    response = one.post("/1/items/edit", {"item_id": first_of_two["item_id"], "price": 1000})
    assert (response.status_code, response.json()) == (400, BAD_ITEM_BODY)
    assert stats(sandbox.url)["total_changes"] == 0


def test_the_refresh_token_rotates_and_the_old_one_stops_working(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = BaseClient(sandbox.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    old = client.refresh_token
    body = client.refresh()
    assert body["refresh_token"] != old

    reused = client.token_response(refresh_token=old)
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_request",
        "error_description": "不正なリフレッシュトークンです。",
    }
    # Client credentials by HTTP Basic work as well as form fields; the new token rotates again.
    basic = requests.post(
        f"{sandbox.url}/1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": client.refresh_token,
            "redirect_uri": DEMO_ENV["BASE_REDIRECT_URI"],
        },
        auth=(DEMO_ENV["BASE_CLIENT_ID"], DEMO_ENV["BASE_CLIENT_SECRET"]),
        timeout=10,
    )
    assert basic.status_code == 200, basic.text
    client.refresh_token = basic.json()["refresh_token"]

    no_redirect = client.token_response(redirect_uri=None)
    assert no_redirect.json() == {
        "error": "invalid_request",
        "error_description": "不正なパラメーターです。",
    }
    wrong_client = client.token_response(client_secret="nope")
    assert (wrong_client.status_code, wrong_client.json()["error"]) == (400, "unauthorized_client")
    no_client = client.token_response(client_id=None)
    assert no_client.json()["error_description"] == "client_idもしくはclient_secretがありません。"
    bad_grant = client.token_response(grant_type="password")
    assert bad_grant.json()["error_description"] == "不正なgrant_typeです。"
    # The failed attempts did not burn the current refresh token.
    assert client.token_response().status_code == 200


def test_an_expired_or_unknown_access_token_is_invalid_request(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL, token_lifetime=60.0)
    client = shop(sandbox)
    assert client.get("/1/items", limit=1).status_code == 200
    advance(sandbox.url, seconds=59.0)  # clock seconds: still inside the token's life
    assert client.get("/1/items", limit=1).status_code == 200
    advance(sandbox.url, seconds=1.0)  # its 60 s are up
    expired = client.get("/1/items", limit=1)
    assert (expired.status_code, expired.json()) == (400, INVALID_TOKEN_BODY)
    client.refresh()
    assert client.get("/1/items", limit=1).status_code == 200
    client.access_token = "not-a-token"
    assert client.get("/1/items", limit=1).json() == INVALID_TOKEN_BODY
    outcomes = stats(sandbox.url)["per_operation"]["base.items"]["by_outcome"]
    assert outcomes == {"ok": 3, "expired_token": 1, "unauthorized": 1}


def test_the_expired_tokens_fault_expires_every_access_token(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL, faults="expired_tokens")
    client = shop(sandbox)
    assert client.get("/1/items", limit=1).json() == INVALID_TOKEN_BODY


@pytest.mark.parametrize(
    "field_values",
    [
        {"price": "1280.0"},
        {"price": "-5"},
        {"price": "0"},
        {"price": "abc"},
        {"price": "10000000"},
        {"stock": "-1"},
        {"stock": "1.5"},
        {"visible": "2"},
        {"title": "絵文字😀"},
        {"price": "1000", "stock": "x"},  # one bad field rejects the whole edit
    ],
)
def test_invalid_values_are_a_validation_error_and_change_nothing(start_sandbox, field_values):
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    item = client.get("/1/items", limit=1).json()["items"][0]
    response = client.post("/1/items/edit", {"item_id": item["item_id"], **field_values})
    assert (response.status_code, response.json()) == (400, VALIDATION_BODY)
    after = client.get(f"/1/items/detail/{item['item_id']}").json()["item"]
    assert (after["price"], after["stock"], after["title"]) == (
        item["price"],
        item["stock"],
        item["title"],
    )
    assert stats(sandbox.url)["total_changes"] == 0


def test_deleted_items_answer_bad_item_id_whether_deleted_for_real_or_by_fault(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    items, _ = client.all_items()
    gone_by_fault, gone_for_real = items[0]["item_id"], items[1]["item_id"]
    set_faults(sandbox.url, {"bad_item_ids": [gone_by_fault]})
    deleted = client.post("/1/items/delete", {"item_id": gone_for_real})
    assert deleted.status_code == 200

    for item_id in (gone_by_fault, gone_for_real):
        edit = client.post("/1/items/edit", {"item_id": item_id, "price": 1000})
        assert (edit.status_code, edit.json()) == (400, BAD_ITEM_BODY)
        stock = client.post("/1/items/edit_stock", {"item_id": item_id, "stock": 1})
        assert stock.json() == BAD_ITEM_BODY
        detail = client.get(f"/1/items/detail/{item_id}")
        assert detail.json() == {
            "error": "no_item",
            "error_description": "商品が見つかりませんでした。",
        }
    remaining, _ = client.all_items()
    assert len(remaining) == len(items) - 2
    assert {gone_by_fault, gone_for_real}.isdisjoint(i["item_id"] for i in remaining)
    assert stats(sandbox.url)["total_changes"] == 0


def test_get_on_an_edit_endpoint_is_not_post_method_and_bad_list_params_are_refused(
    start_sandbox,
):
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    response = client.get("/1/items/edit", item_id=1)
    assert response.json() == {
        "error": "not_post_method",
        "error_description": "POSTで送信してください。",
    }
    for params in ({"limit": 101}, {"limit": 0}, {"order": "price"}, {"sort": "up"}):
        bad = client.get("/1/items", **params)
        assert (bad.status_code, bad.json()["error"]) == (400, "bad_params")
    desc = client.get("/1/items", limit=5, order="list_order", sort="desc").json()["items"]
    assert [i["list_order"] for i in desc] == sorted((i["list_order"] for i in desc), reverse=True)


def test_variation_stock_sums_into_the_item_stock(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    item = client.get("/1/items", limit=1).json()["items"][0]
    added = client.post(
        "/1/items/edit",
        {
            "item_id": item["item_id"],
            "variation_id[0]": "",
            "variation[0]": "黒色",
            "variation_stock[0]": "2",
            "variation_id[1]": "",
            "variation[1]": "白色",
            "variation_stock[1]": "3",
            "stock": "99",  # ignored: with variations the stock is their sum
        },
    ).json()["item"]
    assert added["stock"] == 5
    black = next(v for v in added["variations"] if v["variation"] == "黒色")
    stocked = client.post(
        "/1/items/edit_stock",
        {
            "item_id": item["item_id"],
            "variation_id": black["variation_id"],
            "variation_stock": "10",
        },
    ).json()["item"]
    assert stocked["stock"] == 13
    unknown = client.post(
        "/1/items/edit",
        {"item_id": item["item_id"], "variation_id[0]": "999999", "variation_stock[0]": "1"},
    )
    assert unknown.json() == {
        "error": "bad_variation_id",
        "error_description": "不正なvariation_idです。",
    }
    assert [c["changes"] for c in stats(sandbox.url)["changes"]] == [{"stock": 5}, {"stock": 13}]


def test_hour_api_limit_at_the_limit_then_reset_on_the_sandbox_hour(start_sandbox):
    # time scale 100: a sandbox hour lasts 36 clock seconds, far more than the calls take
    sandbox = start_sandbox(n_asins=SMALL)
    one, two = shop(sandbox, "shop1"), shop(sandbox, "shop2")
    set_limits(sandbox.url, "base", {"hour_limit": 20})
    wait_for_window(sandbox.url, "base", "seconds_to_next_hour", 10.0, account="shop1")
    for _ in range(20):
        assert one.get("/1/items", limit=1).status_code == 200
    over = one.get("/1/items", limit=1)
    assert (over.status_code, over.json()) == (400, HOUR_LIMIT_BODY)
    assert one.post("/1/items/edit", {"item_id": 1, "price": 1}).json() == HOUR_LIMIT_BODY
    assert two.get("/1/items", limit=1).status_code == 200  # the limit is per shop
    usage = requests.get(f"{sandbox.url}/_sandbox/base/limits", timeout=10).json()["shop1"]
    assert usage["hour_calls"] == 20
    assert one.get("/1/items", limit=1).status_code == 400  # still this hour
    advance(sandbox.url, seconds=usage["seconds_to_next_hour"] / 2)
    assert one.get("/1/items", limit=1).status_code == 400  # half-way: still this hour
    advance(sandbox.url, sandbox_seconds=1800.0)  # past the hour's end
    assert one.get("/1/items", limit=1).status_code == 200
    outcomes = stats(sandbox.url)["per_operation"]["base.items"]["by_outcome"]
    assert outcomes == {"ok": 22, "throttled": 3}


def test_day_api_limit_outlasts_the_hour(start_sandbox):
    # time scale 100: an hour is 36 s and a day 864 s of the sandbox clock
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    set_limits(sandbox.url, "base", {"hour_limit": 10, "day_limit": 15})
    wait_for_window(sandbox.url, "base", "seconds_to_next_day", 3 * 36.0, account="shop1")
    wait_for_window(sandbox.url, "base", "seconds_to_next_hour", 10.0, account="shop1")
    for _ in range(10):
        assert client.get("/1/items", limit=1).status_code == 200
    assert client.get("/1/items", limit=1).json() == HOUR_LIMIT_BODY
    advance(sandbox.url, sandbox_seconds=3600.0)  # the next hour, the same day
    for _ in range(5):
        assert client.get("/1/items", limit=1).status_code == 200
    assert client.get("/1/items", limit=1).json() == DAY_LIMIT_BODY
    advance(sandbox.url, sandbox_seconds=3600.0)
    blocked = client.get("/1/items", limit=1)
    assert (blocked.status_code, blocked.json()) == (400, DAY_LIMIT_BODY)


@pytest.mark.parametrize(
    ("faults", "status", "content_type", "outcome"),
    [
        ({"outage": "0-60"}, 503, "application/json", "fault:outage"),
        ({"outage": "0-60", "outage_html": True}, 503, "text/html", "fault:outage"),
        ({"html_rate": 1.0}, 503, "text/html", "fault:html"),
        ({"error_rate": 1.0}, 500, "application/json", "fault:error"),
        ({"throttle_storm": "0-60"}, 400, "application/json", "fault:throttle_storm"),
    ],
)
def test_infrastructure_faults_answer_instead_of_base(
    start_sandbox, faults, status, content_type, outcome
):
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    set_faults(sandbox.url, faults)
    response = client.get("/1/items", limit=1)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    if outcome == "fault:throttle_storm":
        assert response.json() == HOUR_LIMIT_BODY
    assert stats(sandbox.url)["per_operation"]["base.items"]["by_outcome"] == {outcome: 1}


def test_malformed_fault_cuts_the_json_body(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL)
    client = shop(sandbox)
    set_faults(sandbox.url, {"malformed_rate": 1.0})
    response = client.get("/1/items", limit=3)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_the_world_survives_a_dump_and_load(start_sandbox, tmp_path):
    path = tmp_path / "world.json"
    first = start_sandbox(n_asins=SMALL, persist_path=path)
    client = shop(first)
    item = client.get("/1/items", limit=1).json()["items"][0]
    client.post("/1/items/edit", {"item_id": item["item_id"], "price": 4321})
    rotated = client.refresh_token
    first.stop()

    second = start_sandbox(n_asins=SMALL, persist_path=path)
    again = BaseClient(second.url, rotated)
    again.refresh()  # the rotated refresh token survived; the demo one did not
    assert again.get(f"/1/items/detail/{item['item_id']}").json()["item"]["price"] == 4321
    stale = BaseClient(second.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"]).token_response()
    assert stale.json()["error_description"] == "不正なリフレッシュトークンです。"
