"""Amazon in time: prices and stock of the sandbox catalogue change as a seeded process.

Stage: sandbox. Reads a :class:`~pipeline.sandbox.catalogue.Catalogue` and a
:class:`ProcessSpec`; writes the catalogue's offers (nothing on disk).

Each ASIN belongs to one rate class of ``ProcessSpec.classes`` (share of the ASINs, mean
sandbox seconds between its changes): a seeded ranking of the ASINs gives the first 10 %
the first class, the next 30 % the second, and so on. Its changes form a Poisson process of
that mean. A change is a stock-out with probability ``stockout_share`` while the ASIN is in
stock (every offer goes aside; a restock brings them back after an exponential outage of
mean ``mean_outage_seconds``), otherwise a price change: every offer's listing price times
``1 + u`` or ``1 / (1 + u)`` (even odds, ``u`` uniform in ``price_move``), floored to 10 yen
as the catalogue does. Up and down moves are symmetric in log, so a price level does not
drift down over many changes as ``1 - u`` would make it (E[log((1+u)(1-u))] < 0). A
stock-out drawn while out of stock does not happen; a price change while out of stock
applies to the offers aside, so they return with it. A change without effect leaves no
record: a price change on an ASIN nobody sells, or one no price survives (a 2 % move on a
300-yen offer floors back to 300).

Determinism: event ``k`` of an ASIN draws from ``Random(f"{seed}/process/{asin}/{k}")``, so
the world at sandbox time ``t`` depends only on (catalogue seed, n_asins, spec, t), never
on how often :meth:`WorldProcess.advance_to` was called. A benchmark rebuilds the same
world in its own process with ``Catalogue(seed, n)`` and ``WorldProcess(catalogue, spec)``.

Cost: one heap entry per ASIN (its next event); ``advance_to`` pops only what is due.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.sandbox.catalogue import Catalogue, Offer, _floor10

if TYPE_CHECKING:
    from pipeline.sandbox.state import SandboxState

HOUR = 3600.0
DAY = 86_400.0
WEEK = 604_800.0
KINDS = ("price", "stockout", "restock")
PROCESS_KEY = "process"  # where a running sandbox keeps its process (``state.apis``)


@dataclass(frozen=True)
class ProcessSpec:
    """How Amazon changes in sandbox time (seconds); JSON round-trip with the same names."""

    seed: int = 7
    classes: tuple[tuple[float, float], ...] = ((0.10, HOUR), (0.30, DAY), (0.60, WEEK))
    stockout_share: float = 0.15  # share of changes that are stock-outs while in stock
    mean_outage_seconds: float = 6 * HOUR  # a stock-out lasts exponential with this mean
    price_move: tuple[float, float] = (0.02, 0.20)  # a move is 1+u or 1/(1+u), u in [lo, hi]

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError("a process needs at least one rate class")
        shares = [share for share, _ in self.classes]
        if any(not share >= 0 for share in shares) or not math.isclose(sum(shares), 1.0):
            raise ValueError(f"the class shares must be 0 or more and add up to 1, not {shares}")
        if any(not mean > 0 for _, mean in self.classes):
            raise ValueError("every class's mean seconds between changes must be above 0")
        if not 0.0 <= self.stockout_share <= 1.0:
            raise ValueError("stockout_share must be between 0 and 1")
        if not self.mean_outage_seconds > 0:
            raise ValueError("mean_outage_seconds must be above 0")
        lo, hi = self.price_move
        if not 0.0 <= lo <= hi:
            raise ValueError("price_move must be (lo, hi) with 0 <= lo <= hi")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = [list(c) for c in self.classes]
        data["price_move"] = list(self.price_move)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> ProcessSpec:
        """A spec from a JSON object (or its text), or a preset name (see :data:`PRESETS`);
        keys left out keep their defaults. Anything else is a ValueError naming the problem."""
        try:
            return cls._from_json(data)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"a process spec value has the wrong shape ({exc})") from None

    @classmethod
    def _from_json(cls, data: dict[str, Any] | str) -> ProcessSpec:
        if isinstance(data, str):
            text = data.strip()
            if not text.startswith("{"):
                preset = PRESETS.get(text)
                if preset is None:
                    names = ", ".join(sorted(PRESETS))
                    raise ValueError(f"unknown process preset {text!r}; use one of {names} or JSON")
                return preset
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a process spec is a JSON object")
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown process spec keys {sorted(unknown)}; see docs/sandbox.md")
        kwargs: dict[str, Any] = {}
        if "seed" in data:
            kwargs["seed"] = int(data["seed"])
        if "classes" in data:
            kwargs["classes"] = tuple((float(s), float(m)) for s, m in data["classes"])
        for name in ("stockout_share", "mean_outage_seconds"):
            if name in data:
                kwargs[name] = float(data[name])
        if "price_move" in data:
            lo, hi = data["price_move"]
            kwargs["price_move"] = (float(lo), float(hi))
        return cls(**kwargs)


PRESETS: dict[str, ProcessSpec] = {
    # the mix: 10 % change about hourly, 30 % daily, 60 % weekly
    "day": ProcessSpec(),
    # a lively world for a short demo: half every 10 minutes, half hourly
    "busy": ProcessSpec(classes=((0.5, 600.0), (0.5, HOUR))),
}


@dataclass
class AmazonChange:
    """One change of the world: at ``t`` sandbox seconds since the process started."""

    asin: str
    t: float
    kind: str  # price | stockout | restock
    factor: float = 1.0  # the price factor of a price change, 1.0 otherwise


@dataclass
class _AsinState:
    index: int  # position in the catalogue (heap tie-break)
    mean: float  # mean seconds between changes
    events: int = 0  # change events drawn so far (the next one's stream number)
    next_change: float = math.inf
    restock_at: float = math.inf  # inf while in stock
    aside: list[Offer] = field(default_factory=list)  # the offers gone during an outage

    @property
    def next_event(self) -> float:
        return min(self.next_change, self.restock_at)


class WorldProcess:
    """The change process over ``catalogue``'s ASINs, started at sandbox time 0."""

    def __init__(self, catalogue: Catalogue, spec: ProcessSpec) -> None:
        self.catalogue = catalogue
        self.spec = spec
        self.now = 0.0  # sandbox seconds applied so far
        self._class_of = self._assign_classes(catalogue.asins)
        self._asins: dict[str, _AsinState] = {}
        self._heap: list[tuple[float, int, str]] = []
        for index, asin in enumerate(catalogue.asins):
            mean = spec.classes[self._class_of[asin]][1]
            entry = _AsinState(index=index, mean=mean)
            entry.next_change = self._rng(asin, 0).expovariate(1.0 / mean)
            self._asins[asin] = entry
            self._heap.append((entry.next_event, index, asin))
        heapq.heapify(self._heap)

    def _assign_classes(self, asins: list[str]) -> dict[str, int]:
        """Exact shares: ASINs ranked by a seeded draw, cut by cumulative share."""
        ranked = sorted(
            asins, key=lambda a: (random.Random(f"{self.spec.seed}/class/{a}").random(), a)
        )
        out: dict[str, int] = {}
        cumulative = 0.0
        start = 0
        last = len(self.spec.classes) - 1
        for number, (share, _) in enumerate(self.spec.classes):
            cumulative += share
            end = len(ranked) if number == last else round(cumulative * len(ranked))
            for asin in ranked[start:end]:
                out[asin] = number
            start = end
        return out

    def _rng(self, asin: str, k: int) -> random.Random:
        return random.Random(f"{self.spec.seed}/process/{asin}/{k}")

    # --- questions --------------------------------------------------------------------

    def change_events(self, asin: str) -> int:
        """Change events the ASIN's clock has drawn so far, recorded or not (the Poisson
        count: suppressed stock-outs and price moves that floored away included)."""
        return self._asins[asin].events

    def rate_class(self, asin: str) -> tuple[int, float]:
        """The ASIN's class: (index into ``spec.classes``, mean seconds between changes)."""
        number = self._class_of[asin]
        return number, self.spec.classes[number][1]

    def out_of_stock(self, asin: str) -> bool:
        """Whether the process holds the ASIN's offers aside (a stock-out not restocked yet)."""
        return self._asins[asin].restock_at != math.inf

    # --- the world moves ----------------------------------------------------------------

    def give_back(self) -> None:
        """End every outage now without a record (a process replaced by another)."""
        for asin, entry in self._asins.items():
            if entry.restock_at != math.inf:
                self.catalogue.products[asin].offers, entry.aside = entry.aside, []
                entry.restock_at = math.inf

    def advance_to(self, t: float) -> list[AmazonChange]:
        """Apply, in time order, every change at or before sandbox time ``t`` not applied
        yet; returns them. A ``t`` before the last one applies nothing."""
        changes: list[AmazonChange] = []
        heap = self._heap
        while heap and heap[0][0] <= t:
            _, index, asin = heapq.heappop(heap)
            change = self._step(asin, self._asins[asin])
            if change is not None:
                changes.append(change)
            heapq.heappush(heap, (self._asins[asin].next_event, index, asin))
        self.now = max(self.now, t)
        return changes

    def _step(self, asin: str, entry: _AsinState) -> AmazonChange | None:
        """The ASIN's next event (a restock before a change at the same instant)."""
        if entry.restock_at <= entry.next_change:
            t = entry.restock_at
            product = self.catalogue.products[asin]
            product.offers, entry.aside = entry.aside, []
            entry.restock_at = math.inf
            return AmazonChange(asin, t, "restock")
        t = entry.next_change
        entry.events += 1
        rng = self._rng(asin, entry.events)
        entry.next_change = t + rng.expovariate(1.0 / entry.mean)
        roll = rng.random()
        up = rng.random() < 0.5
        move = 1.0 + rng.uniform(*self.spec.price_move)
        factor = move if up else 1.0 / move  # symmetric in log: prices do not drift down
        outage = rng.expovariate(1.0 / self.spec.mean_outage_seconds)
        product = self.catalogue.products[asin]
        out = entry.restock_at != math.inf
        if roll < self.spec.stockout_share:
            if out or not product.offers:
                return None  # no stock-out while out of stock (or with nothing to sell)
            entry.aside, product.offers = product.offers, []
            entry.restock_at = t + outage
            return AmazonChange(asin, t, "stockout")
        moved = False
        for offer in entry.aside if out else product.offers:
            listing = _floor10(offer.listing * factor)
            moved = moved or listing != offer.listing
            offer.listing = listing
        if not moved:
            return None  # nobody sells it, or the move vanished in the 10-yen floor or a bound
        return AmazonChange(asin, t, "price", factor)


# --- the process inside a running sandbox (``state.apis["process"]``) ---------------------


@dataclass
class RunningProcess:
    """A :class:`WorldProcess` tied to a sandbox clock: sandbox time is
    (clock − ``started``) × ``time_scale``."""

    world: WorldProcess
    started: float  # clock() when the process started
    time_scale: float

    def process_time(self, clock_now: float) -> float:
        return max(0.0, (clock_now - self.started) * self.time_scale)

    def clock_time(self, process_t: float) -> float:
        """The clock reading at which sandbox time ``process_t`` happened."""
        return self.started + process_t / self.time_scale


def start(state: SandboxState, spec: ProcessSpec) -> RunningProcess:
    """Start ``spec`` at the sandbox's current time over its catalogue (hold ``state.lock``).
    A process already running first gives back the offers it holds aside, silently."""
    from pipeline.sandbox.catalogue import catalogue_of

    catalogue = catalogue_of(state)
    previous = state.apis.get(PROCESS_KEY)
    if isinstance(previous, RunningProcess):
        advance(state)
        previous.world.give_back()
    running = RunningProcess(WorldProcess(catalogue, spec), state.clock(), state.time_scale)
    state.apis[PROCESS_KEY] = running
    return running


def running_process(state: SandboxState) -> RunningProcess | None:
    found = state.apis.get(PROCESS_KEY)
    return found if isinstance(found, RunningProcess) else None


def advance(state: SandboxState) -> list[AmazonChange]:
    """Move the sandbox's process (if any) to now and record each change in the ledger at
    the moment it happened (hold ``state.lock``). No process: nothing happens."""
    running = running_process(state)
    if running is None:
        return []
    changes = running.world.advance_to(running.process_time(state.clock()))
    for change in changes:
        state.ledger.record_amazon_change(
            at=running.clock_time(change.t),
            process_t=change.t,
            asin=change.asin,
            kind=change.kind,
            factor=change.factor,
        )
    return changes
