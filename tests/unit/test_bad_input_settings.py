"""Settings that the pricing SQL could not hold are refused with the bound (issue 14)."""

from __future__ import annotations

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


def test_a_percentage_at_the_bound_is_accepted() -> None:
    settings = parse_settings({"guardrails": {"max_price_change_pct": 10_000}})
    assert settings.guardrails.max_price_change_pct == 10_000
