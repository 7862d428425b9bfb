"""The sandbox's consent pages and authorization-code exchange over real HTTP: BASE's
``/1/oauth/authorize`` + ``/1/oauth/token`` and eBay's ``/oauth2/authorize`` +
``/identity/v1/oauth2/token``, as a seller and an app meet them."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.sandbox.server import SandboxServer

SMALL = 60  # catalogue ASINs: the consent pages need shops, not many items
BASE_APP = {
    "response_type": "code",
    "client_id": DEMO_ENV["BASE_CLIENT_ID"],
    "redirect_uri": DEMO_ENV["BASE_REDIRECT_URI"],
    "scope": "read_users read_items write_items",
    "state": "st-base-1",
}
EBAY_SCOPES = (
    "https://api.ebay.com/oauth/api_scope https://api.ebay.com/oauth/api_scope/sell.inventory"
)
EBAY_APP = {
    "client_id": DEMO_ENV["EBAY_CLIENT_ID"],
    "redirect_uri": DEMO_ENV["EBAY_RU_NAME"],
    "response_type": "code",
    "scope": EBAY_SCOPES,
    "state": "st-ebay-1",
}
BAD_CODE = {"error": "invalid_request", "error_description": "不正な認可コードです。"}
EXPIRED_CODE = {
    "error": "invalid_request",
    "error_description": "認可コードの有効期限が切れています。",
}


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def base_allow(url: str, shop: str = "shop1", **params: str) -> requests.Response:
    """The seller opens BASE's consent page for ``shop`` and presses Allow."""
    app = {**BASE_APP, **params}
    page = requests.get(f"{url}/1/oauth/authorize", params={**app, "shop": shop}, timeout=10)
    assert page.status_code == 200 and shop in page.text and "Allow" in page.text, page.text
    return requests.post(
        f"{url}/1/oauth/authorize",
        params=app,
        data={"shop": shop, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )


def base_code(url: str, shop: str = "shop1") -> str:
    answer = base_allow(url, shop)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(DEMO_ENV["BASE_REDIRECT_URI"] + "?")
    assert query(location)["state"] == BASE_APP["state"]
    return query(location)["code"]


def base_exchange(url: str, code: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": DEMO_ENV["BASE_CLIENT_ID"],
        "client_secret": DEMO_ENV["BASE_CLIENT_SECRET"],
        "code": code,
        "redirect_uri": DEMO_ENV["BASE_REDIRECT_URI"],
        **overrides,
    }
    return requests.post(f"{url}/1/oauth/token", data=form, timeout=10)


def ebay_allow(url: str) -> requests.Response:
    page = requests.get(f"{url}/oauth2/authorize", params=EBAY_APP, timeout=10)
    assert page.status_code == 200 and "ebay-main" in page.text, page.text
    return requests.post(
        f"{url}/oauth2/authorize",
        params=EBAY_APP,
        data={"decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )


def ebay_exchange(url: str, code: str, redirect_uri: str | None = None) -> requests.Response:
    pair = f"{DEMO_ENV['EBAY_CLIENT_ID']}:{DEMO_ENV['EBAY_CLIENT_SECRET']}"
    return requests.post(
        f"{url}/identity/v1/oauth2/token",
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or DEMO_ENV["EBAY_RU_NAME"],
        },
        timeout=10,
    )


def ebay_refresh(url: str, refresh_token: str) -> requests.Response:
    pair = f"{DEMO_ENV['EBAY_CLIENT_ID']}:{DEMO_ENV['EBAY_CLIENT_SECRET']}"
    return requests.post(
        f"{url}/identity/v1/oauth2/token",
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=10,
    )


def test_base_code_exchange_gives_tokens_that_open_that_shop(start_sandbox: Any) -> None:
    sandbox = start_sandbox(n_asins=SMALL)
    tokens = base_exchange(sandbox.url, base_code(sandbox.url, "shop2"))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    items = requests.get(
        f"{sandbox.url}/1/items",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert items.status_code == 200
    assert all(str(i["item_id"]).startswith("72") for i in items.json()["items"])  # shop2's
    refreshed = base_exchange(
        sandbox.url, "", grant_type="refresh_token", refresh_token=body["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text  # the issued refresh token rotates
    calls = sandbox.ledger_stats()["calls"]
    authorize = [c for c in calls if c["operation"] == "oauth/authorize"]
    assert [c["status"] for c in authorize] == [200, 302]
    assert authorize[-1]["account"] == "shop2"


def test_base_codes_are_single_use_and_short_lived(start_sandbox: Any) -> None:
    sandbox = start_sandbox(n_asins=SMALL)
    code = base_code(sandbox.url)
    assert base_exchange(sandbox.url, code).status_code == 200
    reused = base_exchange(sandbox.url, code)
    assert (reused.status_code, reused.json()) == (400, BAD_CODE)
    assert base_exchange(sandbox.url, "0" * 32).json() == BAD_CODE
    late = base_code(sandbox.url)
    sandbox.clock.advance(601)  # BASE_CODE_LIFETIME has passed
    expired = base_exchange(sandbox.url, late)
    assert (expired.status_code, expired.json()) == (400, EXPIRED_CODE)
    other_redirect = base_exchange(
        sandbox.url, base_code(sandbox.url), redirect_uri="http://127.0.0.1:9/elsewhere"
    )
    assert other_redirect.json()["error_description"] == "不正なパラメーターです。"
    bad_client = base_exchange(sandbox.url, base_code(sandbox.url), client_secret="wrong")
    assert bad_client.json()["error"] == "unauthorized_client"


def test_base_consent_checks_the_app_before_redirecting(start_sandbox: Any) -> None:
    sandbox = start_sandbox(n_asins=SMALL)
    url = f"{sandbox.url}/1/oauth/authorize"
    for wrong in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}):
        page = requests.get(url, params={**BASE_APP, **wrong}, allow_redirects=False, timeout=10)
        assert page.status_code == 400 and "Location" not in page.headers
    scope = requests.get(
        url, params={**BASE_APP, "scope": "everything"}, allow_redirects=False, timeout=10
    )
    assert scope.status_code == 302
    assert query(scope.headers["Location"]) == {"error": "invalid_scope", "state": "st-base-1"}
    denied = requests.post(
        url, params=BASE_APP, data={"shop": "shop1", "decision": "deny"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert query(denied.headers["Location"]) == {"error": "access_denied", "state": "st-base-1"}
    chooser = requests.get(url, params=BASE_APP, timeout=10)
    assert "<select" in chooser.text and "shop1" in chooser.text and "shop2" in chooser.text


def test_ebay_code_comes_url_encoded_to_the_ru_names_accept_url(start_sandbox: Any) -> None:
    sandbox = start_sandbox(n_asins=SMALL)
    registered = requests.post(
        f"{sandbox.url}/_sandbox/consent/apps",
        json={"ebay_accept_url": "http://127.0.0.1:9/accepted"},
        timeout=10,
    ).json()
    assert registered["ebay_ru_name"] == DEMO_ENV["EBAY_RU_NAME"]
    answer = ebay_allow(sandbox.url)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("http://127.0.0.1:9/accepted?state=st-ebay-1&code=v%5E1.1%23")
    code = query(location)["code"]
    assert query(location)["expires_in"] == "299" and "^" in code and "#" in code
    tokens = ebay_exchange(sandbox.url, code)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "User Access Token" and body["expires_in"] == 7200
    assert body["refresh_token_expires_in"] == 47_304_000  # about 18 months
    items = requests.get(
        f"{sandbox.url}/sell/inventory/v1/inventory_item",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert items.status_code == 200
    assert ebay_refresh(sandbox.url, body["refresh_token"]).status_code == 200
    reused = ebay_exchange(sandbox.url, code)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_ebay_refuses_a_wrong_ru_name_an_expired_code_and_a_decline(start_sandbox: Any) -> None:
    sandbox = start_sandbox(n_asins=SMALL)
    page = requests.get(
        f"{sandbox.url}/oauth2/authorize",
        params={**EBAY_APP, "redirect_uri": "https://example.com/callback"},
        allow_redirects=False,
        timeout=10,
    )
    assert page.status_code == 400 and "Location" not in page.headers
    code = query(ebay_allow(sandbox.url).headers["Location"])["code"]
    assert ebay_exchange(sandbox.url, code, redirect_uri="another-RuName").status_code == 400
    late = query(ebay_allow(sandbox.url).headers["Location"])["code"]
    sandbox.clock.advance(300)
    assert ebay_exchange(sandbox.url, late).json()["error"] == "invalid_grant"
    declined = requests.post(
        f"{sandbox.url}/oauth2/authorize", params=EBAY_APP, data={"decision": "deny"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert query(declined.headers["Location"])["error"] == "access_denied"


def test_consent_tokens_and_open_codes_survive_a_restart(tmp_path: Any) -> None:
    world = tmp_path / "world.json"
    with SandboxServer(time_scale=100, n_asins=SMALL, persist_path=world) as first:
        requests.post(
            f"{first.url}/_sandbox/consent/apps",
            json={"base_redirect_uri": "http://127.0.0.1:9/cb"},
            timeout=10,
        )
        code = query(ebay_allow(first.url).headers["Location"])["code"]
        refresh = ebay_exchange(first.url, code).json()["refresh_token"]
        open_code = query(ebay_allow(first.url).headers["Location"])["code"]
    with SandboxServer(time_scale=100, n_asins=SMALL, persist_path=world) as second:
        assert ebay_refresh(second.url, refresh).status_code == 200
        assert ebay_exchange(second.url, open_code).status_code == 200
        apps = requests.get(f"{second.url}/_sandbox/consent/apps", timeout=10).json()
        assert apps["base_redirect_uri"] == "http://127.0.0.1:9/cb"
        revoked = requests.post(
            f"{second.url}/_sandbox/consent/revoke",
            json={"platform": "ebay", "refresh_token": refresh},
            timeout=10,
        )
        assert revoked.json() == {"revoked": True}
        assert ebay_refresh(second.url, refresh).json()["error"] == "invalid_grant"
