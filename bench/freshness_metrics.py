"""Freshness figures from ledgers: reaction latency, loss exposure, observation age.

Stage: bench (``bench/freshness_day.py`` feeds it). Reads nothing: every function takes
plain sequences of times (sandbox seconds, one clock for all of them) and returns numbers.
Writes nothing.

Definitions (docs/fetch.md, "How make bench measures freshness"):

* **Reaction latency** of an Amazon change of ASIN ``a`` at ``t_c``: the first SP-API
  observation of ``a`` at or after ``t_c`` (``t_o``), then the first push to any listing of
  ``a`` at or after ``t_o`` and before the next observation of ``a`` (the run that observed
  it pushes before the next run observes again); latency = push − ``t_c``. A change is
  *superseded* when the next change of ``a`` comes before ``t_o`` (never seen on its own),
  *unobserved* when no observation follows it before the end, *not pushed* when the
  observation that saw it led to no push (nothing to change on the platform, or held).
* **Loss exposure**: seconds during which a listing was buyable (quantity > 0, shown) and
  either priced below the true Amazon cost at that moment or without any Amazon supply.
* **Observation age**: the largest gap between consecutive observations of an ASIN,
  counting from its last observation before the window and up to the window's end.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

KINDS = ("price", "stockout", "restock")


@dataclass(frozen=True)
class Change:
    """One Amazon change (the process ledger), in sandbox seconds."""

    asin: str
    t: float
    kind: str  # price | stockout | restock


@dataclass
class Reactions:
    """What became of the changes of one kind."""

    latencies: list[float] = field(default_factory=list)  # reflected ones, seconds
    superseded: int = 0
    unobserved: int = 0
    not_pushed: int = 0

    @property
    def total(self) -> int:
        return len(self.latencies) + self.superseded + self.unobserved + self.not_pushed

    def quantile(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least ``q`` of them at or
    below it); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _first_at_or_after(times: Sequence[float], t: float) -> float | None:
    index = bisect.bisect_left(times, t)
    return times[index] if index < len(times) else None


def _first_after(times: Sequence[float], t: float) -> float | None:
    index = bisect.bisect_right(times, t)
    return times[index] if index < len(times) else None


def reactions(
    changes: Iterable[Change],
    observations: Mapping[str, Sequence[float]],
    pushes: Mapping[str, Sequence[float]],
    end: float,
) -> dict[str, Reactions]:
    """Each change's fate by kind. ``observations`` / ``pushes``: ASIN → sorted times;
    only times before ``end`` count."""
    by_asin: dict[str, list[Change]] = {}
    for change in changes:
        by_asin.setdefault(change.asin, []).append(change)
    out = {kind: Reactions() for kind in KINDS}
    for asin, own in by_asin.items():
        own.sort(key=lambda c: c.t)
        seen = [t for t in observations.get(asin, ()) if t < end]
        pushed = [t for t in pushes.get(asin, ()) if t < end]
        for number, change in enumerate(own):
            bucket = out.setdefault(change.kind, Reactions())
            observed = _first_at_or_after(seen, change.t)
            if observed is None:
                bucket.unobserved += 1
                continue
            following = own[number + 1].t if number + 1 < len(own) else math.inf
            if following <= observed:
                bucket.superseded += 1
                continue
            again = _first_after(seen, observed)
            push = _first_at_or_after(pushed, observed)
            if push is None or (again is not None and push >= again):
                bucket.not_pushed += 1
                continue
            bucket.latencies.append(push - change.t)
    return out


def _buyable_spans(
    listing: Sequence[tuple[float, float | None, bool]],
    cost: Sequence[tuple[float, int | None]],
    start: float,
    end: float,
) -> Iterator[tuple[float, float | None, int | None]]:
    """(seconds, our price, the Amazon cost or None) of each stretch of [start, end) in
    which the listing was buyable; the first entry of each sequence is the state at or
    before ``start``."""
    cuts = sorted({start, end, *(t for t, *_ in listing), *(t for t, _ in cost)})
    cuts = [t for t in cuts if start <= t <= end]
    listing_times = [t for t, *_ in listing]
    cost_times = [t for t, _ in cost]
    for left, right in itertools.pairwise(cuts):
        li = bisect.bisect_right(listing_times, left) - 1
        ci = bisect.bisect_right(cost_times, left) - 1
        if li < 0 or ci < 0 or not listing[li][2]:
            continue
        yield right - left, listing[li][1], cost[ci][1]


def exposure_seconds(
    listing: Sequence[tuple[float, float | None, bool]],
    cost: Sequence[tuple[float, int | None]],
    start: float,
    end: float,
) -> tuple[float, float]:
    """(seconds below cost, seconds without supply) of one listing within [start, end).

    ``listing``: its states in time order, ``(from t, price in yen, buyable)``; ``cost``:
    the ASIN's true Amazon cost in time order, ``(from t, yen or None for no supply)``.
    The first entry of each is the state at or before ``start``."""
    below = missing = 0.0
    for seconds, price, supply in _buyable_spans(listing, cost, start, end):
        if supply is None:
            missing += seconds
        elif price is not None and price < supply:
            below += seconds
    return below, missing


def max_observation_age(observations: Sequence[float], start: float, end: float) -> float:
    """The largest age an ASIN's newest observation reached within [start, end]: gaps
    between consecutive observations, from the last one before ``start`` (or ``start`` if
    there is none) to the end."""
    ordered = sorted(observations)
    before = [t for t in ordered if t <= start]
    inside = [t for t in ordered if start < t <= end]
    points = [before[-1] if before else start, *inside]
    gaps = [b - a for a, b in itertools.pairwise(points)]
    gaps.append(end - points[-1])
    return max(gaps)


NO_SUPPLY_CAUSES = ("never_supplied", "not_yet_observed", "observed_not_pushed")


def no_supply_causes(
    listing: Sequence[tuple[float, float | None, bool]],
    cost: Sequence[tuple[float, int | None]],
    observations: Sequence[float],
    start: float,
    end: float,
) -> dict[str, float]:
    """The no-supply seconds of :func:`exposure_seconds`, by cause:

    * ``never_supplied``: the ASIN had no supply at any time of the window (an invalid ASIN,
      or no offer passes the policy all day);
    * ``not_yet_observed``: the supply went away after the ASIN's newest observation, so
      no fetch could have seen it yet (the fetch's latency);
    * ``observed_not_pushed``: a fetch had seen the lack of supply, and the listing was
      still buyable (the run's own latency to its push, or a decision not to push: a hold).
    """
    out = dict.fromkeys(NO_SUPPLY_CAUSES, 0.0)
    inside = [supply for t, supply in cost if t < end]
    if all(supply is None for supply in inside):
        _, missing = exposure_seconds(listing, cost, start, end)
        out["never_supplied"] = missing
        return out
    seen = sorted(observations)
    cuts = sorted({start, end, *(t for t, *_ in listing), *(t for t, _ in cost), *seen})
    cuts = [t for t in cuts if start <= t <= end]
    listing_times = [t for t, *_ in listing]
    cost_times = [t for t, _ in cost]
    for left, right in itertools.pairwise(cuts):
        li = bisect.bisect_right(listing_times, left) - 1
        ci = bisect.bisect_right(cost_times, left) - 1
        if li < 0 or ci < 0 or not listing[li][2] or cost[ci][1] is not None:
            continue
        lost = cost[ci][0]  # the supply went away at this step (or before the window)
        newest = bisect.bisect_right(seen, left) - 1
        observed = newest >= 0 and seen[newest] >= lost
        out["observed_not_pushed" if observed else "not_yet_observed"] += right - left
    return out


def exposure_yen_seconds(
    listing: Sequence[tuple[float, float | None, bool]],
    cost: Sequence[tuple[float, int | None]],
    start: float,
    end: float,
) -> tuple[float, float]:
    """:func:`exposure_seconds` weighed by what is at stake, in yen-seconds: below cost, the
    loss on a sale (cost − our price); without supply, our price (a sale that cannot be
    sourced). What the urgency order weighs (docs/fetch.md); the listing-minutes do not."""
    below = missing = 0.0
    for seconds, price, supply in _buyable_spans(listing, cost, start, end):
        if price is None:
            continue
        if supply is None:
            missing += seconds * price
        elif price < supply:
            below += seconds * (supply - price)
    return below, missing
