"""Per-item statuses of a GetOffersResult other than Success and NoBuyableOffers (the v0
model's ``status``; ``Summary.OffersAvailableTime`` names ActiveButTooSoonForProcessing) are
doubtful observations: failed for that ASIN, never "no offer"."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.clients.spapi import observation_from_offers, observations_from_item_offers
from pipeline.config import OfferPolicy

POLICY = OfferPolicy()


def _result(status: str, counted: int, offers: list[dict[str, Any]] | None = None) -> dict:
    summary: dict[str, Any] = {
        "TotalOfferCount": counted,
        "NumberOfOffers": [
            {"condition": "new", "fulfillmentChannel": "Amazon", "OfferCount": counted}
        ],
    }
    if status == "ActiveButTooSoonForProcessing":
        summary["OffersAvailableTime"] = "2026-11-30T09:15:00Z"
    return {
        "ASIN": "B0TEST0001",
        "status": status,
        "ItemCondition": "New",
        "Identifier": {"MarketplaceId": "A1VC38T7YXB528", "ASIN": "B0TEST0001"},
        "Summary": summary,
        "Offers": offers or [],
        "marketplaceId": "A1VC38T7YXB528",
    }


@pytest.mark.parametrize("status", ["ActiveButTooSoonForProcessing", "SomeFutureStatus"])
def test_another_status_with_offers_counted_is_failed_not_no_offer(status: str) -> None:
    obs = observation_from_offers("B0TEST0001", _result(status, 7), POLICY, "JPY")

    assert (obs.status, obs.error_code) == ("api_error", status)
    assert (obs.in_stock, obs.price_jpy, obs.offer_count) == (None, None, 7)
    assert obs.retry_in_run is False  # Amazon's stated answer: not asked again this run


def test_a_success_counting_offers_but_listing_none_is_failed_and_retried() -> None:
    obs = observation_from_offers("B0TEST0001", _result("Success", 3), POLICY, "JPY")

    assert (obs.status, obs.error_code, obs.in_stock) == ("api_error", "OffersNotListed", None)
    assert obs.retry_in_run is True


def test_a_too_soon_item_inside_a_batch_answer_fails_only_that_asin() -> None:
    payload = {
        "responses": [
            {
                "status": {"statusCode": 200, "reasonPhrase": "OK"},
                "body": {"payload": _result("ActiveButTooSoonForProcessing", 2)},
                "request": {"Asin": "B0TEST0001", "MarketplaceId": "A1VC38T7YXB528"},
            },
            {
                "status": {"statusCode": 200, "reasonPhrase": "OK"},
                "body": {"payload": {**_result("NoBuyableOffers", 0), "ASIN": "B0TEST0002"}},
                "request": {"Asin": "B0TEST0002", "MarketplaceId": "A1VC38T7YXB528"},
            },
        ]
    }
    first, second = observations_from_item_offers(
        payload, ["B0TEST0001", "B0TEST0002"], POLICY, "JPY"
    )

    assert (first.status, first.error_code) == ("api_error", "ActiveButTooSoonForProcessing")
    assert (second.status, second.in_stock) == ("no_offer", False)  # NoBuyableOffers as before
