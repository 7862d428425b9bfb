"""The sandbox's shared state: clock, rate buckets, fault knobs and the call ledger.

Every API module of the sandbox (``spapi``, ``thebase``, ``ebay``) reads and writes
one :class:`SandboxState`. All of it is guarded by ``state.lock``; handlers hold
the lock only while they touch state, never while they sleep (slow-response faults).

Time: ``clock`` is one :class:`~pipeline.sandbox.clock.SandboxClock` (real seconds:
``time.monotonic`` plus whatever a test advanced it by); everything that depends on time
reads it, and only the ledger's ``wall`` field reads the wall clock. ``time_scale`` N makes
every rate limit N times faster: a bucket of rate r refills at r·N tokens per second and
the ``x-amzn-RateLimit-Limit`` header says r·N. Hourly and daily platform windows
shrink by the same factor (an "hour" lasts 3600/N seconds).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, cast

from pipeline.files import write_text_atomic
from pipeline.sandbox.clock import SandboxClock

T = TypeVar("T")


class TokenBucket:
    """A token bucket: ``rate`` tokens per second (already scaled), at most ``burst``.

    Starts full. ``try_acquire`` takes one token or refuses; it never waits.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = clock()

    def _refill(self, now: float | None = None) -> None:
        now = self._clock() if now is None else max(now, self.updated)
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_acquire(self, now: float | None = None) -> bool:
        """Take a token at ``now`` (default: the clock). Callers that record the time of
        the check elsewhere (the ledger) pass the same reading, so both agree exactly."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def set_rate(self, rate: float) -> None:
        self._refill()  # tokens earned so far keep the old rate
        self.rate = rate


@dataclass
class CallRecord:
    """One request the sandbox answered."""

    t: float  # seconds since the sandbox started (monotonic)
    wall: float  # unix epoch seconds
    api: str  # lwa | spapi | base | ebay | trading | control
    operation: str  # e.g. getItemOffersBatch, items/edit, bulk_update_price_quantity
    status: int  # HTTP status sent
    outcome: str  # ok | throttled | error | fault:<name> | unauthorized | ...
    items: list[str] = field(default_factory=list)  # ASINs, item ids or SKUs in the call
    account: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # per-item outcomes, e.g. invalid ASINs


@dataclass
class ChangeRecord:
    """One price/stock change applied to a listing on BASE or eBay."""

    t: float
    wall: float
    platform: str  # base | ebay
    account: str
    key: str  # BASE item_id, eBay sku
    changes: dict[str, Any]  # field -> new value, e.g. {"price": 1280, "stock": 3}
    via: str  # items/edit | items/edit_stock | bulk_update_price_quantity | ReviseInventoryStatus


@dataclass
class AmazonChangeRecord:
    """One change of Amazon's offers made by the sandbox's process (``process.py``)."""

    t: float  # clock seconds since the ledger started when it HAPPENED (as CallRecord.t)
    process_t: float  # sandbox seconds since the process started
    asin: str
    kind: str  # price | stockout | restock
    factor: float  # the price factor of a price change, 1.0 otherwise


class Ledger:
    """Everything the sandbox answered and changed, for tests and the demo summary."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.started = clock()
        self.calls: list[CallRecord] = []
        self.changes: list[ChangeRecord] = []
        self.amazon_changes: list[AmazonChangeRecord] = []

    def record_call(
        self,
        api: str,
        operation: str,
        status: int,
        outcome: str,
        items: list[str] | None = None,
        account: str | None = None,
        detail: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> CallRecord:
        """Record one answered call; ``at`` is the clock() reading when it was admitted
        (default: now), so a call's time does not include building its answer."""
        record = CallRecord(
            t=(self._clock() if at is None else at) - self.started,
            wall=time.time(),
            api=api,
            operation=operation,
            status=status,
            outcome=outcome,
            items=list(items or []),
            account=account,
            detail=dict(detail or {}),
        )
        self.calls.append(record)
        return record

    def record_change(
        self, platform: str, account: str, key: str, changes: dict[str, Any], via: str
    ) -> ChangeRecord:
        record = ChangeRecord(
            t=self._clock() - self.started,
            wall=time.time(),
            platform=platform,
            account=account,
            key=key,
            changes=dict(changes),
            via=via,
        )
        self.changes.append(record)
        return record

    def record_amazon_change(
        self, *, at: float, process_t: float, asin: str, kind: str, factor: float
    ) -> AmazonChangeRecord:
        """Record a change the process applied; ``at`` is the clock() reading at which it
        happened in the world (not when a request made the sandbox apply it)."""
        record = AmazonChangeRecord(at - self.started, process_t, asin, kind, factor)
        self.amazon_changes.append(record)
        return record

    def reset(self) -> None:
        self.started = self._clock()
        self.calls.clear()
        self.changes.clear()
        self.amazon_changes.clear()

    def stats(self, *, include_calls: bool = True) -> dict[str, Any]:
        """The ledger as JSON-ready data (``GET /_sandbox/stats``)."""
        per_operation: dict[str, dict[str, Any]] = {}
        for call in self.calls:
            key = f"{call.api}.{call.operation}"
            entry = per_operation.setdefault(
                key, {"calls": 0, "throttled": 0, "items": 0, "by_status": {}, "by_outcome": {}}
            )
            entry["calls"] += 1
            entry["items"] += len(call.items)
            if call.status == 429:
                entry["throttled"] += 1
            entry["by_status"][str(call.status)] = entry["by_status"].get(str(call.status), 0) + 1
            entry["by_outcome"][call.outcome] = entry["by_outcome"].get(call.outcome, 0) + 1
        result: dict[str, Any] = {
            "per_operation": per_operation,
            "total_calls": len(self.calls),
            "total_changes": len(self.changes),
            "total_amazon_changes": len(self.amazon_changes),
        }
        if include_calls:
            result["calls"] = [asdict(c) for c in self.calls]
            result["changes"] = [asdict(c) for c in self.changes]
            result["amazon_changes"] = [asdict(c) for c in self.amazon_changes]
        return result


@dataclass
class Window:
    """A span since the knobs were set: clock seconds, or calls (``*_calls`` knobs)."""

    start: float
    end: float

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class Faults:
    """Fault knobs. Set at start (``--faults SPEC``) or live (``POST /_sandbox/faults``).

    ``SPEC`` is a comma-separated list of ``name=value`` or bare ``name`` (true):
    ``error_rate=0.2,outage=5-10,zero_offers,slow_ms=200``. Per-operation forms use a
    dot: ``error_rate.getItemOffersBatch=0.2``. Windows are ``START-END`` in seconds
    of the sandbox clock (real, unscaled seconds) since the knob was set; several are
    joined with ``+``. The ``*_calls`` windows count API requests instead: the request
    numbered n (from 0, every API route, token endpoints included) since the knobs were
    set is inside ``START-END`` when START <= n < END, whatever the time.
    """

    error_rate: float = 0.0  # share of calls answered 500 InternalFailure, every API
    error_rate_by_operation: dict[str, float] = field(default_factory=dict)
    outage: list[Window] = field(default_factory=list)  # 503 for every API call inside
    outage_html: bool = False  # outage bodies are HTML, as a load balancer sends them
    throttle_storm: list[Window] = field(default_factory=list)  # 429 for every call inside
    outage_calls: list[Window] = field(default_factory=list)  # as outage, counted in calls
    throttle_storm_calls: list[Window] = field(default_factory=list)  # as storm, in calls
    malformed_rate: float = 0.0  # share of 200s whose body is cut-off JSON
    html_rate: float = 0.0  # share of calls answered 503 with an HTML body
    slow_ms: float = 0.0  # extra latency per response, milliseconds
    expired_tokens: bool = False  # every access token is treated as expired
    # --- SP-API ---------------------------------------------------------------------
    zero_offers: bool = False  # every ASIN reports 0 offers (a real getItemOffersBatch bug)
    invalid_asins: list[str] = field(default_factory=list)  # answered as invalid ASINs
    rate_override: dict[str, float] = field(default_factory=dict)  # op -> unscaled rate
    too_soon_asins: list[str] = field(default_factory=list)  # ActiveButTooSoonForProcessing
    too_soon_share: float = 0.0  # a seeded share of ASINs answering the same, per tick
    # --- BASE -----------------------------------------------------------------------
    bad_item_ids: list[int] = field(default_factory=list)  # BASE items deleted on BASE
    base_token_server_error: float = 0.0  # share of BASE token calls: 400 server_error
    base_token_server_error_calls: list[Window] = field(default_factory=list)  # same, by call
    # --- eBay -----------------------------------------------------------------------
    partial_failure_skus: list[str] = field(default_factory=list)  # eBay 207 for these SKUs
    partial_failure_rate: float = 0.0  # share of eBay SKUs failing inside a 207
    ebay_429_rate: float = 0.0  # share of eBay calls answered 429 errorId 2001
    ebay_oos_control_off: bool = False  # the seller's Out-of-Stock Control is off: 0 ends
    trading_unnamed_errors: bool = False  # Trading per-item Errors without ErrorParameters
    trading_partial_failure_ack: bool = False  # Trading says PartialFailure, not Warning
    # --- tokens -----------------------------------------------------------------------
    echo_token: bool = False  # every error answer repeats the caller's token in its message
    # --- bookkeeping ----------------------------------------------------------------
    set_at: float = 0.0  # clock() when the knobs were set; windows count from here

    def error_rate_for(self, operation: str) -> float:
        return self.error_rate_by_operation.get(operation, self.error_rate)

    def in_outage(self, now: float, call: int) -> bool:
        """Inside an outage at clock ``now`` for the ``call``-th request since set."""
        return any(w.contains(now - self.set_at) for w in self.outage) or any(
            w.contains(call) for w in self.outage_calls
        )

    def in_storm(self, now: float, call: int) -> bool:
        return any(w.contains(now - self.set_at) for w in self.throttle_storm) or any(
            w.contains(call) for w in self.throttle_storm_calls
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, spec: str | dict[str, Any] | None, now: float = 0.0) -> Faults:
        """Build knobs from a SPEC string or a JSON object (same names)."""
        faults = cls(set_at=now)
        if not spec:
            return faults
        items: list[tuple[str, Any]]
        if isinstance(spec, dict):
            items = list(spec.items())
        else:
            text = spec.strip()
            if text.startswith("{"):
                items = list(json.loads(text).items())
            else:
                items = []
                for part in filter(None, (p.strip() for p in text.split(","))):
                    name, _, value = part.partition("=")
                    items.append((name.strip(), value.strip() if value else True))
        for name, value in items:
            faults._set(name, value)
        return faults

    def _set(self, name: str, value: Any) -> None:
        """One knob, parsed by its field's declared type (a new knob is one field line)."""
        base, _, operation = name.partition(".")
        if base == "error_rate" and operation:
            self.error_rate_by_operation[operation] = float(value)
            return
        if base == "rate_override" and operation:
            self.rate_override[operation] = float(value)
            return
        kind = _KNOB_TYPES.get(name)
        if kind is None:
            raise ValueError(f"unknown sandbox fault {name!r}; see docs/sandbox.md for the knobs")
        if kind == "dict[str, float]":
            if not isinstance(value, dict):
                raise ValueError(f"sandbox fault {name!r} takes an object of numbers")
            setattr(self, name, {str(k): float(v) for k, v in value.items()})
        else:
            setattr(self, name, _PARSERS[kind](value))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes", "on")


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).replace("+", " ").split() if v]


def _windows(value: Any) -> list[Window]:
    if isinstance(value, list):
        out = []
        for w in value:
            if isinstance(w, dict):
                out.append(Window(float(w["start"]), float(w["end"])))
            else:
                out.extend(_windows(w))
        return out
    windows = []
    for part in str(value).split("+"):
        start, _, end = part.partition("-")
        windows.append(Window(float(start), float(end)))
    return windows


_PARSERS: dict[str, Any] = {
    "bool": _bool,
    "float": float,
    "list[str]": _strings,
    "list[int]": lambda value: [int(v) for v in _strings(value)],
    "list[Window]": _windows,
}
# knob name -> its declared type, read off the dataclass (``set_at`` is not a knob)
_KNOB_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(Faults) if f.name != "set_at"}


@dataclass
class SandboxState:
    """One sandbox's world. API modules keep their own data in ``apis[name]``."""

    time_scale: float = 1.0
    seed: int = 42
    token_lifetime: float = 3600.0  # clock seconds an access token lives
    clock: SandboxClock = field(default_factory=SandboxClock)
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults = field(default_factory=Faults)
    ledger: Ledger = field(init=False)
    rng: random.Random = field(init=False)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    documented_rates: dict[str, float] = field(default_factory=dict)  # op -> unscaled req/s
    apis: dict[str, Any] = field(default_factory=dict)  # per-API private state
    persist_path: Path | None = None  # where save() writes the world (JSON), if anywhere
    unsaved_changes: bool = False  # the world changed since the last save()
    _write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    calls_since_faults: int = 0  # API requests since the knobs were set (``*_calls`` windows)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.clock)
        self.rng = random.Random(self.seed)
        self.faults.set_at = self.clock()

    def now(self) -> float:
        """The sandbox clock, seconds."""
        return self.clock.now()

    def api_world(self, name: str, create: Callable[[SandboxState], T]) -> T:
        """The per-API state in ``apis[name]``, made by ``create(self)`` on first use."""
        with self.lock:
            world = self.apis.get(name)
            if world is None:
                world = self.apis[name] = create(self)
            return cast(T, world)

    def bucket(
        self, operation: str, rate: float, burst: int, now: float | None = None
    ) -> TokenBucket:
        """The bucket of ``operation`` at its documented ``rate`` (unscaled), created once
        (full, as of ``now`` when given: the same reading the caller checks it with).

        A ``rate_override`` fault changes the rate live (the pacer must follow).
        """
        self.documented_rates[operation] = rate
        unscaled = self.faults.rate_override.get(operation, rate)
        scaled = unscaled * self.time_scale
        found = self.buckets.get(operation)
        if found is None:
            found = self.buckets[operation] = TokenBucket(scaled, burst, self.clock)
            if now is not None:
                found.updated = now
        elif found.rate != scaled:
            found.set_rate(scaled)
        return found

    def roll(self, probability: float) -> bool:
        """True with ``probability``, from the seeded generator (deterministic per seed)."""
        return probability > 0 and self.rng.random() < probability

    def set_faults(self, spec: str | dict[str, Any] | None) -> Faults:
        self.faults = Faults.parse(spec, now=self.clock())
        self.calls_since_faults = 0
        # a rate override (or its removal) takes effect now, not at the bucket's next use
        for operation, bucket in self.buckets.items():
            rate = self.documented_rates.get(operation)
            if rate is not None:
                bucket.set_rate(self.faults.rate_override.get(operation, rate) * self.time_scale)
        return self.faults

    def reset(self) -> None:
        """Forget the ledger and refill every rate bucket (``POST /_sandbox/reset``)."""
        with self.lock:
            self.ledger.reset()
            self.buckets.clear()
            for api in self.apis.values():  # platform hour/day counters, revision counts
                reset_counters = getattr(api, "reset_counters", None)
                if callable(reset_counters):
                    reset_counters()

    # --- fault decisions every API module shares (call them while holding ``lock``) ---

    def fault_before_quota(self) -> str | None:
        """``"outage"`` or ``"throttle_storm"`` when a window covers this request, else None.

        Called once per API request (it counts the request for the ``*_calls`` windows).
        Checked before the rate bucket: an outage or a storm answers without spending
        a token, as a load balancer in front of the API would.
        """
        now = self.clock()
        call = self.calls_since_faults
        self.calls_since_faults += 1
        if self.faults.in_outage(now, call):
            return "outage"
        if self.faults.in_storm(now, call):
            return "throttle_storm"
        return None

    def fault_after_quota(self, operation: str) -> str | None:
        """``"error"`` (a 500) or ``"html"`` (a 503 with an HTML body) by their rates, else None.

        Checked after the rate bucket let the call through (the call spent its token).
        """
        if self.roll(self.faults.error_rate_for(operation)):
            return "error"
        if self.roll(self.faults.html_rate):
            return "html"
        return None

    def malformed(self) -> bool:
        """True when this 200 should carry cut-off JSON (``malformed_rate``)."""
        return self.roll(self.faults.malformed_rate)

    def slow_seconds(self) -> float:
        """Extra latency for this response in seconds; sleep it WITHOUT holding ``lock``."""
        return max(0.0, self.faults.slow_ms) / 1000.0

    # --- persistence: one continuing world across processes ---

    def dump(self) -> dict[str, Any]:
        """The world as JSON-ready data: seed, tick, and each API module's own ``dump()``."""
        with self.lock:
            catalogue = self.apis.get("catalogue")
            return {
                "seed": self.seed,
                "tick": getattr(catalogue, "tick_number", 0),
                "apis": {
                    name: api.dump()
                    for name, api in self.apis.items()
                    if callable(getattr(api, "dump", None))
                },
            }

    def save(self) -> None:
        """Write :meth:`dump` to ``persist_path`` atomically (temp file, then rename)."""
        if self.persist_path is None:
            return
        # the world is read under the state lock and written outside it (a request waits for
        # the read only); the write lock is taken before the state lock is let go, so writes
        # land in the order the world was read and an older read never overwrites a newer one
        self.lock.acquire()
        try:
            data = self.dump()
            self.unsaved_changes = False
            self._write_lock.acquire()
        finally:
            self.lock.release()
        try:
            text = json.dumps(data, ensure_ascii=False, indent=1)
            write_text_atomic(Path(self.persist_path), text)
        finally:
            self._write_lock.release()

    def load(self, data: dict[str, Any]) -> None:
        """Restore what :meth:`dump` wrote; modules without ``load`` keep their fresh state.

        The catalogue loads first: other modules may read it while they load.
        """
        with self.lock:
            stored = data.get("apis", {})
            names = sorted(stored, key=lambda name: name != "catalogue")
            for name in names:
                api = self.apis.get(name)
                if api is not None and callable(getattr(api, "load", None)):
                    api.load(stored[name])
