"""The sandbox answers ``ActiveButTooSoonForProcessing`` for the ``too_soon_asins`` knob as
the Product Pricing v0 model documents it (GetOffersResult.status, Summary.TotalOfferCount,
Summary.OffersAvailableTime): offers counted, none listed, inside a 200."""

from __future__ import annotations

import datetime as dt

import requests

from pipeline.sandbox.spapi import MARKETPLACE_JP
from tests.sandbox.spapi_clients import BATCH_PATH, access_token, batch_body, set_faults


def _with_offers(server, n: int) -> list[str]:
    catalogue = server.state.apis["catalogue"]
    return [a for a in catalogue.asins if catalogue.buy_box(a)][:n]


def test_a_too_soon_asin_has_offers_counted_and_none_listed_in_a_batch(start_sandbox) -> None:
    server = start_sandbox(time_scale=10_000.0)
    too_soon, priced = _with_offers(server, 2)
    set_faults(server, f"too_soon_asins={too_soon}")
    offers = len(server.state.apis["catalogue"].offers(too_soon))
    with requests.Session() as session:
        session.headers["x-amz-access-token"] = access_token(server)
        while (
            answer := session.post(server.url + BATCH_PATH, json=batch_body([too_soon, priced]))
        ).status_code == 429:
            pass

    assert answer.status_code == 200
    first, second = answer.json()["responses"]
    assert first["status"]["statusCode"] == 200
    payload = first["body"]["payload"]
    assert payload["status"] == "ActiveButTooSoonForProcessing"
    assert payload["Offers"] == []
    assert payload["Summary"]["TotalOfferCount"] == offers > 0
    assert sum(c["OfferCount"] for c in payload["Summary"]["NumberOfOffers"]) == offers
    available = dt.datetime.fromisoformat(payload["Summary"]["OffersAvailableTime"])
    assert available > dt.datetime.fromtimestamp(server.state.clock.unix(), dt.UTC)
    assert second["body"]["payload"]["status"] == "Success"  # only the ASINs named
    call = requests.get(server.url + "/_sandbox/stats", timeout=5).json()["calls"][-1]
    assert call["detail"]["too_soon"] == [too_soon]
    assert call["detail"]["no_offers"] == []


def test_get_item_offers_answers_too_soon_the_same_way(start_sandbox) -> None:
    server = start_sandbox(time_scale=10_000.0)
    (asin,) = _with_offers(server, 1)
    set_faults(server, {"too_soon_asins": [asin]})
    url = f"{server.url}/products/pricing/v0/items/{asin}/offers"
    params = {"MarketplaceId": MARKETPLACE_JP, "ItemCondition": "New"}
    with requests.Session() as session:
        session.headers["x-amz-access-token"] = access_token(server)
        while (answer := session.get(url, params=params)).status_code == 429:
            pass

    payload = answer.json()["payload"]
    assert (payload["status"], payload["Offers"]) == ("ActiveButTooSoonForProcessing", [])
    assert payload["Summary"]["TotalOfferCount"] > 0


def test_a_seeded_share_answers_too_soon_the_same_way_all_tick_long(start_sandbox) -> None:
    server = start_sandbox(time_scale=10_000.0)
    asins = _with_offers(server, 20)
    set_faults(server, "too_soon_share=0.3")

    def too_soon_now() -> list[str]:
        with requests.Session() as session:
            session.headers["x-amz-access-token"] = access_token(server)
            while (
                answer := session.post(server.url + BATCH_PATH, json=batch_body(asins))
            ).status_code == 429:
                pass
        return [
            r["request"]["Asin"]
            for r in answer.json()["responses"]
            if r["body"]["payload"]["status"] == "ActiveButTooSoonForProcessing"
        ]

    first, again = too_soon_now(), too_soon_now()
    requests.post(server.url + "/_sandbox/tick", params={"n": 1}, timeout=5).raise_for_status()
    later = too_soon_now()

    assert 0 < len(first) < len(asins)  # a share, seeded
    assert again == first  # stable within a tick: asking again hears the same
    assert later != first  # the world moved on
