"""Small ``requests`` clients for the sandbox's BASE and eBay APIs, as the tests drive them.

Each speaks the real wire format (form posts, Basic auth, JSON, Trading XML) over HTTP; none
knows anything about the sandbox's insides. Shared by tests/sandbox/test_base*.py,
test_ebay*.py and tests/contract/test_platform_contract.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import requests

from pipeline.sandbox.credentials import DEMO_ENV

TRADING_NS = "{urn:ebay:apis:eBLBaseComponents}"


class BaseClient:
    """One BASE shop: refreshes its token (storing the rotated refresh token) and calls."""

    def __init__(self, url: str, refresh_token: str) -> None:
        self.url = url
        self.refresh_token = refresh_token
        self.access_token = ""
        self.session = requests.Session()

    def token_response(
        self, refresh_token: str | None = None, **overrides: Any
    ) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": DEMO_ENV["BASE_CLIENT_ID"],
            "client_secret": DEMO_ENV["BASE_CLIENT_SECRET"],
            "refresh_token": refresh_token or self.refresh_token,
            "redirect_uri": DEMO_ENV["BASE_REDIRECT_URI"],
        }
        form.update(overrides)
        form = {k: v for k, v in form.items() if v is not None}
        return self.session.post(f"{self.url}/1/oauth/token", data=form, timeout=10)

    def refresh(self) -> dict[str, Any]:
        response = self.token_response()
        assert response.status_code == 200, response.text
        body = response.json()
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]
        return body

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(
            f"{self.url}{path}", params=params, headers=self.headers(), timeout=10
        )

    def post(self, path: str, data: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.url}{path}", data=data, headers=self.headers(), timeout=10)

    def all_items(self, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Every item, paging until a short page (BASE sends no total); and the calls made."""
        items: list[dict[str, Any]] = []
        calls = 0
        while True:
            response = self.get("/1/items", limit=limit, offset=len(items))
            calls += 1
            assert response.status_code == 200, response.text
            page = response.json()["items"]
            items.extend(page)
            if len(page) < limit:
                return items, calls


class EbayClient:
    """The eBay account: a user token from the refresh token, Inventory REST and Trading XML."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.access_token = ""
        self.session = requests.Session()

    def token_response(
        self,
        refresh_token: str | None = None,
        client: tuple[str, str] | None = None,
        grant_type: str = "refresh_token",
    ) -> requests.Response:
        return self.session.post(
            f"{self.url}/identity/v1/oauth2/token",
            data={
                "grant_type": grant_type,
                "refresh_token": refresh_token or DEMO_ENV["EBAY_REFRESH_TOKEN"],
                "scope": "https://api.ebay.com/oauth/api_scope/sell.inventory",
            },
            auth=client or (DEMO_ENV["EBAY_CLIENT_ID"], DEMO_ENV["EBAY_CLIENT_SECRET"]),
            timeout=10,
        )

    def refresh(self) -> dict[str, Any]:
        response = self.token_response()
        assert response.status_code == 200, response.text
        body = response.json()
        self.access_token = body["access_token"]
        return body

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(
            f"{self.url}/sell/inventory/v1{path}", params=params, headers=self.headers(), timeout=10
        )

    def bulk_update(self, requests_: list[dict[str, Any]]) -> requests.Response:
        return self.session.post(
            f"{self.url}/sell/inventory/v1/bulk_update_price_quantity",
            json={"requests": requests_},
            headers=self.headers(),
            timeout=10,
        )

    def all_inventory_items(self, limit: int = 200) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every inventory item by following ``next``; and the first page's body."""
        response = self.get("/inventory_item", limit=limit, offset=0)
        assert response.status_code == 200, response.text
        first = body = response.json()
        items = list(body["inventoryItems"])
        while "next" in body:
            response = self.session.get(body["next"], headers=self.headers(), timeout=10)
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["inventoryItems"])
        return items, first

    def offer_of(self, sku: str) -> dict[str, Any]:
        """The SKU's published offer (a SKU may have an unpublished draft besides)."""
        response = self.get("/offer", sku=sku)
        assert response.status_code == 200, response.text
        return next(o for o in response.json()["offers"] if o["status"] == "PUBLISHED")

    def revise_inventory_status(
        self, statuses: list[dict[str, str]], token: str | None = None
    ) -> ET.Element:
        """``ReviseInventoryStatus`` with up to 4 statuses ({"ItemID"|"SKU", "StartPrice", "Quantity"})."""
        nodes = "".join(
            "<InventoryStatus>"
            + "".join(f"<{k}>{v}</{k}>" for k, v in s.items())
            + "</InventoryStatus>"
            for s in statuses
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<ReviseInventoryStatusRequest xmlns="urn:ebay:apis:eBLBaseComponents">'
            f"{nodes}</ReviseInventoryStatusRequest>"
        )
        response = self.trading("ReviseInventoryStatus", body, token)
        assert response.status_code == 200, response.text
        return ET.fromstring(response.content)

    def trading(self, call: str, body: str, token: str | None = None) -> requests.Response:
        return self.session.post(
            f"{self.url}/ws/api.dll",
            data=body.encode("utf-8"),
            headers={
                "X-EBAY-API-CALL-NAME": call,
                "X-EBAY-API-SITEID": "0",
                "X-EBAY-API-COMPATIBILITY-LEVEL": "1349",
                "X-EBAY-API-IAF-TOKEN": self.access_token if token is None else token,
                "Content-Type": "text/xml",
            },
            timeout=10,
        )


def trading_text(root: ET.Element, path: str) -> list[str]:
    """Texts of ``path`` (slash-separated local names) under a Trading response root."""
    xpath = "/".join(f"{TRADING_NS}{part}" for part in path.split("/"))
    return [node.text or "" for node in root.findall(xpath)]


def stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_sandbox/stats", timeout=10)
    assert response.status_code == 200
    return response.json()


def set_faults(url: str, knobs: dict[str, Any]) -> None:
    response = requests.post(f"{url}/_sandbox/faults", json=knobs, timeout=10)
    assert response.status_code == 200, response.text


def set_limits(url: str, platform: str, knobs: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{url}/_sandbox/{platform}/limits", json=knobs, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def advance(
    url: str, *, seconds: float | None = None, sandbox_seconds: float | None = None
) -> dict[str, Any]:
    """Move the sandbox's clock forward (``POST /_sandbox/advance``): ``seconds`` of the
    clock (token lifetimes, fault windows) or ``sandbox_seconds`` (the BASE hour, eBay day)."""
    body = {"seconds": seconds} if sandbox_seconds is None else {"sandbox_seconds": sandbox_seconds}
    response = requests.post(f"{url}/_sandbox/advance", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_window(
    url: str, platform: str, key: str, need: float, account: str | None = None
) -> None:
    """Move the sandbox clock to the next sandbox hour/day when fewer than ``need`` clock
    seconds are left in this one, so a test's burst of calls lands inside one window.
    No wall time passes: the clock is advanced, not slept on."""
    usage = requests.get(f"{url}/_sandbox/{platform}/limits", timeout=10).json()
    left = (usage[account] if account else usage)[key]
    if left < need:
        advance(url, seconds=left + 1e-3)
