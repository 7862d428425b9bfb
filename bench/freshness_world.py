"""The truth the freshness bench measures against: the Amazon world replayed standalone, and
the platforms' listings as the sandbox built them.

Stage: bench. Reads nothing on disk: the world follows from (catalogue seed, ASINs, process
spec, time) alone (``pipeline/sandbox/process.py``), the demo shops and eBay account from
the catalogue seed (``pipeline/sandbox/thebase.py``, ``pipeline/sandbox/ebay.py``). Writes
nothing.

* :func:`replay` moves a fresh ``Catalogue(seed, n)`` through the process to the end of the
  day and keeps, per ASIN, the true Amazon cost in time order: the landed price of the
  offer the **default offer policy** picks, read through the real parser
  (``pipeline.clients.spapi.observation_from_offers`` over the sandbox's own
  ``GetOffersResult``), ``None`` while no offer passes the policy (no supply); and the
  lowest landed price of **any** offer (the replaced design's reading).
* :func:`platform_listings` is every BASE item and eBay listing the sandbox starts with,
  before any push: key, ASIN, price, stock; :func:`listing_states` applies the sandbox's
  change ledger to them and returns each listing's states in time order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.freshness_metrics import Change
from pipeline.clients.spapi import observation_from_offers
from pipeline.config import OfferPolicy
from pipeline.sandbox.catalogue import Catalogue
from pipeline.sandbox.process import ProcessSpec, WorldProcess
from pipeline.sandbox.spapi import offers_result

MARKETPLACE_ID = "A1VC38T7YXB528"  # Amazon.co.jp
DEFAULT_POLICY = OfferPolicy()
# the replaced design took the lowest price of any offer (bench/replaced_design.py)
ANY_OFFER = OfferPolicy(
    availability=["NOW", "FUTURE_WITHOUT_DATE", "FUTURE_WITH_DATE"], max_shipping_hours=None
)

Steps = list[tuple[float, int | None]]  # (from sandbox second, yen or None)


@dataclass
class World:
    """The replayed day: its changes and each ASIN's true cost and any-offer price."""

    asins: list[str]
    changes: list[Change] = field(default_factory=list)
    cost: dict[str, Steps] = field(default_factory=dict)  # default offer policy
    any_price: dict[str, Steps] = field(default_factory=dict)  # any offer (replaced design)
    rate_class: dict[str, int] = field(default_factory=dict)  # index into spec.classes


def _prices(catalogue: Catalogue, asin: str) -> tuple[int | None, int | None]:
    result = offers_result(catalogue, asin, MARKETPLACE_ID, "New")
    cost = observation_from_offers(asin, result, DEFAULT_POLICY, "JPY").price_jpy
    cheapest = observation_from_offers(asin, result, ANY_OFFER, "JPY").price_jpy
    return cost, cheapest


def replay(seed: int, n_asins: int, spec: ProcessSpec, horizon: float) -> World:
    """The world from sandbox time 0 to ``horizon`` (seconds), as every design's sandbox
    lives it."""
    catalogue = Catalogue(seed, n_asins)
    process = WorldProcess(catalogue, spec)
    world = World(asins=list(catalogue.asins))
    for asin in world.asins:
        cost, cheapest = _prices(catalogue, asin)
        world.cost[asin] = [(0.0, cost)]
        world.any_price[asin] = [(0.0, cheapest)]
        world.rate_class[asin] = process.rate_class(asin)[0]
    # one change at a time, so each ASIN's prices are read right after its own change
    while True:
        due = process._heap[0][0] if process._heap else horizon + 1
        if due > horizon:
            break
        for change in process.advance_to(due):
            world.changes.append(Change(change.asin, change.t, change.kind))
            cost, cheapest = _prices(catalogue, change.asin)
            world.cost[change.asin].append((change.t, cost))
            world.any_price[change.asin].append((change.t, cheapest))
    return world


@dataclass(frozen=True)
class Listing:
    """One platform listing as the sandbox built it."""

    platform: str  # base | ebay
    account: str
    key: str  # BASE item id, eBay SKU
    asin: str
    price: int  # yen on BASE, US cents on eBay
    stock: int  # BASE stock / eBay quantity
    visible: bool


def platform_listings(seed: int, n_asins: int) -> list[Listing]:
    """Every demo listing the sandbox starts with (built the same way, from the seed)."""
    from pipeline.sandbox import ebay, thebase
    from pipeline.sandbox.state import SandboxState

    state = SandboxState(seed=seed)
    state.apis["catalogue"] = Catalogue(seed, n_asins)
    out: list[Listing] = []
    for account, shop in sorted(thebase.build_demo_shops(state, 0).items()):
        for item_id, item in sorted(shop.items.items()):
            out.append(
                Listing(
                    "base",
                    account,
                    str(item_id),
                    str(item.identifier),
                    item.price,
                    item.stock,
                    bool(item.visible),
                )
            )
    for sku, listing in sorted(ebay.build_demo_listings(state).items()):
        out.append(
            Listing(
                "ebay",
                ebay.EBAY_ACCOUNT,
                sku,
                listing.asin,
                listing.price_cents,
                listing.buyable(),
                True,
            )
        )
    return out


def listing_states(
    listings: Iterable[Listing],
    changes: Sequence[Mapping[str, Any]],
    to_time: Callable[[float], float],
    fx_jpy_per_usd: float,
) -> dict[tuple[str, str, str], list[tuple[float, float | None, bool]]]:
    """Each listing's (from sandbox second, price in yen, buyable) in time order, from its
    state at build and every change in the sandbox's ledger (``to_time`` maps a ledger
    ``t`` to sandbox seconds; the state at build counts from -inf). eBay prices are converted to yen at ``fx_jpy_per_usd``."""
    current: dict[tuple[str, str, str], dict[str, Any]] = {}
    states: dict[tuple[str, str, str], list[tuple[float, float | None, bool]]] = {}
    for listing in listings:
        key = (listing.platform, listing.account, listing.key)
        current[key] = {
            "price": listing.price, "stock": listing.stock, "visible": listing.visible,
            "ended": False,
        }  # fmt: skip
        states[key] = [(float("-inf"), *_view(listing.platform, current[key], fx_jpy_per_usd))]
    for change in changes:
        key = (str(change["platform"]), str(change["account"]), str(change["key"]))
        if key not in current:
            continue
        now = current[key]
        fields = change["changes"]
        for name in ("price", "stock", "visible"):
            if name in fields:
                now[name] = fields[name]
        if "quantity" in fields:
            now["stock"] = fields["quantity"]
        if fields.get("ended"):
            now["ended"] = True
        states[key].append((to_time(float(change["t"])), *_view(key[0], now, fx_jpy_per_usd)))
    return states


def _view(platform: str, now: Mapping[str, Any], fx: float) -> tuple[float | None, bool]:
    price = now["price"]
    if platform == "ebay":
        yen = None if price is None else int(price) * fx / 100
        return yen, int(now["stock"]) > 0 and not now["ended"]
    return (None if price is None else float(price)), int(now["stock"]) > 0 and bool(
        int(now["visible"])
    )


def asin_of_listing(listings: Iterable[Listing]) -> dict[tuple[str, str], str]:
    """(platform, key) → ASIN, to map the change ledger's pushes to ASINs."""
    return {(listing.platform, listing.key): listing.asin for listing in listings}


def markup_yen(cost: int) -> int:
    """The replaced system's tiered markup (≤1,000 ×1.4, ≤5,000 ×1.3, ≤10,000 ×1.25, above
    ×1.2), rounded up to 10 yen: what it priced a listing at from the cost it read."""
    percent = 140 if cost <= 1_000 else 130 if cost <= 5_000 else 125 if cost <= 10_000 else 120
    price = -(-cost * percent // 100)  # ceil(cost × multiplier), whole yen
    return -(-price // 10) * 10
