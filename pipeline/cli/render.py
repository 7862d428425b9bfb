"""Everything invsync shows on a terminal: progress, summaries, one line per fact.

Stage: the CLI edge. The stages return results; this module turns them into text, and
:mod:`pipeline.cli` prints it. Nothing here reads or writes data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline.platforms import PLATFORMS

if TYPE_CHECKING:  # the CLI imports this module at start-up; the stages load on first use
    from pipeline.config import Workspace
    from pipeline.sync import SyncSummary

# --- fetch progress (pipeline.fetch.FetchProgress) -----------------------------------------


class LineProgress:
    """Plain log lines (not a terminal): one at start, then at most one every
    ``every_seconds``, and one at the end."""

    def __init__(self, emit: Callable[[str], None], every_seconds: float = 10.0) -> None:
        self.emit = emit
        self.every_seconds = every_seconds
        self._last = 0.0
        self._total = 0
        self._state = (0, 0, 0, 0.0)

    def start(self, *, asins: int, calls: int, eta_seconds: float, operation: str) -> None:
        self._total = asins
        self._last = time.monotonic()
        self.emit(
            f"fetch: {asins} ASINs in {calls} {operation} calls; quota floor {eta_seconds:.0f} s"
        )

    def update(self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float) -> None:
        self._state = (asins_done, calls, throttled, eta_seconds)
        now = time.monotonic()
        if now - self._last >= self.every_seconds:
            self._last = now
            self._line()

    def _line(self) -> None:
        done, calls, throttled, eta = self._state
        self.emit(
            f"fetch: {done}/{self._total} ASINs, {calls} calls, {throttled} 429s, ETA {eta:.0f} s"
        )

    def finish(self) -> None:
        self._line()


class RichProgress:
    """A rich progress bar: ASINs done, calls, 429s and an ETA from the quota floor."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]fetch[/bold] {task.fields[operation]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ASINs · {task.fields[calls]} calls · {task.fields[throttled]} 429s"),
            TextColumn("· ETA {task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self._task: Any = None

    def start(self, *, asins: int, calls: int, eta_seconds: float, operation: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(
            "fetch", total=asins, operation=operation, calls=0, throttled=0,
            eta=_clock_text(eta_seconds),
        )  # fmt: skip

    def update(self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float) -> None:
        self._progress.update(
            self._task, completed=asins_done, calls=calls, throttled=throttled,
            eta=_clock_text(eta_seconds),
        )  # fmt: skip

    def finish(self) -> None:
        self._progress.stop()


def _clock_text(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# --- pure frame functions ------------------------------------------------------------------


# --- sync ------------------------------------------------------------------------------------


def sync_summary_lines(summary: SyncSummary) -> list[str]:
    """The closing summary, one fact per line."""
    out = [
        f"Run {summary.run_id} ({summary.mode}{', resumed' if summary.resumed else ''}): {summary.outcome}"
    ]
    out.append(
        f"  listings          {summary.listings:,} listed, {summary.unique_asins:,} unique ASINs"
    )
    out.append(
        f"  SP-API calls      {summary.spapi_calls:,} (ceil({summary.valid_asins:,}/20) = "
        f"{summary.spapi_expected_calls:,}; retries {summary.spapi_retries}, 429s {summary.spapi_429s})"
    )
    phase2 = (
        "not measured (live)"
        if summary.phase2_spapi_calls is None
        else str(summary.phase2_spapi_calls)
    )
    out.append(f"  SP-API in Phase 2 {phase2}")
    pace = f" = {summary.pace_vs_floor:.3f} × floor" if summary.pace_vs_floor else ""
    out.append(
        f"  fetch time        {summary.fetch_seconds:.1f} s against a quota floor of "
        f"{summary.quota_floor_seconds:.1f} s{pace}"
    )
    if summary.statuses:
        statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.statuses.items()) if v)
        out.append(f"  Amazon answers    {statuses}")
    for platform in PLATFORMS:
        if platform not in summary.diffs and platform not in summary.pushes:
            continue
        kinds = summary.diffs.get(platform, {})
        kind_text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if v) or "none"
        held = summary.held_rows.get(platform, 0)
        out.append(f"  {platform:<5} diffs       {kind_text}; held rows {held}")
        if platform in summary.held_platforms:
            out.append(f"  {platform:<5} load held   {summary.held_platforms[platform]}")
        states = summary.pushes.get(platform, {})
        state_text = ", ".join(f"{k} {v}" for k, v in sorted(states.items()) if v) or "nothing"
        out.append(
            f"  {platform:<5} pushes      {state_text} in {summary.push_calls.get(platform, 0)} calls"
        )
    if summary.message:
        out.append(f"  {summary.message}")
    return out


def sandbox_banner(ws: Workspace) -> str:
    scale = ws.settings.sandbox.time_scale
    accounts = ", ".join(a.id for a in ws.settings.accounts)
    return (
        f"Running against the sandbox (demo accounts {accounts}; rate limits {scale:g}× faster): "
        "nothing leaves this machine. To go live, copy invsync.example.toml to invsync.toml, "
        'set mode = "live" and put your credentials in .env (README: Going live).'
    )
