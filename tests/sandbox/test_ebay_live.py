"""The sandbox's eBay is no kinder than live eBay (issue 13): out-of-stock control and ended
listings, SKU-only Trading revisions, Trading's PartialFailure and errors that name no item,
expired IAF tokens, unpublished offers and invalid SKUs — over real HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import requests

from tests.sandbox.platform_clients import (
    EbayClient,
    advance,
    set_faults,
    set_limits,
    stats,
    trading_text,
)

SMALL = 150  # catalogue ASINs
NS = "urn:ebay:apis:eBLBaseComponents"


def setup(start_sandbox: Any, **kwargs: Any) -> tuple[Any, EbayClient, list[Any], list[Any]]:
    """A sandbox, a client with a token, the Trading listings and the Inventory listings."""
    sandbox = start_sandbox(n_asins=SMALL, **kwargs)
    client = EbayClient(sandbox.url)
    client.refresh()
    listings = list(sandbox.state.apis["ebay"].listings.values())
    trading = [row for row in listings if row.api == "trading"]
    inventory = [row for row in listings if row.api == "inventory"]
    return sandbox, client, trading, inventory


def preference(client: EbayClient) -> list[str]:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><GetUserPreferencesRequest xmlns="{NS}">'
        "<ShowOutOfStockControlPreference>true</ShowOutOfStockControlPreference>"
        "</GetUserPreferencesRequest>"
    )
    response = client.trading("GetUserPreferences", body)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    assert trading_text(root, "Ack") == ["Success"], response.text
    return trading_text(root, "OutOfStockControlPreference")


def quantity_entry(listing: Any, quantity: int) -> dict[str, Any]:
    """A bulk_update_price_quantity entry setting an Inventory listing's quantity."""
    return {
        "sku": listing.sku,
        "shipToLocationAvailability": {"quantity": quantity},
        "offers": [{"offerId": listing.offer_id, "availableQuantity": quantity}],
    }


def listing_rows(url: str) -> dict[str, dict[str, Any]]:
    rows = requests.get(f"{url}/_sandbox/ebay/listings", timeout=10).json()["listings"]
    return {row["sku"]: row for row in rows}


def get_item(client: EbayClient, item_id: str) -> ET.Element:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><GetItemRequest xmlns="{NS}">'
        f"<ItemID>{item_id}</ItemID></GetItemRequest>"
    )
    return ET.fromstring(client.trading("GetItem", body).content)


def test_with_out_of_stock_control_on_quantity_zero_keeps_the_listing(start_sandbox):
    sandbox, client, _trading, inventory = setup(start_sandbox)
    assert preference(client) == ["true"]  # the demo seller has it on
    listing = next(x for x in inventory if x.quantity > 0)
    assert client.bulk_update([quantity_entry(listing, 0)]).status_code == 200
    restocked = client.bulk_update([quantity_entry(listing, 2)])
    assert restocked.status_code == 200, restocked.text
    assert listing_rows(sandbox.url)[listing.sku]["status"] == "ACTIVE"
    assert not [c for c in stats(sandbox.url)["changes"] if c["changes"].get("ended")]


def test_without_out_of_stock_control_quantity_zero_ends_the_listing_for_good(start_sandbox):
    sandbox, client, trading, inventory = setup(start_sandbox, faults="ebay_oos_control_off")
    assert preference(client) == ["false"]
    listing = next(x for x in inventory if x.quantity > 0)
    assert client.bulk_update([quantity_entry(listing, 0)]).status_code == 200
    # the ledger shows the listing ended; its offer says so
    ended = [c for c in stats(sandbox.url)["changes"] if c["changes"].get("ended")]
    assert [(c["key"], c["changes"]["quantity"]) for c in ended] == [(listing.sku, 0)]
    assert client.offer_of(listing.sku)["listing"]["listingStatus"] == "ENDED"
    assert listing_rows(sandbox.url)[listing.sku]["status"] == "ENDED"
    usage = requests.get(f"{sandbox.url}/_sandbox/ebay/limits", timeout=10).json()
    assert usage["ended_skus"] == [listing.sku] and usage["out_of_stock_control"] is False
    # a later restock is refused for that SKU inside a 207 and changes nothing
    again = client.bulk_update([quantity_entry(listing, 3), quantity_entry(inventory[1], 1)])
    assert again.status_code == 207, again.text
    first, second = again.json()["responses"]
    assert first["statusCode"] == 400 and first["errors"][0]["errorId"] == 25019
    assert "has ended" in first["errors"][0]["message"]
    assert second["statusCode"] == 200
    assert listing_rows(sandbox.url)[listing.sku]["quantity"] == 0

    # Trading: 0 ends the listing, then 21916750 "FixedPrice item ended." for every revision
    item = trading[0]
    root = client.revise_inventory_status([{"ItemID": item.listing_id, "Quantity": "0"}])
    assert trading_text(root, "Ack") == ["Success"]
    assert trading_text(get_item(client, item.listing_id), "Item/SellingStatus/ListingStatus") == [
        "Completed"
    ]
    refused = client.revise_inventory_status([{"ItemID": item.listing_id, "Quantity": "4"}])
    assert trading_text(refused, "Ack") == ["Failure"]
    assert trading_text(refused, "Errors/ErrorCode") == ["21916750"]
    assert trading_text(refused, "Errors/ShortMessage") == ["FixedPrice item ended."]
    # an ended listing is no longer in the seller's ActiveList
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><GetMyeBaySellingRequest xmlns="{NS}">'
        "<ActiveList><Include>true</Include><Pagination><EntriesPerPage>200</EntriesPerPage>"
        "</Pagination></ActiveList></GetMyeBaySellingRequest>"
    )
    active = ET.fromstring(client.trading("GetMyeBaySelling", body).content)
    shown = trading_text(active, "ActiveList/ItemArray/Item/ItemID")
    assert item.listing_id not in shown and listing.listing_id not in shown

    # the world setting turns the preference back on; ended listings stay ended
    set_limits(sandbox.url, "ebay", {"oos_control": True})
    set_faults(sandbox.url, {})
    assert preference(client) == ["true"]
    assert client.bulk_update([quantity_entry(listing, 3)]).status_code == 207


def test_a_sku_alone_revises_only_a_listing_tracked_by_sku(start_sandbox):
    _sandbox, client, trading, _ = setup(start_sandbox)
    by_item_id = next(x for x in trading if not x.sku_tracked)
    by_sku = next(x for x in trading if x.sku_tracked)
    root = client.revise_inventory_status(
        [{"SKU": by_item_id.sku, "Quantity": "2"}, {"SKU": by_sku.sku, "Quantity": "2"}]
    )
    assert trading_text(root, "Ack") == ["Warning"]
    assert trading_text(root, "Errors/ErrorCode") == ["21676"]
    assert trading_text(root, "Errors/ErrorParameters/Value") == [by_item_id.sku]
    assert trading_text(root, "InventoryStatus/ItemID") == [by_sku.listing_id]
    # the same listing by its ItemID is revised
    ok = client.revise_inventory_status([{"ItemID": by_item_id.listing_id, "Quantity": "2"}])
    assert trading_text(ok, "Ack") == ["Success"]


def test_trading_can_answer_partial_failure_with_errors_that_name_no_item(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    set_faults(
        sandbox.url,
        {
            "partial_failure_skus": [trading[1].sku],
            "trading_unnamed_errors": True,
            "trading_partial_failure_ack": True,
        },
    )
    root = client.revise_inventory_status(
        [
            {"ItemID": trading[0].listing_id, "Quantity": "1"},
            {"ItemID": trading[1].listing_id, "Quantity": "1"},
        ]
    )
    assert trading_text(root, "Ack") == ["PartialFailure"]
    assert trading_text(root, "Errors/ErrorCode") == ["10007"]
    assert trading_text(root, "Errors/ErrorParameters/Value") == []  # names no item
    assert trading_text(root, "InventoryStatus/ItemID") == [trading[0].listing_id]
    outcome = stats(sandbox.url)["per_operation"]["trading.ReviseInventoryStatus"]["by_outcome"]
    assert outcome == {"partial": 1}


def test_an_expired_token_on_trading_answers_21917053(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    set_limits(sandbox.url, "ebay", {"token_lifetime": 30})
    client.refresh()
    advance(sandbox.url, seconds=31)
    root = client.revise_inventory_status([{"ItemID": trading[0].listing_id, "Quantity": "1"}])
    assert trading_text(root, "Ack") == ["Failure"]
    assert trading_text(root, "Errors/ErrorCode") == ["21917053"]
    assert trading_text(root, "Errors/LongMessage") == ["IAF token supplied is expired."]
    # an unknown token is still 21916984
    forged = client.revise_inventory_status(
        [{"ItemID": trading[0].listing_id, "Quantity": "1"}], token="forged"
    )
    assert trading_text(forged, "Errors/ErrorCode") == ["21916984"]


def test_get_offers_lists_an_unpublished_draft_first_and_refuses_an_invalid_sku(start_sandbox):
    _sandbox, client, _, inventory = setup(start_sandbox)
    drafted = next(x for x in inventory if x.draft_offer_id)
    body = client.get("/offer", sku=drafted.sku).json()
    assert body["total"] == 2
    assert [(o["status"], o["offerId"]) for o in body["offers"]] == [
        ("UNPUBLISHED", drafted.draft_offer_id),
        ("PUBLISHED", drafted.offer_id),
    ]
    assert "listing" not in body["offers"][0]
    # the draft takes no bulk update
    draft_entry = {"offers": [{"offerId": drafted.draft_offer_id, "availableQuantity": 1}]}
    assert client.bulk_update([draft_entry]).json()["responses"][0]["statusCode"] == 400

    for bad in ("s-B0 BAD SKU", "x" * 51, "s-B0/../1"):
        response = client.get("/offer", sku=bad)
        assert response.status_code == 400, bad
        (error,) = response.json()["errors"]
        assert error["errorId"] == 25707 and "invalid value for a SKU" in error["message"]
