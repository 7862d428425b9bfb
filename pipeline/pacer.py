"""Phase 1 pacing: a client-side model of one SP-API operation's token bucket.

Stage: fetch. Reads nothing, writes nothing: :mod:`pipeline.fetch` asks a :class:`Pacer`
when the next request may leave, and tells it when each request went on the wire, when
its answer came back, what ``x-amzn-RateLimit-Limit`` said and whether it was a 429.

Why a model and not a sleep: Amazon refills a bucket of ``burst`` tokens at ``rate``
tokens per second and answers 429 to a request that finds it empty. With burst 1 a
request that arrives a millisecond early is refused and one that arrives late wastes
the time for good (the bucket never holds more than one token). So the pacer

* times each interval from the moment the previous request went on the wire (an httpx
  request hook, after the library's own LWA token call), not from "before the call";
* learns the rate from the ``x-amzn-RateLimit-Limit`` header (the documented default
  until the first header) and re-bases the bucket when it changes, so the next send
  already follows a new rate;
* moves its estimate of the server's acceptance later when an answer took longer than
  the fastest round trip seen (the extra time may have been spent before the server
  took the token: a new connection, a busy server thread);
* keeps a small safety margin: ``safety`` of an interval (never less than
  ``min_safety_seconds``) plus ``margin_seconds``, and
  wakes early by the time the caller needs from waking to the wire (learned);
* sleeps to ``spin_seconds`` before that moment and spends the rest in zero-length
  sleeps, because a timed sleep wakes 0.1-0.5 ms late on average (timer slack, the
  scheduler) and every late wake is lost for good with a burst of 1;
* after a 429 assumes the bucket is empty as of the answer and waits for one token
  (longer on each consecutive 429 while no header tells it the new rate), and widens
  its safety by half a percent of an interval (at most 3 %), so jitter it did not
  allow for costs one 429, not one per call.

All times are seconds on the clock passed in (``time.monotonic`` by default), so tests
drive the model with their own clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Documented default usage plans (requests per second, burst) per operation name.
DEFAULT_PLANS: dict[str, tuple[float, int]] = {
    "getItemOffersBatch": (0.1, 1),
    "getItemOffers": (0.5, 1),
    "getCompetitivePricing": (0.5, 1),
}

_MAX_THROTTLE_FACTOR = 8.0  # at most 8 intervals between two tries after repeated 429s
_FIRST_THROTTLE_WAIT = 0.1  # intervals to wait after a first 429; doubles per 429 in a row
_ROUND_TRIP_WINDOW = 50  # answers over which the typical round trip is learned
_WARMUP_ANSWERS = 3  # answers timed conservatively until round trips have a baseline
_OVERHEAD_WINDOW = 20  # sends over which the wake-to-wire overhead is learned
_MAX_LEAD_SHARE = 0.5  # never wake more than half an interval early
_SAFETY_STEP = 0.005  # share of an interval added to the safety after a steady-state 429
_MAX_SAFETY = 0.03  # the safety never grows past 3 % of an interval


def parse_rate_header(value: object) -> float | None:
    """The rate in an ``x-amzn-RateLimit-Limit`` header value (requests/s), or None
    when the value is missing, not a number or not positive."""
    if value is None:
        return None
    try:
        rate = float(str(value).strip())
    except ValueError:
        return None
    if not math.isfinite(rate) or rate <= 0:
        return None
    return rate


@dataclass(frozen=True)
class RateChange:
    """A rate the server announced that differs from the one in use."""

    at: float  # clock seconds
    old_rate: float  # requests/s
    new_rate: float  # requests/s


class Pacer:
    """One operation's token bucket as the client believes the server holds it."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        safety: float = 0.01,
        margin_seconds: float = 0.0,
        shift_quantile: float | None = 0.0,
        spin_seconds: float = 0.0,
        min_safety_seconds: float = 0.0,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a pacer needs a positive rate and a burst of at least 1")
        self.clock = clock
        self.rate = rate  # requests per second, learned from the header
        self.burst = burst
        self.safety = safety  # share of one interval added to every wait
        self.margin_seconds = margin_seconds  # seconds added to every wait
        # the safety never falls below this many seconds: this machine's jitter between the
        # recorded send and the server's bucket does not shrink with the interval
        self.min_safety_seconds = min_safety_seconds
        # The last stretch of a wait, in seconds, is spent in zero-length sleeps (a spin):
        # a timed sleep wakes 0.1-0.5 ms late (timer slack, scheduling), a spin does not.
        self.spin_seconds = spin_seconds
        self._tokens = float(burst)  # a fresh bucket is full (Amazon's starts full too)
        self._updated = clock()
        self._throttle_factor = 1.0  # tokens to wait for before the next send
        self._consecutive_throttles = 0
        self._round_trips: list[tuple[float, float]] = []  # (seconds, bytes), recent answers
        # Slow answers move the acceptance estimate by their excess over this quantile
        # of recent round trips (None: never).
        self.shift_quantile = shift_quantile
        self.rate_changes: list[RateChange] = []
        self._woke_at: float | None = None  # when the last paced wait ended
        self._overheads: list[float] = []  # seconds from waking to the wire, recent sends
        self._lead = 0.0  # seconds to wake before the bucket is ready
        self.floor_seconds = 0.0  # one interval per answered call after the burst, seconds
        self.sends = 0  # requests put on the wire
        self.accepted = 0  # answers that were not 429s

    @property
    def interval(self) -> float:
        """Seconds per request at the current rate."""
        return 1.0 / self.rate

    def _level(self, at: float) -> float:
        return min(float(self.burst), self._tokens + (at - self._updated) * self.rate)

    def _rebase(self, at: float) -> None:
        if at > self._updated:
            self._tokens = self._level(at)
            self._updated = at

    def ready_at(self) -> float:
        """The clock time from which the next request may leave."""
        missing = self._throttle_factor - self._tokens  # tokens still to earn
        if missing <= 0:
            return self._updated
        safety = max(self.safety * self.interval, self.min_safety_seconds)
        return self._updated + missing / self.rate + safety + self.margin_seconds

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next request may leave (0 when it may go now)."""
        now = self.clock() if now is None else now
        return max(0.0, self.ready_at() - now)

    def wait(self, sleep: Callable[[float], bool]) -> bool:
        """Sleep until the next request may leave. ``sleep(seconds)`` returns False when
        it was interrupted (a stop was asked for); then so does this.

        Wakes ``lead`` seconds early: the time the caller needs from waking to putting the
        request on the wire, learned from earlier sends, so the request itself leaves on
        time rather than one overhead late on every interval. The last ``spin_seconds``
        are spent in ``sleep(0)`` calls (a timed sleep overshoots; a spin does not)."""
        self._woke_at = None
        slept = False
        while True:
            remaining = self.delay() - self._lead
            if remaining <= 0:
                if slept:
                    self._woke_at = self.clock()
                return True
            slept = True
            step = remaining - self.spin_seconds if remaining > self.spin_seconds else 0.0
            if not sleep(step):
                return False

    def sent(self, at: float) -> None:
        """A request went on the wire at ``at``: it takes one token."""
        if self._woke_at is not None:
            # the overhead between waking and the wire; keep the smallest recent one, so
            # waking early never makes a request leave early
            self._overheads.append(max(0.0, at - self._woke_at))
            del self._overheads[:-_OVERHEAD_WINDOW]
            self._lead = min(min(self._overheads), _MAX_LEAD_SHARE * self.interval)
            self._woke_at = None
        self._rebase(at)
        self.sends += 1
        self._tokens -= 1.0
        self._updated = max(self._updated, at)

    def answered(
        self,
        sent_at: float,
        answered_at: float,
        rate_header: object = None,
        size: int | None = None,
    ) -> RateChange | None:
        """An answer (not a 429) arrived; learn from its timing and rate header.

        The header states the rate that applied to this request, so a new rate counts
        from the send on (tokens since then accrue at it). ``size`` (response bytes) lets
        the part of a round trip that grows with the answer's size - built after the
        server took the token - be told apart from a delay before it."""
        change = self.learn_rate(rate_header, sent_at)
        self._throttle_factor = 1.0
        self._consecutive_throttles = 0
        if self.accepted >= self.burst:
            self.floor_seconds += self.interval  # this call's share of the quota floor
        self.accepted += 1
        round_trip = max(0.0, answered_at - sent_at)
        self._round_trips.append((round_trip, float(size or 0)))
        del self._round_trips[:-_ROUND_TRIP_WINDOW]
        if self.shift_quantile is not None:
            residuals = self._residuals()
            ordered = sorted(residuals)
            typical = ordered[int(self.shift_quantile * (len(ordered) - 1))]
            # The first answers have no baseline (and a new connection, cold code): count
            # their whole round trip as possibly spent before the server took the token.
            warming = len(self._round_trips) <= _WARMUP_ANSWERS
            excess = round_trip if warming else residuals[-1] - typical
            if excess > 0:
                # A slow answer may have reached the server late: its token may have
                # been taken up to `excess` later than the send suggests.
                self._tokens -= excess * self.rate
        return change

    def _residuals(self) -> list[float]:
        """Recent round trips less the time their answer's size explains (least-squares
        slope in seconds per byte, never negative)."""
        trips = [t for t, _ in self._round_trips]
        sizes = [b for _, b in self._round_trips]
        n = len(trips)
        mean_size = sum(sizes) / n
        spread = sum((b - mean_size) ** 2 for b in sizes)
        if n < _WARMUP_ANSWERS or spread <= 0:
            return trips
        mean_trip = sum(trips) / n
        slope = sum((b - mean_size) * (t - mean_trip) for t, b in self._round_trips) / spread
        slope = max(0.0, slope)
        return [t - slope * b for t, b in self._round_trips]

    def learn_rate(self, rate_header: object, at: float | None = None) -> RateChange | None:
        """Follow the rate the server announced, from ``at`` on."""
        rate = parse_rate_header(rate_header)
        if rate is None or math.isclose(rate, self.rate, rel_tol=1e-9):
            return None
        at = self.clock() if at is None else at
        self._rebase(at)  # tokens earned so far keep the old rate
        change = RateChange(at=at, old_rate=self.rate, new_rate=rate)
        self.rate = rate
        self.rate_changes.append(change)
        return change

    def throttled(self, answered_at: float) -> None:
        """A 429: the bucket held less than one token when the request arrived. When the
        model expected a token (steady state), the server is only a little behind it: try
        again after a tenth of an interval, doubling on each further 429 in a row (a rate
        cut no header has announced yet) up to 8 intervals."""
        self._consecutive_throttles += 1
        if self._consecutive_throttles == 1 and self.accepted > self.burst:
            # steady state and still refused: the server's clock runs a little ahead of
            # the model (jitter before it takes the token), so widen the safety margin
            self.safety = min(self.safety + _SAFETY_STEP, _MAX_SAFETY)
        self._tokens = 1.0
        self._updated = max(self._updated, answered_at)
        self._throttle_factor = 1.0 + min(
            _MAX_THROTTLE_FACTOR, _FIRST_THROTTLE_WAIT * 2 ** (self._consecutive_throttles - 1)
        )

    def eta_seconds(self, remaining_calls: int) -> float:
        """The quota floor for ``remaining_calls`` more requests at the current rate."""
        return max(0, remaining_calls) * self.interval


def quota_floor_seconds(calls: int, rate: float, burst: int = 1) -> float:
    """``(calls − burst) / rate``: the least time ``calls`` requests can take (seconds)."""
    return max(0, calls - burst) / rate
