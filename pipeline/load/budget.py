"""The call budget: calls per platform account and window, counted before each call.

Stage: load (and ``listings pull``, which spends the same BASE budget). Reads and writes
``api_call_windows`` in the warehouse; reads the ``[load]`` limits and the sandbox's time
scale. BASE allows 5,000 calls an hour and 100,000 a day (its day turns at midnight in
Japan); the budget stops a shop before BASE would refuse it, and a later run in the same
window starts from the calls this one made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from pipeline.clients.factory import time_scale
from pipeline.config import Workspace
from pipeline.sql import run_sql
from pipeline.warehouse import transaction

HOUR = 3600.0  # seconds
DAY = 86400.0  # seconds
JST_OFFSET = 9 * HOUR  # BASE's day turns at midnight in Japan


class BudgetSpent(Exception):
    """Our own call budget for a window is used up (raised before BASE would refuse)."""

    def __init__(self, window_kind: str, limit: int) -> None:
        super().__init__(window_kind)
        self.window_kind = window_kind
        self.limit = limit


@dataclass(frozen=True)
class Window:
    kind: str  # hour | day
    seconds: float  # length in platform seconds
    offset: float  # seconds east of UTC where the window turns (BASE's day: JST)
    limit: int  # calls allowed per window


class CallBudget:
    """Calls per platform account and window, kept in ``api_call_windows``.

    ``now`` gives platform time in seconds since the epoch (the sandbox's runs
    ``time_scale`` times faster). ``spend`` raises :class:`BudgetSpent` instead of
    counting once a window's limit is reached, so the shop stops before the platform
    refuses it — and a later run in the same window starts from the calls this one made.
    Counts are written every ``flush_every`` calls and by :meth:`flush` (a ``kill -9`` can
    lose at most that many; the default budget leaves 100 calls of BASE's 5,000 spare).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        platform: str,
        account_id: str,
        windows: list[Window],
        now: Callable[[], float],
        flush_every: int = 20,
    ) -> None:
        self._con = con
        self._platform = platform
        self._account_id = account_id
        self._windows = windows
        self._now = now
        self._flush_every = flush_every
        self._used: dict[tuple[str, int], int] = {}  # calls per (kind, window index)
        self._dirty: set[tuple[str, int]] = set()
        self._unflushed = 0

    def _params(self, kind: str, index: int) -> dict[str, Any]:
        return {
            "platform": self._platform,
            "account_id": self._account_id,
            "window_kind": kind,
            "window_index": index,
        }

    def _key(self, window: Window, now: float) -> tuple[str, int]:
        return window.kind, int((now + window.offset) // window.seconds)

    def used(self, kind: str) -> int:
        now = self._now()
        for window in self._windows:
            if window.kind == kind:
                return self._current(self._key(window, now))
        return 0

    def _current(self, key: tuple[str, int]) -> int:
        if key not in self._used:  # first call in this window: what earlier runs used
            rows = run_sql(self._con, "load/call_window_read", self._params(*key)).fetchall()
            self._used[key] = int(rows[0][0])
        return self._used[key]

    def spend(self, _operation: str = "") -> None:
        now = self._now()
        keys = [(w, self._key(w, now)) for w in self._windows]
        for window, key in keys:
            if self._current(key) >= window.limit:
                self.flush()
                raise BudgetSpent(window.kind, window.limit)
        for _window, key in keys:
            self._used[key] += 1
            self._dirty.add(key)
        self._unflushed += 1
        if self._unflushed >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the counts of the windows used since the last flush."""
        if not self._dirty:
            return
        with transaction(self._con):
            for key in sorted(self._dirty):
                run_sql(
                    self._con,
                    "load/call_window_write",
                    {**self._params(*key), "calls": self._used[key]},
                )
        self._dirty.clear()
        self._unflushed = 0


def platform_now(ws: Workspace) -> float:
    """Platform time, unix seconds; the sandbox's clocks run ``time_scale`` times faster."""
    return time.time() * time_scale(ws)


def base_budget(ws: Workspace, con: duckdb.DuckDBPyConnection, account_id: str) -> CallBudget:
    """One BASE shop's budget: ``[load] base_calls_per_hour`` and ``base_calls_per_day``."""
    knobs = ws.settings.load
    return CallBudget(
        con,
        "base",
        account_id,
        [
            Window("hour", HOUR, 0.0, knobs.base_calls_per_hour),
            Window("day", DAY, JST_OFFSET, knobs.base_calls_per_day),
        ],
        now=lambda: platform_now(ws),
    )
