"""The official API contracts the tests validate against, in ``tests/contracts/``.

One place reads them, so no test reaches outside the checkout (``tests/contracts/README.md``
names each file's source and licence).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
SPAPI = CONTRACTS / "sp-api"
SPAPI_EXAMPLES = SPAPI / "sandbox-examples"
EBAY_INVENTORY = CONTRACTS / "ebay" / "sell_inventory_v1_oas3.json"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def spapi_pricing_v0() -> dict[str, Any]:
    """Amazon's Product Pricing v0 model (Swagger 2.0)."""
    return _json(SPAPI / "productPricingV0.json")  # type: ignore[no-any-return]


@cache
def ebay_inventory() -> dict[str, Any]:
    """eBay's Sell Inventory v1 OpenAPI 3 document."""
    return _json(EBAY_INVENTORY)  # type: ignore[no-any-return]


def spapi_example(name: str) -> dict[str, Any]:
    """One official sandbox example, e.g. ``getItemOffersBatch.200.0.json``."""
    return _json(SPAPI_EXAMPLES / name)  # type: ignore[no-any-return]


def spapi_example_names() -> list[str]:
    return sorted(p.name for p in SPAPI_EXAMPLES.glob("*.json"))
