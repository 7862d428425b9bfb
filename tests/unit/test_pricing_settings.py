"""Pricing settings: exact decimals, partial overrides, FX sources and staleness, breaker maths."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline import pricing
from pipeline.config import parse_settings
from pipeline.errors import ConfigError
from pipeline.review import breaker_verdict
from pipeline.workbench.render import sparkline_svg

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def test_rates_are_exact_and_become_basis_points() -> None:
    s = parse_settings({"pricing": {"base": {"fee_rate": 0.066, "min_change_pct": 1.25}}})
    rule = pricing.compile_rules(s, "base", None)[0]
    assert s.pricing.base.fee_rate == Decimal("0.066")
    assert (rule.fee_bp, rule.min_change_bp) == (660, 125)
    assert [b.multiplier_bp for b in rule.bands] == [14_000, 13_000, 12_500, 12_000]


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ({"pricing": {"base": {"fee_rate": 0.12345}}}, "more than 4 decimal places"),
        ({"guardrails": {"max_price_change_pct": 12.345}}, "more than 2 decimal places"),
        ({"pricing": {"ebay": {"fee_rate": 0.5, "margin_rate": 0.5}}}, "must stay below 1"),
        (
            {
                "pricing": {
                    "base": {"bands": [{"multiplier": 1.2}, {"up_to_jpy": 5, "multiplier": 1}]}
                }
            },
            "only the last markup band",
        ),
        ({"pricing": {"ebay": {"out_of_stock_action": "hide"}}}, "quantity_zero"),
        ({"pricing": {"accounts": {"nobody": {"min_profit": 1}}}}, "names no declared account"),
        ({"pricing": {"accounts": {"shop1": {"min_proft": 1}}}}, "unknown key 'min_proft'"),
        ({"fx": {"jpy_per_usd": 150}}, "needs fx.as_of"),
    ],
)
def test_bad_pricing_keys_are_config_errors(fragment: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(fragment)


def test_a_partial_platform_section_keeps_the_other_defaults() -> None:
    s = parse_settings({"pricing": {"ebay": {"min_profit": 300}}})
    assert s.pricing.ebay.min_profit == 300
    assert s.pricing.ebay.method == "cost_plus" and s.pricing.ebay.round_ending == 99


def test_fx_missing_in_live_mode_and_stale_are_errors(tmp_path: Path) -> None:
    live = parse_settings({"mode": "live"})
    with pytest.raises(ConfigError, match="needs a JPY→USD rate"):
        pricing.resolve_fx(live, NOW)
    stale = parse_settings({"fx": {"jpy_per_usd": "151.25", "as_of": "2025-05-01"}})
    with pytest.raises(ConfigError, match=r"beyond fx\.max_age"):
        pricing.resolve_fx(stale, NOW)
    fresh = pricing.resolve_fx(parse_settings({}), NOW)
    assert fresh.source == "sandbox demo rate" and fresh.scaled == 1_500_000
    (tmp_path / "fx.csv").write_text("as_of,jpy_per_usd\n2025-05-31,abc\n")
    with pytest.raises(ConfigError, match="row 1"):
        pricing.resolve_fx(parse_settings({"fx": {"file": "fx.csv"}}), NOW, tmp_path)


def test_breaker_compares_shares_as_integers() -> None:
    s = parse_settings({})  # out of stock > 0.5, doubtful > 0.2
    stats = {
        "platform": "base",
        "listings": 10,
        "source_out_of_stock": 5,
        "source_doubtful": 2,
        "snapshot_asins": 10,
        "extracted_asins": 10,
    }
    assert breaker_verdict(stats, s) == []  # exactly at the limits: fine
    tripped = breaker_verdict({**stats, "source_out_of_stock": 6, "source_doubtful": 3}, s)
    assert len(tripped) == 2
    assert breaker_verdict({**stats, "extracted_asins": 11}, s) == [
        "the snapshot covers 10 ASINs but extract listed 11"
    ]
    assert breaker_verdict({**stats, "listings": 0, "source_out_of_stock": 0}, s) == []


def test_sparkline_draws_one_point_per_price() -> None:
    svg = sparkline_svg([1000, 1200, 900])
    assert svg.startswith("<svg") and 'data-points="3"' in svg and "¥900–¥1,200" in svg
    assert sparkline_svg([]) == ""
