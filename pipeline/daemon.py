"""``invsync daemon``: run sync on an interval, never overlapping, until SIGTERM.

Each run is a normal ``sync`` (same lock, same journal). SIGTERM or SIGINT during a run
lets the stage finish the batch or row in flight; the run is recorded as
``interrupted`` and the daemon exits 0, so the next run (daemon, cron or by hand)
resumes it. A run that fails is logged with its exit class and the daemon goes on.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.config import parse_duration
from pipeline.errors import InvsyncError, UsageError
from pipeline.interrupt import StopRequest, stopping_on_signals

log = logging.getLogger("invsync.daemon")


@dataclass
class DaemonResult:
    runs: int = 0
    failures: int = 0
    stopped_by_signal: bool = False


def parse_interval(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a duration such as 90s, 30m, 3h or 1d."
        ) from None


def run_daemon(
    sync_once: Callable[[StopRequest], object],
    every: float,
    jitter: float = 0.0,
    *,
    max_runs: int | None = None,
    rng: random.Random | None = None,
    stop: StopRequest | None = None,
) -> DaemonResult:
    """Call ``sync_once(stop)`` every ``every`` seconds (plus up to ``jitter``), one at a time.

    ``every`` counts from the start of one run to the start of the next; a run longer
    than the interval is followed at once by the next, never overlapped by it.
    """
    if every <= 0:
        raise UsageError("--every must be longer than zero, e.g. --every 3h.")
    rng = rng or random.Random()
    stop = stop or StopRequest()
    result = DaemonResult()
    with stopping_on_signals(stop):
        while not stop.is_set():
            started = time.monotonic()
            result.runs += 1
            try:
                sync_once(stop)
            except InvsyncError as exc:
                result.failures += 1
                log.error("Run %d ended with exit code %d: %s", result.runs, exc.exit_code, exc)
            except Exception as exc:  # a bug in one run must not end the schedule
                result.failures += 1
                log.error(
                    "Run %d hit a bug (%s); the daemon goes on.", result.runs, type(exc).__name__
                )
            if stop.is_set() or (max_runs is not None and result.runs >= max_runs):
                break
            delay = max(0.0, every + rng.uniform(0.0, jitter) - (time.monotonic() - started))
            log.info("Next run in %.0f s.", delay)
            if not stop.sleep(delay):
                break
    result.stopped_by_signal = stop.is_set()
    if result.stopped_by_signal:
        log.info("Stopped by signal after %d run(s).", result.runs)
    return result
