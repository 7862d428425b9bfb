"""The SP-API quota pool: which operations one fetch spreads its ASINs over, and the
arithmetic of their combined quota.

Stage: fetch (and the urgency selection that sizes a budgeted run). Reads nothing; pure
arithmetic over :class:`Lane` values.

Amazon's usage plans are per operation (per selling-partner account and application pair),
so two operations whose answers carry the same facts can be used at the same time, each at
its own rate. A :class:`Lane` is one such operation: how many ASINs one call answers, its
rate (the documented default, or the one ``x-amzn-RateLimit-Limit`` announced) and its
burst. With burst ``b`` and rate ``r`` a lane can make ``b + floor(T * r)`` calls in ``T``
seconds (the burst at once, then one per interval), so:

* :func:`capacity` — ASINs the pool can answer within ``T`` seconds of quota time:
  ``sum(lane.batch * (lane.burst + floor(T * lane.rate)))``;
* :func:`floor_seconds` — the **pooled quota floor**: the least ``T`` whose capacity holds
  ``n`` ASINs. For one lane it is today's floor ``(ceil(n / batch) - burst) / rate``;
* :func:`split` — how many ASINs each lane answers when they all finish by that floor.

``item_offers`` pools getItemOffersBatch (20 ASINs, 0.1 req/s: 2 ASINs/s) with getItemOffers
(1 ASIN, 0.5 req/s: 0.5 ASINs/s): both answer with the same offer model (``GetOffersResult``),
so the offer policy applies alike, and 10,000 ASINs need about 4,000 s instead of 4,990 s.
getCompetitiveSummary (2022-05-01) is not pooled: its ``Offer`` carries Prime, fulfilment
type, listing price, shipping and points, but no shipping time (``availabilityType``,
``maximumHours``), which the default offer policy (``availability = ["NOW"]``,
``max_shipping_hours = 72``) needs (docs/fetch.md, "Pooled quotas").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

# Snapshot ``operation`` values (one per lane) → Amazon operationId, ASINs per call,
# documented default rate (requests/s) and burst.
LANES: dict[str, tuple[str, int, float, int]] = {
    "item_offers": ("getItemOffersBatch", 20, 0.1, 1),
    "item_offers_single": ("getItemOffers", 1, 0.5, 1),
    "competitive_pricing": ("getCompetitivePricing", 20, 0.5, 1),
}
# Which lanes each configured ``[amazon] operation`` pools (``[amazon] pool = true``).
POOLS: dict[str, tuple[str, ...]] = {
    "item_offers": ("item_offers", "item_offers_single"),
    "competitive_pricing": ("competitive_pricing",),
}


@dataclass(frozen=True)
class Lane:
    """One SP-API operation of the pool, paced on its own bucket."""

    operation: str  # snapshot ``operation`` value: item_offers | item_offers_single | ...
    operation_id: str  # Amazon's operationId (the sandbox ledger's key)
    batch: int  # ASINs per call
    rate: float  # requests/s
    burst: int

    @property
    def asins_per_second(self) -> float:
        return self.batch * self.rate

    def calls_within(self, seconds: float) -> int:
        """Calls this lane can make within ``seconds`` of quota time (burst included)."""
        return self.burst + math.floor(max(seconds, 0.0) * self.rate + 1e-9)


def lane(operation: str, rate: float | None = None, batch: int | None = None) -> Lane:
    """The lane of snapshot operation ``operation`` at ``rate`` (default: documented)."""
    operation_id, max_batch, default_rate, burst = LANES[operation]
    return Lane(
        operation=operation,
        operation_id=operation_id,
        batch=min(batch or max_batch, max_batch),
        rate=rate if rate is not None else default_rate,
        burst=burst,
    )


def lanes_for(
    operation: str,
    *,
    pool: bool = True,
    batch_size: int = 20,
    rates: Mapping[str, float] | None = None,
) -> list[Lane]:
    """The lanes one fetch of configured ``operation`` uses: every pooled one with ``pool``,
    else the operation's own. ``rates`` (operation → requests/s, e.g. the last run's learned
    ones) replace the documented defaults; ``batch_size`` caps the batched lanes."""
    names = POOLS[operation] if pool else (operation,)
    rates = rates or {}
    return [lane(name, rates.get(name), batch_size if LANES[name][1] > 1 else 1) for name in names]


def pooled_rate(lanes: Sequence[Lane]) -> float:
    """ASINs per second of the pool in steady state."""
    return sum(lane.asins_per_second for lane in lanes)


def capacity(seconds: float, lanes: Sequence[Lane]) -> int:
    """ASINs the pool can answer within ``seconds`` of quota time."""
    return sum(lane.batch * lane.calls_within(seconds) for lane in lanes)


def floor_seconds(n_asins: int, lanes: Sequence[Lane]) -> float:
    """The least quota time in which the pool can answer ``n_asins`` (0 for what the bursts
    answer at once): the pooled quota floor."""
    if n_asins <= 0 or capacity(0.0, lanes) >= n_asins:
        return 0.0
    # the capacity steps at multiples of each lane's interval: the answer is one of them
    low = 0.0
    high = (n_asins / pooled_rate(lanes)) + max(1.0 / lane.rate for lane in lanes)
    candidates: set[float] = set()
    for one in lanes:
        interval = 1.0 / one.rate
        first = max(1, math.floor(low / interval))
        last = math.ceil(high / interval)
        candidates.update(k * interval for k in range(first, last + 1))
    for moment in sorted(candidates):
        if capacity(moment, lanes) >= n_asins:
            return moment
    raise AssertionError("the pool's capacity grows without bound")  # pragma: no cover


def single_floor_seconds(n_asins: int, one: Lane) -> float:
    """Today's floor of one lane alone: ``(ceil(n / batch) - burst) / rate``."""
    return floor_seconds(n_asins, [one])


def split(n_asins: int, lanes: Sequence[Lane]) -> dict[str, int]:
    """ASINs per lane so that every lane is done by :func:`floor_seconds` of ``n_asins``:
    each lane takes what it can answer by then, the faster lanes first, the last one the
    rest."""
    moment = floor_seconds(n_asins, lanes)
    left = n_asins
    shares: dict[str, int] = {}
    for one in sorted(lanes, key=lambda x: -x.asins_per_second):
        take = min(left, one.batch * one.calls_within(moment))
        shares[one.operation] = take
        left -= take
    return shares


def scaled_rates(operation: str, rate: float, names: Sequence[str]) -> dict[str, float]:
    """The rates of lanes ``names`` when lane ``operation`` runs at ``rate``: each documented
    default scaled by the same factor (a sandbox's time scale speeds every operation alike)."""
    factor = rate / LANES[operation][2]
    return {name: LANES[name][2] * factor for name in names}


def with_rates(lanes: Sequence[Lane], rates: Mapping[str, float]) -> list[Lane]:
    """``lanes`` with the rates ``rates`` names (operation → requests/s) put in."""
    return [replace(one, rate=rates.get(one.operation, one.rate)) for one in lanes]
