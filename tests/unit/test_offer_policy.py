"""The offer policy and the price chosen under it (getItemOffersBatch offers, JPY)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.clients.spapi import observation_from_offers, policy_rejections
from pipeline.config import OfferPolicy


def yen(amount: float) -> dict[str, Any]:
    return {"CurrencyCode": "JPY", "Amount": amount}


def offer(
    listing: float,
    shipping: float = 0.0,
    *,
    points: int = 0,
    prime: bool = True,
    fba: bool = True,
    availability: str | None = "NOW",
    max_hours: int | None = 24,
    seller: str = "A1",
    winner: bool = False,
) -> dict[str, Any]:
    shipping_time: dict[str, Any] = {"minimumHours": 0}
    if max_hours is not None:
        shipping_time["maximumHours"] = max_hours
    if availability is not None:
        shipping_time["availabilityType"] = availability
    detail: dict[str, Any] = {
        "ListingPrice": yen(listing),
        "Shipping": yen(shipping),
        "ShippingTime": shipping_time,
        "SubCondition": "new",
        "SellerId": seller,
        "IsFulfilledByAmazon": fba,
        "PrimeInformation": {"IsPrime": prime, "IsNationalPrime": prime},
        "IsBuyBoxWinner": winner,
    }
    if points:
        detail["Points"] = {"PointsNumber": points, "PointsMonetaryValue": yen(points)}
    return detail


def result(*offers: dict[str, Any]) -> dict[str, Any]:
    return {
        "ASIN": "B0TEST0001",
        "status": "Success" if offers else "NoBuyableOffers",
        "Summary": {
            "TotalOfferCount": len(offers),
            "NumberOfOffers": [
                {"condition": "new", "fulfillmentChannel": "Amazon", "OfferCount": len(offers)}
            ],
        },
        "Offers": list(offers),
    }


DEFAULT = OfferPolicy()  # availability NOW, at most 72 h, Prime and FBA not required


def test_lowest_landed_price_with_points_deducted() -> None:
    obs = observation_from_offers(
        "B0TEST0001",
        result(offer(1000.0, 300.0), offer(1200.0, points=250), offer(1100.0, 0.0)),
        DEFAULT,
        "JPY",
    )
    # 1000+300 = 1300; 1200-250 = 950; 1100 → the 950 offer wins
    assert obs.status == "ok"
    assert (obs.price_jpy, obs.listing_price_jpy, obs.shipping_jpy, obs.points_jpy) == (
        950, 1200, 0, 250,
    )  # fmt: skip
    assert obs.in_stock is True
    assert (obs.offer_count, obs.eligible_offer_count) == (3, 3)


def test_amounts_with_a_decimal_point_are_exact_integers() -> None:
    obs = observation_from_offers("B0TEST0001", result(offer(1280.0, 0.0)), DEFAULT, "JPY")
    assert obs.price_jpy == 1280
    assert isinstance(obs.price_jpy, int)


def test_policy_filters_prime_fba_availability_and_shipping_time() -> None:
    strict = OfferPolicy(require_prime=True, require_fba=True, max_shipping_hours=48)
    assert policy_rejections(offer(1.0), strict) == []
    assert policy_rejections(offer(1.0, prime=False), strict) == ["not Prime"]
    assert policy_rejections(offer(1.0, fba=False), strict) == ["not FBA"]
    assert policy_rejections(offer(1.0, availability="FUTURE_WITH_DATE"), strict) == [
        "availability FUTURE_WITH_DATE"
    ]
    assert policy_rejections(offer(1.0, max_hours=72), strict) == ["ships in 72 h"]
    # unknown shipping time does not pass a limit; an omitted availability means now
    assert policy_rejections(offer(1.0, max_hours=None), strict) == ["ships in unknown h"]
    assert policy_rejections(offer(1.0, availability=None), strict) == []
    assert policy_rejections(offer(1.0, max_hours=None), OfferPolicy(max_shipping_hours=None)) == []


def test_the_cheapest_offer_that_fails_the_policy_is_not_chosen() -> None:
    policy = OfferPolicy(require_prime=True)
    obs = observation_from_offers(
        "B0TEST0001",
        result(offer(500.0, prime=False, fba=False, seller="CHEAP"), offer(900.0, seller="PRIME")),
        policy,
        "JPY",
    )
    assert (obs.status, obs.price_jpy, obs.seller_id, obs.eligible_offer_count) == (
        "ok", 900, "PRIME", 1,
    )  # fmt: skip


def test_offers_that_all_fail_are_filtered_out_and_out_of_stock() -> None:
    obs = observation_from_offers(
        "B0TEST0001",
        result(offer(500.0, availability="FUTURE_WITHOUT_DATE"), offer(600.0, max_hours=336)),
        DEFAULT,
        "JPY",
    )
    assert obs.status == "filtered_out"
    assert obs.in_stock is False
    assert obs.price_jpy is None
    assert (obs.offer_count, obs.eligible_offer_count) == (2, 0)


def test_no_buyable_offers_is_no_offer() -> None:
    obs = observation_from_offers("B0TEST0001", result(), DEFAULT, "JPY")
    assert (obs.status, obs.in_stock, obs.price_jpy, obs.offer_count) == (
        "no_offer", False, None, 0,
    )  # fmt: skip


def test_ties_go_to_the_buy_box_winner_then_fba() -> None:
    obs = observation_from_offers(
        "B0TEST0001",
        result(offer(800.0, seller="A", fba=False, prime=False), offer(800.0, seller="B"),
               offer(800.0, seller="C", winner=True)),
        DEFAULT,
        "JPY",
    )  # fmt: skip
    assert obs.seller_id == "C"
    obs = observation_from_offers(
        "B0TEST0001",
        result(offer(800.0, seller="A", fba=False, prime=False), offer(800.0, seller="B")),
        DEFAULT,
        "JPY",
    )
    assert obs.seller_id == "B"


@pytest.mark.parametrize(
    ("money", "code"),
    [({"CurrencyCode": "USD", "Amount": 10}, "UnexpectedCurrency"),
     ({"CurrencyCode": "JPY", "Amount": "x"}, "MalformedMoney"),
     (None, "MissingPrice")],
)  # fmt: skip
def test_a_price_we_cannot_read_is_an_api_error_never_a_price(money: Any, code: str) -> None:
    bad = offer(1000.0)
    bad["ListingPrice"] = money
    obs = observation_from_offers("B0TEST0001", result(bad), DEFAULT, "JPY")
    assert (obs.status, obs.error_code, obs.price_jpy, obs.in_stock) == (
        "api_error", code, None, None,
    )  # fmt: skip


def test_yen_amounts_round_half_up() -> None:
    obs = observation_from_offers("B0TEST0001", result(offer(1000.5, 0.0)), DEFAULT, "JPY")
    assert obs.price_jpy == 1001  # ROUND_HALF_UP, never banker's rounding
