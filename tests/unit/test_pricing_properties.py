"""Property tests of pricing: the SQL transform agrees with the Python reference on every row
(protection included), no price that is not held earns less than the minimum profit (checked
with exact fractions), and once what the system does on its own — the rows not held and the
protective actions of the held ones — is applied, no buyable listing earns under its
minimum or lacks an Amazon source, and a second transform asks for nothing more on its own."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import pricing
from pipeline.config import Settings, parse_settings
from pipeline.transform import compute_diffs
from pipeline.warehouse import apply_migrations
from tests.sql.frames import insert_base, insert_ebay, insert_run, observation, write_snapshot

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
RUN_ID = "20250601T000000Z-c0ffee"
ASINS = [f"B00000000{i}" for i in range(1, 8)]
STATUSES = [
    "ok",
    "ok",
    "ok",
    "no_offer",
    "filtered_out",
    "api_error",
    "unknown",
    "invalid_asin",
    "fallback",
]
# 30 worlds each through the real SQL: part of make test, not of make test-fast
pytestmark = pytest.mark.slow

PROPERTY_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def price_rules(draw: st.DrawFn, platform: str) -> dict[str, Any]:
    method = draw(st.sampled_from(["markup", "cost_plus"]))
    limits = sorted(draw(st.sets(st.integers(1, 30_000), max_size=3)))
    bands = [
        {
            "up_to_jpy": limit,
            "multiplier": str(Decimal(draw(st.integers(5_000, 30_000))) / 10_000),
            "add_jpy": draw(st.integers(0, 500)),
        }
        for limit in limits
    ]
    bands.append({"multiplier": str(Decimal(draw(st.integers(5_000, 30_000))) / 10_000)})
    fee, duty, margin = (
        draw(st.integers(0, 2_500)),
        draw(st.integers(0, 800)),
        draw(st.integers(0, 3_000)),
    )
    rounding = draw(st.sampled_from(["none", "up_to_unit", "up_to_ending"]))
    unit = draw(st.sampled_from([1, 10, 50, 100, 1000]))
    low = draw(st.none() | st.integers(1, 3_000))
    high = draw(st.none() | st.integers(1, 80_000))
    if low is not None and high is not None and low > high:
        low, high = high, low
    return {
        "method": method,
        "bands": bands,
        "shipping_jpy": draw(st.integers(0, 3_000)),
        "packing_jpy": draw(st.integers(0, 300)),
        "fee_rate": str(Decimal(fee) / 10_000),
        "duty_rate": str(Decimal(duty) / 10_000),
        "margin_rate": str(Decimal(margin) / 10_000),
        "rounding": rounding,
        "round_unit": unit,
        "round_ending": draw(st.integers(0, unit - 1)),
        "min_price": low,
        "max_price": high,
        "min_change": draw(st.integers(0, 100)),
        "min_change_pct": str(Decimal(draw(st.integers(0, 500))) / 100),  # percent, ≤ 5 %
        "min_profit": draw(st.integers(-200, 600)),
        "restock_quantity": draw(st.integers(1, 5)),
        "out_of_stock_action": (
            draw(st.sampled_from(["stock_zero", "hide"])) if platform == "base" else "quantity_zero"
        ),
    }


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """Rules, FX, guardrails, listings on both platforms, and one snapshot."""
    config = {
        "pricing": {"base": draw(price_rules("base")), "ebay": draw(price_rules("ebay"))},
        "fx": {
            "jpy_per_usd": str(Decimal(draw(st.integers(800_000, 2_000_000))) / 10_000),
            "as_of": AS_OF - timedelta(hours=1),
        },
        "guardrails": {
            "max_price_change_pct": draw(st.integers(5, 100)),
            "max_source_age": f"{draw(st.integers(1, 48))}h",
        },
    }
    base = [
        {
            "account_id": draw(st.sampled_from(["shop1", "shop2"])),
            "item_id": n + 1,
            "asin": draw(st.sampled_from(ASINS)),
            "price_jpy": draw(st.integers(1, 60_000)),
            "stock": draw(st.integers(0, 4)),
            "visible": draw(st.booleans()),
            "drift": AS_OF if draw(st.booleans()) and draw(st.booleans()) else None,
        }
        for n in range(draw(st.integers(0, 10)))
    ]
    ebay = [
        {
            "account_id": "ebay-main",
            "sku": f"SKU-{n}",
            "asin": draw(st.sampled_from(ASINS)),
            "price_cents": draw(st.integers(1, 60_000)),
            "quantity": draw(st.integers(0, 4)),
            "drift": None,
        }
        for n in range(draw(st.integers(0, 10)))
    ]
    snapshot = []
    for asin in ASINS:
        if draw(st.integers(0, 9)) == 0:
            continue  # missing from the snapshot
        status = draw(st.sampled_from(STATUSES))
        snapshot.append(
            observation(
                asin,
                status=status,
                price_jpy=draw(st.integers(1, 40_000)),
                in_stock=draw(st.booleans()) if status in ("ok", "fallback") else None,
                fetched_at=AS_OF - timedelta(minutes=draw(st.integers(0, 60 * 50))),
                fallback_age_seconds=float(draw(st.integers(0, 50 * 3600))),
            )
        )
    return {"config": config, "base": base, "ebay": ebay, "snapshot": snapshot}


def _priced(world: dict[str, Any]) -> tuple[Settings, pricing.FxRate, dict[str, Any]]:
    config = world["config"]
    s = parse_settings(config, "property test")
    fx = pricing.resolve_fx(s, AS_OF)
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = write_snapshot(Path(tmp), RUN_ID, world["snapshot"], now=AS_OF)
        con = _warehouse()
        con.execute("delete from listings_base; delete from listings_ebay")
        insert_base(con, world["base"])
        insert_ebay(con, world["ebay"])
        computed = compute_diffs(
            con, run_id=RUN_ID, snapshot=snapshot, settings=s, as_of=AS_OF, fx=fx
        )
    return s, fx, computed.frames


@cache
def _warehouse() -> duckdb.DuckDBPyConnection:
    """One in-memory warehouse for all examples (migrating per example would dominate)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    apply_migrations(con)
    insert_run(con, RUN_ID, None)
    return con


def _reference(world: dict[str, Any], s: Settings, fx: pricing.FxRate):
    rules = {
        r.account_id: r
        for platform in ("base", "ebay")
        for r in pricing.compile_rules(s, platform, fx)
    }
    observations = {
        row["asin"]: pricing.Observation(
            row["status"],
            row["price_jpy"],
            row["in_stock"],
            row["fetched_at"],
            row["fallback_age_seconds"],
        )
        for row in world["snapshot"]
    }
    listings = [
        pricing.Listing(
            "base",
            r["account_id"],
            str(r["item_id"]),
            r["asin"],
            r["price_jpy"],
            r["stock"],
            r["visible"],
            r["drift"] is not None,
        )
        for r in world["base"]
    ] + [
        pricing.Listing(
            "ebay",
            r["account_id"],
            r["sku"],
            r["asin"],
            r["price_cents"],
            r["quantity"],
            True,
            False,
        )
        for r in world["ebay"]
    ]
    guard = pricing.compile_guardrails(s)
    return pricing.reference_diff(listings, observations, rules, guard, AS_OF), rules


@PROPERTY_SETTINGS
@given(world=worlds())
def test_sql_agrees_with_the_reference_on_every_row(world: dict[str, Any]) -> None:
    s, fx, frames = _priced(world)
    expected, _rules = _reference(world, s, fx)
    got = {}
    for row in frames["base"].to_dicts():
        got[(row["account_id"], row["listing_key"])] = (
            row["change_kind"],
            row["new_price_minor"],
            row["new_quantity"],
            row["new_visible"],
            row["target_price_minor"],
            row["expected_profit_minor"],
            row["held"],
            row["hold_reason"],
            row["protection"],
            row["protection_reason"],
        )
    for row in frames["ebay"].to_dicts():
        got[(row["account_id"], row["listing_key"])] = (
            row["change_kind"],
            row["new_price_minor"],
            row["new_quantity"],
            True,  # eBay has no hidden state (the diff's new_visible is null there)
            row["target_price_minor"],
            row["expected_profit_minor"],
            row["held"],
            row["hold_reason"],
            row["protection"],
            row["protection_reason"],
        )
    want = {
        key: (
            d.change_kind,
            d.new_price,
            d.new_quantity,
            d.new_visible,
            d.target_price,
            d.expected_profit,
            d.held,
            d.hold_reason,
            d.protection,
            d.protection_reason,
        )
        for key, d in expected.items()
    }
    assert got == want


@PROPERTY_SETTINGS
@given(world=worlds())
def test_no_price_that_is_not_held_earns_under_the_minimum(world: dict[str, Any]) -> None:
    """Exact arithmetic, independent of the integer rounding: price × (1 − fee − duty) −
    (cost + shipping + packing) converted ≥ min_profit for every row not held."""
    s, fx, frames = _priced(world)
    _, rules = _reference(world, s, fx)
    for platform in ("base", "ebay"):
        for row in frames[platform].filter(~frames[platform]["held"]).to_dicts():
            if row["change_kind"] == "out_of_stock":
                continue  # nothing is sold at a price while out of stock
            rule = rules[row["account_id"]]
            keep = 1 - Fraction(rule.fee_bp + rule.duty_bp, 10_000)
            per_yen = Fraction(1) if platform == "base" else 100 / Fraction(fx.jpy_per_usd)
            costs = (row["cost_jpy"] + rule.shipping_jpy + rule.packing_jpy) * per_yen
            assert row["new_price_minor"] * keep - costs >= rule.min_profit, row


def _apply_automatic(world: dict[str, Any], frames: dict[str, Any]) -> None:
    """Apply to the world's listings what a load sends without a person: every row not
    held, and the protective action of every held one (the raise itself, or a pause at
    quantity 0 with the price kept) — as pipeline/review.py protective_rows builds them."""
    for platform, key, price, quantity in (
        ("base", "item_id", "price_jpy", "stock"),
        ("ebay", "sku", "price_cents", "quantity"),
    ):
        rows = {row["listing_key"]: row for row in frames[platform].to_dicts()}
        for listing in world[platform]:
            row = rows.get(str(listing[key]))
            if row is None:
                continue
            if not row["held"] or row["protection"] == "raise":
                listing.update({price: row["new_price_minor"], quantity: row["new_quantity"]})
                if platform == "base":
                    listing["visible"] = row["new_visible"]
            elif row["protection"] == "pause":
                listing[quantity] = 0


@PROPERTY_SETTINGS
@given(world=worlds())
def test_after_the_automatic_actions_no_buyable_listing_loses_money(world: dict[str, Any]) -> None:
    """Invariant 11: whatever waits for a person, once a load has sent what it sends on its
    own, every listing that is buyable and whose ASIN Amazon reports in stock earns at least
    its minimum profit at its price (exact fractions), and none is buyable while Amazon
    reports its ASIN out of stock (unless the change that says so is held and not
    protected: a doubtful source never pauses)."""
    s, fx, frames = _priced(world)
    _, rules = _reference(world, s, fx)
    _apply_automatic(world, frames)
    observations = {row["asin"]: row for row in world["snapshot"]}
    for platform, price, quantity in (
        ("base", "price_jpy", "stock"),
        ("ebay", "price_cents", "quantity"),
    ):
        for listing in world[platform]:
            rule = rules.get(listing["account_id"])
            obs = observations.get(listing["asin"])
            if rule is None or obs is None or listing[quantity] == 0:
                continue
            if platform == "base" and not listing["visible"] and rule.out_of_stock_action == "hide":
                continue
            says = pricing.source_says(
                pricing.Observation(
                    obs["status"], obs["price_jpy"], obs["in_stock"], obs["fetched_at"],
                    obs["fallback_age_seconds"],
                )
            )  # fmt: skip
            if says == "out_of_stock":
                raise AssertionError(f"buyable while Amazon cannot supply it: {listing}")
            if says != "in_stock":
                continue
            keep = 1 - Fraction(rule.fee_bp + rule.duty_bp, 10_000)
            per_yen = Fraction(1) if platform == "base" else 100 / Fraction(fx.jpy_per_usd)
            costs = (obs["price_jpy"] + rule.shipping_jpy + rule.packing_jpy) * per_yen
            assert listing[price] * keep - costs >= rule.min_profit, listing


@PROPERTY_SETTINGS
@given(world=worlds())
def test_the_automatic_actions_settle(world: dict[str, Any]) -> None:
    """Apply what a load sends on its own, transform again: every row left waits for a
    person (held) and none asks for a protective action."""
    _s, _fx, frames = _priced(world)
    _apply_automatic(world, frames)
    _s, _fx, again = _priced(world)
    for platform in ("base", "ebay"):
        assert again[platform].filter(~again[platform]["held"]).height == 0, again[
            platform
        ].to_dicts()
        assert again[platform]["protection"].null_count() == again[platform].height
