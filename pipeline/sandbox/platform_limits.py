"""Sandbox calendar and call-window counters shared by the BASE and eBay APIs.

Stage: sandbox. Reads: ``SandboxState`` (clock, time scale).
Writes: nothing by itself; ``thebase`` and ``ebay`` keep the counters in their own state.

Sandbox time runs ``time_scale`` times faster than the sandbox clock from the moment the
platform state is created: at scale N an "hour" lasts 3600/N clock seconds and a day
86400/N, so BASE's hourly limit and eBay's daily quotas and revision caps reset N times
sooner, on the sandbox hour / day boundary, as the real services reset on theirs.
Advancing the clock (``POST /_sandbox/advance``) moves the calendar N times as far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.sandbox.state import SandboxState

HOUR = 3600.0  # seconds
DAY = 86400.0  # seconds
JST_OFFSET = 9 * 3600.0  # seconds east of UTC; BASE's day turns at midnight in Japan
PST_OFFSET = -8 * 3600.0  # eBay's API day "starts at 00:00:00 PST" (no daylight saving)


class ScaledCalendar:
    """Sandbox time as unix seconds: the clock's unix time at creation, then ``time_scale``
    times faster than the clock."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._wall0 = state.clock.unix()
        self._clock0 = state.clock()

    def now(self) -> float:
        """Sandbox unix time, seconds."""
        return self._wall0 + (self._state.clock() - self._clock0) * self._state.time_scale

    def hour_index(self) -> int:
        """Which sandbox hour we are in (hours since the epoch; JST hours turn at :00 too)."""
        return int(self.now() // HOUR)

    def day_index(self, utc_offset: float) -> int:
        """Which local calendar day we are in at ``utc_offset`` seconds east of UTC."""
        return int((self.now() + utc_offset) // DAY)

    def real_seconds_to_next_hour(self) -> float:
        """Clock seconds until the sandbox hour turns (what a client would wait)."""
        return (HOUR - self.now() % HOUR) / self._state.time_scale

    def real_seconds_to_next_day(self, utc_offset: float) -> float:
        """Clock seconds until the local sandbox day turns."""
        return (DAY - (self.now() + utc_offset) % DAY) / self._state.time_scale


@dataclass
class WindowCounter:
    """Calls counted in one window (an hour or a day index); a new window starts at zero."""

    window: int = -1
    count: int = 0

    def current(self, window: int) -> int:
        return self.count if window == self.window else 0

    def add(self, window: int) -> None:
        if window != self.window:
            self.window, self.count = window, 0
        self.count += 1

    def dump(self) -> dict[str, int]:
        return {"window": self.window, "count": self.count}

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> WindowCounter:
        data = data or {}
        return cls(window=int(data.get("window", -1)), count=int(data.get("count", 0)))
