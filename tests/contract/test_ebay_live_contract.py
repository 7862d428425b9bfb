"""Contract: the bodies issue 13 added to the sandbox's eBay — a SKU's UNPUBLISHED draft offer,
an ENDED listing's offer, the 207 refusing an ended listing and getOffers' 400 for an invalid
SKU — validate strictly against the Sell Inventory OpenAPI document, as every other body
does (tests/contract/test_platform_contract.py)."""

from __future__ import annotations

from typing import Any

from tests.contract.test_platform_contract import assert_ebay_error, assert_valid, response_schema
from tests.sandbox.platform_clients import EbayClient

SMALL = 150  # catalogue ASINs


def _listings(sandbox: Any) -> list[Any]:
    return [x for x in sandbox.state.apis["ebay"].listings.values() if x.api == "inventory"]


def test_draft_and_ended_offers_and_their_refusals_follow_the_openapi_document(start_sandbox):
    sandbox = start_sandbox(n_asins=SMALL, faults="ebay_oos_control_off")
    client = EbayClient(sandbox.url)
    client.refresh()
    listings = _listings(sandbox)

    drafted = next(x for x in listings if x.draft_offer_id)
    offers = client.get("/offer", sku=drafted.sku)
    assert offers.json()["offers"][0]["status"] == "UNPUBLISHED"
    assert_valid(offers.json(), response_schema("/offer", "get", "200"))
    draft = client.get(f"/offer/{drafted.draft_offer_id}")
    assert_valid(draft.json(), response_schema("/offer/{offerId}", "get", "200"))

    ending = next(x for x in listings if x.quantity > 0 and not x.draft_offer_id)
    entry = {
        "sku": ending.sku,
        "shipToLocationAvailability": {"quantity": 0},
        "offers": [{"offerId": ending.offer_id, "availableQuantity": 0}],
    }
    ended = client.bulk_update([entry])
    assert_valid(ended.json(), response_schema("/bulk_update_price_quantity", "post", "200"))
    offer = client.offer_of(ending.sku)
    assert offer["listing"]["listingStatus"] == "ENDED"
    assert_valid(offer, response_schema("/offer/{offerId}", "get", "200"))
    entry["shipToLocationAvailability"] = {"quantity": 2}
    refused = client.bulk_update([entry])
    assert refused.status_code == 207
    assert_valid(refused.json(), response_schema("/bulk_update_price_quantity", "post", "207"))

    assert_ebay_error(client.get("/offer", sku="not a valid sku!"), 400)
