"""Clients the SP-API sandbox tests share: the real python-amazon-sp-api ``Products`` client
pointed at a sandbox as design §4 describes, and small raw-HTTP builders for wire checks."""

from __future__ import annotations

import types
from typing import Any

import requests
import sp_api.auth.access_token_client as token_client
from sp_api.api import Products
from sp_api.auth import AccessTokenClient

from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.sandbox.server import SandboxServer
from pipeline.sandbox.spapi import MARKETPLACE_JP

BATCH_PATH = "/batches/products/pricing/v0/itemOffers"
COMPETITIVE_PATH = "/products/pricing/v0/competitivePrice"


def demo_credentials(**overrides: str) -> dict[str, str]:
    credentials = {
        "refresh_token": DEMO_ENV["SP_API_REFRESH_TOKEN"],
        "lwa_app_id": DEMO_ENV["LWA_APP_ID"],
        "lwa_client_secret": DEMO_ENV["LWA_CLIENT_SECRET"],
    }
    credentials.update(overrides)
    return credentials


def products_client(server: SandboxServer, **credential_overrides: str) -> Products:
    """The real library client on the sandbox; its process-wide token cache is cleared so
    the first call fetches a token from this server."""
    token_client.cache.clear()
    lwa_class = type(
        "SandboxLwa",
        (AccessTokenClient,),
        {"scheme": "http://", "host": server.url.removeprefix("http://")},
    )
    marketplace = types.SimpleNamespace(
        endpoint=server.url, marketplace_id=MARKETPLACE_JP, region="us-west-2"
    )
    return Products(
        marketplace=marketplace,
        credentials=demo_credentials(**credential_overrides),
        auth_token_client_class=lwa_class,
    )


def access_token(server: SandboxServer) -> str:
    """A fresh access token from the sandbox's LWA endpoint (form body, as the library sends)."""
    response = requests.post(
        server.url + "/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": DEMO_ENV["SP_API_REFRESH_TOKEN"],
            "client_id": DEMO_ENV["LWA_APP_ID"],
            "client_secret": DEMO_ENV["LWA_CLIENT_SECRET"],
        },
        timeout=5,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def offer_request(asin: str, **fields: Any) -> dict[str, Any]:
    """One getItemOffersBatch request item, as the official model spells it."""
    item: dict[str, Any] = {
        "uri": f"/products/pricing/v0/items/{asin}/offers",
        "method": "GET",
        "MarketplaceId": MARKETPLACE_JP,
        "ItemCondition": "New",
    }
    item.update(fields)
    return item


def batch_body(asins: list[str], **fields: Any) -> dict[str, Any]:
    return {"requests": [offer_request(asin, **fields) for asin in asins]}


def competitive_params(asins: list[str], **params: str) -> dict[str, str]:
    query = {"Asins": ",".join(asins), "ItemType": "Asin", "MarketplaceId": MARKETPLACE_JP}
    query.update(params)
    return query


def stats(server: SandboxServer, *, calls: bool = True) -> dict[str, Any]:
    response = requests.get(
        server.url + "/_sandbox/stats", params={"calls": "1" if calls else "0"}, timeout=5
    )
    response.raise_for_status()
    return dict(response.json())


def set_faults(server: SandboxServer, knobs: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(knobs, str):
        response = requests.post(server.url + "/_sandbox/faults", data=knobs, timeout=5)
    else:
        response = requests.post(server.url + "/_sandbox/faults", json=knobs, timeout=5)
    response.raise_for_status()
    return dict(response.json())


def advance(server: SandboxServer, seconds: float) -> dict[str, Any]:
    """Move the sandbox's clock ``seconds`` forward over HTTP (``POST /_sandbox/advance``)."""
    response = requests.post(server.url + "/_sandbox/advance", json={"seconds": seconds}, timeout=5)
    response.raise_for_status()
    return dict(response.json())
