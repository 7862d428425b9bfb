"""Contract: the sandbox's ActiveButTooSoonForProcessing bodies validate against the official
Product Pricing v0 model, with no property the model does not declare."""

from __future__ import annotations

import requests

from pipeline.sandbox.spapi import MARKETPLACE_JP
from tests.contract.test_spapi_contract import _wait_get, _wait_post, assert_conforms
from tests.sandbox.spapi_clients import BATCH_PATH, access_token, batch_body, set_faults


def test_too_soon_bodies_validate(start_sandbox) -> None:
    server = start_sandbox(time_scale=10_000.0)
    catalogue = server.state.apis["catalogue"]
    asins = [a for a in catalogue.asins if catalogue.offers(a)][:3]
    set_faults(server, {"too_soon_asins": asins[:2]})
    params = {"MarketplaceId": MARKETPLACE_JP, "ItemCondition": "New"}
    with requests.Session() as session:
        session.headers["x-amz-access-token"] = access_token(server)
        batch = _wait_post(session, server.url + BATCH_PATH, json=batch_body(asins)).json()
        single = _wait_get(
            session, f"{server.url}/products/pricing/v0/items/{asins[0]}/offers", params=params
        ).json()

    assert_conforms(batch, "GetItemOffersBatchResponse")
    assert_conforms(single, "GetOffersResponse")
    kinds = [item["body"]["payload"]["status"] for item in batch["responses"]]
    assert kinds == ["ActiveButTooSoonForProcessing"] * 2 + ["Success"]
    assert single["payload"]["status"] == "ActiveButTooSoonForProcessing"
