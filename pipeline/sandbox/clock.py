"""The sandbox's one clock: ``time.monotonic()`` plus an offset a test can move forward.

Stage: sandbox. Reads the machine's monotonic clock; writes nothing.

Every time-dependent behaviour of the sandbox reads this clock (through
``SandboxState.clock``): fault windows, access-token expiries, rate buckets, the BASE
hour and day and the eBay day. Its seconds are real (unscaled) seconds; ``time_scale``
applies on top of it where the API's own units are hours and days (the platform calendar)
or requests per second (the buckets). :meth:`SandboxClock.advance` moves it forward, so
a test reaches the end of an outage, a token's expiry or the next BASE hour at once
instead of sleeping (``POST /_sandbox/advance`` does the same over HTTP).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SandboxClock:
    """Monotonic seconds plus an offset that only grows.

    ``clock()`` (or ``clock.now()``) is the reading; ``clock.unix()`` is the same moment as
    unix epoch seconds (the wall clock at creation, moved by the same amount), for what the
    sandbox sends as a date or signs into a token another sandbox process may check.
    """

    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._offset = 0.0  # seconds added by advance()
        self._lock = threading.Lock()
        self._unix0 = time.time()  # unix seconds at creation; the clock's only wall reading
        self._start = source()

    def __call__(self) -> float:
        return self.now()

    def now(self) -> float:
        """Seconds (monotonic plus every advance so far)."""
        return self._source() + self._offset

    def unix(self) -> float:
        """This reading as unix epoch seconds."""
        return self._unix0 + (self.now() - self._start)

    @property
    def offset(self) -> float:
        """Seconds advanced so far."""
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` (≥ 0) forward; returns the new reading."""
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"the sandbox clock only moves forward, not by {seconds!r} seconds")
        with self._lock:
            self._offset += float(seconds)
        return self.now()
