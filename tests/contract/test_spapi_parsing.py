"""SP-API answers → snapshot rows: the official sandbox examples (tests/contracts) and the
loopback sandbox's answers for BOTH operations parse into the one validated Snapshot schema,
with Points deducted from the landed price."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
import requests

from pipeline import fetch, snapshots
from pipeline.clients.spapi import (
    SpApiClient,
    SpApiTransientError,
    observations_from_competitive_pricing,
    observations_from_item_offers,
)
from pipeline.config import OfferPolicy, open_workspace
from pipeline.schemas import Snapshot
from tests.contract import official

RUN = "20261129T120000Z-abcdef"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    return official.spapi_example(name)


def as_snapshot(observations: list[Any], operation: str) -> pl.DataFrame:
    rows = [fetch.observation_row(o, RUN, operation, NOW) for o in observations]
    return Snapshot.validate(snapshots.snapshot_frame(rows), lazy=True)


def by_asin(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["asin"]: row for row in frame.iter_rows(named=True)}


def test_official_item_offers_batch_example_parses_into_the_snapshot_schema() -> None:
    data = example("getItemOffersBatch.200.0.json")
    asins = [
        r["uri"].split("/")[-2] for r in data["request"]["parameters"]["body"]["value"]["requests"]
    ]
    # The official example is a US answer: its minor unit is the cent.
    rows = by_asin(as_snapshot(
        observations_from_item_offers(data["response"], asins, OfferPolicy(), "USD"),
        "item_offers",
    ))  # fmt: skip
    assert set(rows) == set(asins)
    assert (rows["B000P6Q7MY"]["status"], rows["B000P6Q7MY"]["price_jpy"]) == ("ok", 2100)
    assert rows["B001Q3KU9Q"]["price_jpy"] == 2499
    assert rows["B001Q3KU9Q"]["is_fba"] is True
    # the cheapest offer ships in up to 720 h: the 72 h policy skips it
    assert rows["B007Z07UK6"]["price_jpy"] == 350
    assert rows["B000OQA3N4"]["price_jpy"] == 1000  # 9.99 + 3.99 shipping loses to 10.00
    no_offer = rows["B00KFRNZY6"]
    assert (no_offer["status"], no_offer["in_stock"], no_offer["price_jpy"]) == (
        "no_offer", False, None,
    )  # fmt: skip


def test_a_foreign_currency_is_an_error_never_a_price_or_out_of_stock() -> None:
    data = example("getItemOffersBatch.200.0.json")
    asins = [
        r["uri"].split("/")[-2] for r in data["request"]["parameters"]["body"]["value"]["requests"]
    ]
    rows = by_asin(as_snapshot(
        observations_from_item_offers(data["response"], asins, OfferPolicy(), "JPY"),
        "item_offers",
    ))  # fmt: skip
    priced = [r for a, r in rows.items() if a != "B00KFRNZY6"]
    assert {(r["status"], r["error_code"]) for r in priced} == {("api_error", "UnexpectedCurrency")}
    assert all(r["in_stock"] is None and r["price_jpy"] is None for r in priced)


def test_official_competitive_pricing_examples_parse_with_points_deducted() -> None:
    data = example("getCompetitivePricing.200.2.json")
    rows = by_asin(as_snapshot(
        observations_from_competitive_pricing(
            data["response"]["payload"], ["B00V5DG6IQ", "B00551Q3CS"], "USD"
        ),
        "competitive_pricing",
    ))  # fmt: skip
    box = rows["B00V5DG6IQ"]
    # New B2C buy box: listing 130 + shipping 10 − points 10 (USD) = 130.00
    assert (box["status"], box["in_stock"], box["price_jpy"], box["points_jpy"]) == (
        "ok", True, 13000, 1000,
    )  # fmt: skip
    assert box["offer_count"] == 3
    # only a B2B buy box: no New consumer buy box, so not in stock
    assert (rows["B00551Q3CS"]["status"], rows["B00551Q3CS"]["in_stock"]) == ("no_offer", False)
    # example 0: a competitive price that is not the New buy box (id "4545645646")
    data0 = example("getCompetitivePricing.200.0.json")
    rows0 = by_asin(as_snapshot(
        observations_from_competitive_pricing(data0["response"]["payload"], ["B00V5DG6IQ"], "USD"),
        "competitive_pricing",
    ))  # fmt: skip
    assert rows0["B00V5DG6IQ"]["status"] == "no_offer"


@pytest.mark.parametrize("payload", [{}, {"message": "x"}, None, "text"])
def test_a_non_list_payload_is_an_error_not_no_offers(payload: Any) -> None:
    with pytest.raises(SpApiTransientError):
        observations_from_competitive_pricing(payload, ["B00V5DG6IQ"], "JPY")
    with pytest.raises(SpApiTransientError):
        observations_from_item_offers(payload, ["B00V5DG6IQ"], OfferPolicy(), "JPY")


def test_an_asin_missing_from_the_answer_is_an_api_error() -> None:
    data = example("getCompetitivePricing.200.2.json")
    rows = by_asin(as_snapshot(
        observations_from_competitive_pricing(
            data["response"]["payload"], ["B00V5DG6IQ", "B0MISSING1"], "USD"
        ),
        "competitive_pricing",
    ))  # fmt: skip
    assert (rows["B0MISSING1"]["status"], rows["B0MISSING1"]["error_code"]) == (
        "api_error", "MissingFromResponse",
    )  # fmt: skip


def test_both_operations_over_the_sandbox_give_one_schema_with_points_deducted(
    start_sandbox: Any,
) -> None:
    server = start_sandbox(time_scale=1000.0)
    catalogue = requests.get(f"{server.url}/_sandbox/catalogue", timeout=5).json()
    asins = catalogue["asins"][:18] + catalogue["invalid_asins"][:2]
    ws = open_workspace(environ=server.env())
    frames = []
    for operation in ("item_offers", "competitive_pricing"):
        with SpApiClient(ws, operation) as client:
            answer = client.fetch_batch(asins)
        frames.append(as_snapshot(answer.observations, operation))
    both = pl.concat(frames)
    Snapshot.validate(both.with_columns(pl.col("run_id") + "-" + pl.col("operation")), lazy=True)
    for frame in frames:
        rows = by_asin(frame)
        assert {rows[a]["status"] for a in catalogue["invalid_asins"][:2]} == {"invalid_asin"}
    # Points: every priced item-offers row equals listing + shipping − points, and the
    # chosen offer's landed price is the sandbox's own (Amazon's) landed price.
    offers = by_asin(frames[0])
    with_points = [r for r in offers.values() if r["points_jpy"]]
    assert with_points, "the sample should hold an offer with Amazon points"
    for row in offers.values():
        if row["status"] != "ok":
            continue
        assert (
            row["price_jpy"] == row["listing_price_jpy"] + row["shipping_jpy"] - row["points_jpy"]
        )
        detail = requests.get(f"{server.url}/_sandbox/catalogue/{row['asin']}", timeout=5).json()
        landed = {(o["seller_id"], o["listing"]): o["landed"] for o in detail["offers"]}
        assert landed[(row["seller_id"], row["listing_price_jpy"])] == row["price_jpy"]
    pricing = by_asin(frames[1])
    for asin, row in pricing.items():
        if row["status"] == "ok":
            detail = requests.get(f"{server.url}/_sandbox/catalogue/{asin}", timeout=5).json()
            winner = next(o for o in detail["offers"] if o["seller_id"] == detail["buy_box"])
            assert row["price_jpy"] == winner["landed"]
            assert row["in_stock"] is True
