"""Settings that the pricing SQL could not hold are refused with the bound (issue 14)."""

from __future__ import annotations

import re

import pytest

from pipeline.config import parse_settings
from pipeline.errors import ConfigError


@pytest.mark.parametrize(
    "document",
    [
        {"guardrails": {"max_price_change_pct": 10**12}},
        {"pricing": {"base": {"min_change_pct": "10000.01"}}},
    ],
    ids=["max_price_change_pct", "min_change_pct"],
)
def test_a_percentage_beyond_the_sql_s_range_is_refused_with_the_bound(document) -> None:
    with pytest.raises(ConfigError, match=r"is above 10,000 %, the most invsync accepts"):
        parse_settings(document)
    at_bound = parse_settings({"guardrails": {"max_price_change_pct": 10_000}})
    assert at_bound.guardrails.max_price_change_pct == 10_000


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"pricing": {"base": {"shipping_jpy": 9 * 10**18}}}, "pricing.base.shipping_jpy"),
        ({"pricing": {"ebay": {"packing_jpy": 10**17}}}, "pricing.ebay.packing_jpy"),
        ({"pricing": {"base": {"bands": [{"multiplier": 1.2, "add_jpy": 10**15}]}}},
         "pricing.base.bands[0].add_jpy"),
        ({"pricing": {"base": {"bands": [{"multiplier": 10**15}]}}},
         "pricing.base.bands[0].multiplier"),
        ({"pricing": {"base": {"restock_quantity": 2**31}}}, "pricing.base.restock_quantity"),
        ({"pricing": {"ebay": {"min_profit": -(10**18)}}}, "pricing.ebay.min_profit"),
    ],
    ids=["shipping_jpy", "packing_jpy", "add_jpy", "multiplier", "restock_quantity", "min_profit"],
)  # fmt: skip
def test_a_rule_amount_beyond_the_sql_s_range_is_refused_naming_key_and_bound(
    document, key
) -> None:
    """The pricing SQL adds these to costs and multiplies them by basis points in BIGINT:
    an unbounded one would stop `transform` for every listing."""
    with pytest.raises(ConfigError, match=rf"key '{re.escape(key)}' is malformed: .*(than|to) "):
        parse_settings(document)


def test_rule_bounds_are_the_import_bounds() -> None:
    from pipeline import config, schemas

    assert config.MAX_RULE_AMOUNT == schemas.MAX_PRICE_JPY == schemas.MAX_PRICE_CENTS
    assert config.MAX_RULE_QUANTITY == schemas.MAX_QUANTITY
