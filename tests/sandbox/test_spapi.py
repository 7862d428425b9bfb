"""The real python-amazon-sp-api client against the sandbox: token, batch offers,
competitive pricing, single offers, JP money, and LWA / access-token refusals."""

from __future__ import annotations

import pytest
import requests
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import SellingApiForbiddenException, SellingApiRequestThrottledException

from pipeline.sandbox.catalogue import Catalogue
from tests.sandbox.spapi_clients import (
    access_token,
    offer_request,
    products_client,
    stats,
)


def _priced_asins(catalogue: Catalogue, n: int = 20) -> list[str]:
    return [a for a in catalogue.asins if catalogue.buy_box(a) is not None][:n]


def _amount(money: dict) -> int:
    amount = money["Amount"]
    assert float(amount).is_integer(), money  # JPY has no fractional part
    assert money["CurrencyCode"] == "JPY"
    return int(amount)


def test_library_gets_a_token_and_20_priced_asins_through_get_item_offers_batch(sandbox):
    catalogue = sandbox.state.apis["catalogue"]
    asins = _priced_asins(catalogue)
    client = products_client(sandbox)

    response = client.get_item_offers_batch([offer_request(a) for a in asins])

    items = response.payload["responses"]
    assert [item["request"]["Asin"] for item in items] == asins
    assert response.rate_limit == "10.0"  # 0.1 req/s at time scale 100
    for asin, item in zip(asins, items, strict=True):
        assert item["status"]["statusCode"] == 200
        payload = item["body"]["payload"]
        assert payload["status"] == "Success"
        lowest = min(_amount(p["LandedPrice"]) for p in payload["Summary"]["LowestPrices"])
        assert lowest == catalogue.reference_price(asin)
        winners = [o for o in payload["Offers"] if o["IsBuyBoxWinner"]]
        assert [o["SellerId"] for o in winners] == [catalogue.buy_box(asin).seller_id]
        for offer in payload["Offers"]:
            assert offer["ShippingTime"]["availabilityType"] in (
                "NOW",
                "FUTURE_WITHOUT_DATE",
                "FUTURE_WITH_DATE",
            )
    ledger = stats(sandbox)["per_operation"]
    assert ledger["lwa.token"]["calls"] == 1
    assert ledger["spapi.getItemOffersBatch"] == {
        "calls": 1,
        "throttled": 0,
        "items": 20,
        "by_status": {"200": 1},
        "by_outcome": {"ok": 1},
    }


def test_library_gets_20_buy_box_prices_through_get_competitive_pricing(sandbox):
    catalogue = sandbox.state.apis["catalogue"]
    asins = _priced_asins(catalogue)
    client = products_client(sandbox)

    response = client.get_competitive_pricing_for_asins(asins)

    assert response.rate_limit == "50.0"  # 0.5 req/s at time scale 100
    assert [price["ASIN"] for price in response.payload] == asins
    for asin, price in zip(asins, response.payload, strict=True):
        winner = catalogue.buy_box(asin)
        (buy_box,) = price["Product"]["CompetitivePricing"]["CompetitivePrices"]
        assert buy_box["CompetitivePriceId"] == "1"
        assert _amount(buy_box["Price"]["LandedPrice"]) == winner.landed
        assert buy_box["sellerId"] == winner.seller_id
        counts = price["Product"]["CompetitivePricing"]["NumberOfOfferListings"]
        assert {"Count": len(catalogue.offers(asin)), "condition": "New"} in counts


def test_jp_landed_price_is_listing_plus_shipping_minus_points(sandbox):
    catalogue = sandbox.state.apis["catalogue"]
    with_points = [a for a in catalogue.asins if any(o.points for o in catalogue.offers(a))][:20]
    client = products_client(sandbox)

    items = client.get_item_offers_batch([offer_request(a) for a in with_points]).payload[
        "responses"
    ]

    seen_points = 0
    for item in items:
        summary = item["body"]["payload"]["Summary"]
        for price in summary["LowestPrices"] + summary.get("BuyBoxPrices", []):
            points = _amount(price["Points"]["PointsMonetaryValue"]) if "Points" in price else 0
            seen_points += points > 0
            assert _amount(price["LandedPrice"]) == (
                _amount(price["ListingPrice"]) + _amount(price["Shipping"]) - points
            )
    assert seen_points > 0


def test_library_get_item_offers_answers_one_asin(sandbox):
    catalogue = sandbox.state.apis["catalogue"]
    asin = _priced_asins(catalogue, 1)[0]
    client = products_client(sandbox)

    response = client.get_item_offers(asin, "New")

    assert response.payload["ASIN"] == asin
    assert response.payload["Summary"]["TotalOfferCount"] == len(catalogue.offers(asin))
    assert response.rate_limit == "50.0"


def test_second_call_inside_the_interval_raises_the_throttled_exception(start_sandbox):
    sandbox = start_sandbox(time_scale=1.0)
    asins = sandbox.state.apis["catalogue"].asins[:2]
    client = products_client(sandbox)
    client.get_competitive_pricing_for_asins(asins)

    with pytest.raises(SellingApiRequestThrottledException) as caught:
        client.get_competitive_pricing_for_asins(asins)

    assert caught.value.code == 429
    assert caught.value.amzn_code == "QuotaExceeded"
    assert "x-amzn-RateLimit-Limit" not in caught.value.headers


@pytest.mark.parametrize(
    ("override", "error_code", "status"),
    [
        ({"lwa_client_secret": "not-the-secret"}, "invalid_client", 401),
        ({"lwa_app_id": "amzn1.application-oa2-client.someone-else"}, "invalid_client", 401),
        ({"refresh_token": "Atzr|revoked"}, "invalid_grant", 400),
    ],
)
def test_lwa_refuses_wrong_credentials_with_its_error_body(sandbox, override, error_code, status):
    client = products_client(sandbox, **override)

    with pytest.raises(AuthorizationError) as caught:
        client.get_competitive_pricing_for_asins(sandbox.state.apis["catalogue"].asins[:1])

    assert caught.value.error_code == error_code
    assert caught.value.status_code == status
    ledger = stats(sandbox)
    assert ledger["per_operation"]["lwa.token"]["by_outcome"] == {error_code: 1}
    assert "spapi.getCompetitivePricing" not in ledger["per_operation"]


def test_lwa_accepts_a_json_body_as_amazons_java_sdk_sends(sandbox):
    from pipeline.sandbox.credentials import DEMO_ENV

    response = requests.post(
        sandbox.url + "/auth/o2/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": DEMO_ENV["SP_API_REFRESH_TOKEN"],
            "client_id": DEMO_ENV["LWA_APP_ID"],
            "client_secret": DEMO_ENV["LWA_CLIENT_SECRET"],
        },
        timeout=5,
    )

    body = response.json()
    assert response.status_code == 200
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] == DEMO_ENV["SP_API_REFRESH_TOKEN"]


def test_an_expired_access_token_gets_403_unauthorized(start_sandbox):
    sandbox = start_sandbox(token_lifetime=60.0)
    client = products_client(sandbox)
    asins = sandbox.state.apis["catalogue"].asins[:1]
    client.get_competitive_pricing_for_asins(asins)
    sandbox.clock.advance(60.0)  # clock seconds: the token's lifetime is up (not scaled)

    with pytest.raises(SellingApiForbiddenException) as caught:
        client.get_competitive_pricing_for_asins(asins)

    assert caught.value.error == [
        {
            "code": "Unauthorized",
            "message": "Access to requested resource is denied.",
            "details": "The access token you provided has expired.",
        }
    ]
    assert stats(sandbox)["per_operation"]["spapi.getCompetitivePricing"]["by_outcome"] == {
        "ok": 1,
        "expired_token": 1,
    }


@pytest.mark.parametrize("token", [None, "", "Atza|forged", "Atza|IwEBAAAA.0000"])
def test_missing_or_forged_access_token_gets_403_without_rate_header(sandbox, token):
    headers = {} if token is None else {"x-amz-access-token": token}

    response = requests.get(
        sandbox.url + "/products/pricing/v0/competitivePrice",
        params={"Asins": sandbox.state.apis["catalogue"].asins[0], "ItemType": "Asin"},
        headers=headers,
        timeout=5,
    )

    assert response.status_code == 403
    (error,) = response.json()["errors"]
    assert error["code"] == "Unauthorized"
    assert error["message"] == "Access to requested resource is denied."
    assert "x-amzn-RateLimit-Limit" not in response.headers
    assert response.headers["x-amzn-RequestId"]


def test_a_token_from_one_sandbox_works_on_another(start_sandbox):
    first, second = start_sandbox(), start_sandbox()
    token = access_token(first)

    response = requests.get(
        second.url
        + "/products/pricing/v0/items/"
        + second.state.apis["catalogue"].asins[0]
        + "/offers",
        params={"MarketplaceId": "A1VC38T7YXB528", "ItemCondition": "New"},
        headers={"x-amz-access-token": token},
        timeout=5,
    )

    assert response.status_code == 200
