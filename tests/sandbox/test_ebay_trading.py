"""The sandbox's eBay Trading API: ReviseInventoryStatus over real HTTP, in XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import requests

from tests.sandbox.platform_clients import (
    EbayClient,
    set_faults,
    set_limits,
    stats,
    trading_text,
    wait_for_window,
)

SMALL = 150  # catalogue ASINs
NS = "{urn:ebay:apis:eBLBaseComponents}"  # ElementTree's prefix for the Trading namespace


def setup(start_sandbox: Any, **kwargs: Any) -> tuple[Any, EbayClient, list[Any], list[Any]]:
    """A sandbox, a client with a token, the Trading listings and the Inventory listings."""
    sandbox = start_sandbox(n_asins=SMALL, **kwargs)
    client = EbayClient(sandbox.url)
    client.refresh()
    listings = list(sandbox.state.apis["ebay"].listings.values())
    trading = [row for row in listings if row.api == "trading"]
    inventory = [row for row in listings if row.api == "inventory"]
    return sandbox, client, trading, inventory


def test_four_listings_revised_in_one_call_with_success(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    statuses = [
        {"ItemID": trading[0].listing_id, "StartPrice": "20.00", "Quantity": "3"},
        {"ItemID": trading[1].listing_id, "Quantity": "0"},
        {"SKU": trading[2].sku, "StartPrice": "15.5"},
        {
            "ItemID": trading[3].listing_id,
            "SKU": trading[3].sku,
            "StartPrice": "9.99",
            "Quantity": "1",
        },
    ]
    root = client.revise_inventory_status(statuses)
    assert trading_text(root, "Ack") == ["Success"]
    assert trading_text(root, "Errors") == []
    assert trading_text(root, "InventoryStatus/ItemID") == [t.listing_id for t in trading[:4]]
    assert trading_text(root, "InventoryStatus/SKU") == [t.sku for t in trading[:4]]
    prices = trading_text(root, "InventoryStatus/StartPrice")
    assert prices[0] == "20.00" and prices[2] == "15.50" and prices[3] == "9.99"
    # Quantity echoes available + already sold (eBay's InventoryStatusType quirk).
    quantities = [int(q) for q in trading_text(root, "InventoryStatus/Quantity")]
    assert quantities[0] == 3 + trading[0].sold_quantity
    assert quantities[1] == 0 + trading[1].sold_quantity
    assert trading_text(root, "Fees/ItemID") == [t.listing_id for t in trading[:4]]
    ledger = stats(sandbox.url)
    assert [(c["key"], c["changes"], c["via"]) for c in ledger["changes"]] == [
        (
            trading[0].sku,
            {"price": 2000, "currency": "USD", "quantity": 3},
            "ReviseInventoryStatus",
        ),
        (trading[1].sku, {"quantity": 0}, "ReviseInventoryStatus"),
        (trading[2].sku, {"price": 1550, "currency": "USD"}, "ReviseInventoryStatus"),
        (trading[3].sku, {"price": 999, "currency": "USD", "quantity": 1}, "ReviseInventoryStatus"),
    ]
    assert ledger["per_operation"]["trading.ReviseInventoryStatus"]["by_outcome"] == {"ok": 1}


def test_an_inventory_api_listing_is_refused_by_item_id_or_sku_with_a_warning(start_sandbox):
    sandbox, client, trading, inventory = setup(start_sandbox)
    root = client.revise_inventory_status(
        [
            {"ItemID": trading[0].listing_id, "Quantity": "2"},
            {"ItemID": inventory[0].listing_id, "Quantity": "2"},
            {"SKU": inventory[1].sku, "Quantity": "2"},
        ]
    )
    assert trading_text(root, "Ack") == ["Warning"]  # one of three went through
    assert trading_text(root, "Errors/ErrorCode") == ["21919474", "21919474"]
    assert trading_text(root, "Errors/SeverityCode") == ["Error", "Error"]
    assert trading_text(root, "Errors/ErrorParameters/Value") == [
        inventory[0].listing_id,
        inventory[1].sku,
    ]
    assert trading_text(root, "InventoryStatus/ItemID") == [trading[0].listing_id]
    assert [c["key"] for c in stats(sandbox.url)["changes"]] == [trading[0].sku]


def test_all_items_failing_is_a_failure_with_one_error_each(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    root = client.revise_inventory_status(
        [
            {"ItemID": "999999999999", "Quantity": "1"},
            {"ItemID": trading[0].listing_id, "StartPrice": "abc"},
            {"ItemID": trading[1].listing_id, "Quantity": "-2"},
            {"ItemID": trading[2].listing_id},
        ]
    )
    assert trading_text(root, "Ack") == ["Failure"]
    assert trading_text(root, "Errors/ErrorCode") == ["17", "37", "37", "37"]
    assert trading_text(root, "Errors/ErrorParameters/Value") == [
        "999999999999",
        trading[0].listing_id,
        trading[1].listing_id,
        trading[2].listing_id,
    ]
    assert trading_text(root, "InventoryStatus") == []
    assert stats(sandbox.url)["total_changes"] == 0


def test_more_than_four_statuses_or_a_duplicate_listing_is_refused(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    five = [{"ItemID": t.listing_id, "Quantity": "1"} for t in trading[:5]]
    root = client.revise_inventory_status(five)
    assert trading_text(root, "Ack") == ["Failure"]
    assert trading_text(root, "Errors/ErrorCode") == ["37"]
    twice = client.revise_inventory_status(
        [
            {"ItemID": trading[0].listing_id, "Quantity": "1"},
            {"SKU": trading[0].sku, "Quantity": "2"},
        ]
    )
    assert trading_text(twice, "Ack") == ["Warning"]
    assert trading_text(twice, "Errors/ErrorParameters/Value") == [trading[0].sku]
    assert [c["changes"] for c in stats(sandbox.url)["changes"]] == [{"quantity": 1}]


def test_a_trading_listing_is_not_revisable_through_the_inventory_api(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    response = client.bulk_update(
        [{"sku": trading[0].sku, "shipToLocationAvailability": {"quantity": 1}}]
    )
    assert response.status_code == 207
    assert response.json()["responses"][0]["errors"][0]["errorId"] == 25702
    assert client.get("/offer", sku=trading[0].sku).status_code == 404
    assert stats(sandbox.url)["total_changes"] == 0


def test_bad_token_unsupported_call_and_daily_quota(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    status = [{"ItemID": trading[0].listing_id, "Quantity": "1"}]
    bad = client.revise_inventory_status(status, token="nope")
    assert trading_text(bad, "Ack") == ["Failure"]
    assert trading_text(bad, "Errors/ErrorCode") == ["21916984"]
    assert trading_text(bad, "Errors/ShortMessage") == ["Invalid IAF token."]

    other = client.trading("GetSellerList", "<GetSellerListRequest/>")
    assert other.status_code == 200 and "<ErrorCode>2</ErrorCode>" in other.text

    set_limits(sandbox.url, "ebay", {"trading_daily_call_limit": 2})
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 5.0)
    for _ in range(2):
        assert trading_text(client.revise_inventory_status(status), "Ack") == ["Success"]
    over = client.revise_inventory_status(status)
    assert trading_text(over, "Ack") == ["Failure"]
    assert trading_text(over, "Errors/ErrorCode") == ["518"]
    assert trading_text(over, "Errors/ShortMessage") == ["Call usage limit has been reached."]
    by_outcome = stats(sandbox.url)["per_operation"]["trading.ReviseInventoryStatus"]["by_outcome"]
    assert by_outcome == {"unauthorized": 1, "ok": 2, "throttled": 1}


def test_the_revision_cap_and_partial_failure_fault_apply_to_trading_too(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    set_limits(sandbox.url, "ebay", {"revisions_per_day": 2})
    set_faults(sandbox.url, {"partial_failure_skus": [trading[1].sku]})
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 5.0)
    for _ in range(2):
        client.revise_inventory_status([{"ItemID": trading[0].listing_id, "Quantity": "1"}])
    root = client.revise_inventory_status(
        [
            {"ItemID": trading[0].listing_id, "Quantity": "1"},
            {"ItemID": trading[1].listing_id, "Quantity": "1"},
        ]
    )
    assert trading_text(root, "Ack") == ["Failure"]
    assert trading_text(root, "Errors/ErrorCode") == ["21919188", "10007"]
    assert trading_text(root, "Errors/ErrorClassification") == ["RequestError", "SystemError"]
    assert len(stats(sandbox.url)["changes"]) == 2


def test_the_listings_export_names_every_trading_item_id(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    rows = requests.get(f"{sandbox.url}/_sandbox/ebay/listings", timeout=10).json()["listings"]
    exported = [row for row in rows if row["api"] == "trading"]
    assert [row["listing_id"] for row in exported] == [t.listing_id for t in trading]
    assert all(row["offer_id"] is None and row["sku"].startswith("s-") for row in exported)
    statuses = [{"ItemID": row["listing_id"], "Quantity": "1"} for row in exported[:4]]
    assert trading_text(client.revise_inventory_status(statuses), "Ack") == ["Success"]


def test_get_item_reads_back_what_a_revision_applied(start_sandbox):
    sandbox, client, trading, _ = setup(start_sandbox)
    listing = trading[0]
    revised = client.revise_inventory_status(
        [{"ItemID": listing.listing_id, "StartPrice": "31.99", "Quantity": "3"}]
    )
    assert trading_text(revised, "Ack") == ["Success"]
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<GetItemRequest xmlns="urn:ebay:apis:eBLBaseComponents">'
        f"<ItemID>{listing.listing_id}</ItemID></GetItemRequest>"
    )
    read = client.trading("GetItem", body)
    root = ET.fromstring(read.text)
    assert trading_text(root, "Ack") == ["Success"]
    assert trading_text(root, "Item/SKU") == [listing.sku]
    assert trading_text(root, "Item/StartPrice") == ["31.99"]
    sold = int(trading_text(root, "Item/SellingStatus/QuantitySold")[0])
    assert int(trading_text(root, "Item/Quantity")[0]) == 3 + sold  # available + sold
    gone = ET.fromstring(client.trading("GetItem", body.replace(listing.listing_id, "1")).text)
    assert trading_text(gone, "Errors/ErrorCode") == ["17"]
    # a read changes nothing: the one revision is the only change on record
    assert [(c["key"], c["via"]) for c in stats(sandbox.url)["changes"]] == [
        (listing.sku, "ReviseInventoryStatus")
    ]


def _my_ebay_selling(client: EbayClient, per_page: str, page: str) -> ET.Element:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<GetMyeBaySellingRequest xmlns="urn:ebay:apis:eBLBaseComponents">'
        "<ActiveList><Include>true</Include><Pagination>"
        f"<EntriesPerPage>{per_page}</EntriesPerPage><PageNumber>{page}</PageNumber>"
        "</Pagination></ActiveList></GetMyeBaySellingRequest>"
    )
    response = client.trading("GetMyeBaySelling", body)
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def test_get_my_ebay_selling_pages_through_every_active_listing(start_sandbox):
    sandbox, client, trading, inventory = setup(start_sandbox)
    everyone = list(sandbox.state.apis["ebay"].listings.values())
    per_page = 7
    pages = -(-len(everyone) // per_page)
    assert pages >= 3 and trading and inventory
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 5.0)
    before = set_limits(sandbox.url, "ebay", {})["trading_calls_today"]
    seen: list[str] = []
    items: dict[str, ET.Element] = {}
    for page in range(1, pages + 1):
        root = _my_ebay_selling(client, str(per_page), str(page))
        assert trading_text(root, "Ack") == ["Success"]
        assert trading_text(root, "ActiveList/PaginationResult/TotalNumberOfPages") == [str(pages)]
        assert trading_text(root, "ActiveList/PaginationResult/TotalNumberOfEntries") == [
            str(len(everyone))
        ]
        found = root.findall(f"{NS}ActiveList/{NS}ItemArray/{NS}Item")
        assert len(found) == (per_page if page < pages else len(everyone) - per_page * (pages - 1))
        for item in found:
            item_id = item.findtext(f"{NS}ItemID") or ""
            seen.append(item_id)
            items[item_id] = item
    # every active listing exactly once, Inventory-API ones included (My eBay shows them all)
    assert sorted(seen) == sorted(x.listing_id for x in everyone)
    assert {x.listing_id for x in inventory} <= set(seen)
    for listing in (trading[0], inventory[0]):
        item = items[listing.listing_id]
        assert item.findtext(f"{NS}SKU") == listing.sku
        assert item.findtext(f"{NS}ListingType") == "FixedPriceItem"
        for path in ("BuyItNowPrice", "StartPrice", "SellingStatus/CurrentPrice"):
            node = item.find("/".join(f"{NS}{part}" for part in path.split("/")))
            assert node is not None and node.text == listing.price_value()
            assert node.get("currencyID") == "USD"
        available = min(listing.quantity, listing.available_quantity)
        assert item.findtext(f"{NS}QuantityAvailable") == str(available)
        assert item.findtext(f"{NS}Quantity") == str(available + listing.sold_quantity)
    # past the last page: an empty ItemArray; a page size over 200: invalid input
    past = _my_ebay_selling(client, str(per_page), str(pages + 1))
    assert trading_text(past, "ActiveList/ItemArray/Item") == []
    assert trading_text(past, "ActiveList/PaginationResult/TotalNumberOfEntries") == [
        str(len(everyone))
    ]
    too_many = _my_ebay_selling(client, "201", "1")
    assert trading_text(too_many, "Ack") == ["Failure"]
    assert trading_text(too_many, "Errors/ErrorCode") == ["37"]
    ledger = stats(sandbox.url)
    by_outcome = ledger["per_operation"]["trading.GetMyeBaySelling"]["by_outcome"]
    assert by_outcome == {"ok": pages + 1, "error": 1}
    assert ledger["total_changes"] == 0  # a read changes nothing
    # every call counted against the Trading daily quota
    assert set_limits(sandbox.url, "ebay", {})["trading_calls_today"] == before + pages + 2


def test_get_my_ebay_selling_stops_at_the_trading_daily_quota(start_sandbox):
    sandbox, client, _, _ = setup(start_sandbox)
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 5.0)
    used = set_limits(sandbox.url, "ebay", {})["trading_calls_today"]
    set_limits(sandbox.url, "ebay", {"trading_daily_call_limit": used + 1})
    assert trading_text(_my_ebay_selling(client, "200", "1"), "Ack") == ["Success"]
    over = _my_ebay_selling(client, "200", "1")
    assert trading_text(over, "Ack") == ["Failure"]
    assert trading_text(over, "Errors/ErrorCode") == ["518"]
    assert trading_text(over, "ActiveList") == []
