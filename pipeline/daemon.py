"""``invsync daemon``: run sync on an interval (or back to back, ``--continuous``), never
overlapping, until SIGTERM.

Each run is a normal ``sync`` (same lock, same journal). SIGTERM or SIGINT during a run
lets the stage finish the batch or row in flight; the run is recorded as
``interrupted`` and the daemon exits 0, so the next run (daemon, cron or by hand)
resumes it. A run held for review (exit class 3) is a notice: logged as a warning and
counted apart from failures. A run that fails is logged as an error with its exit class,
and the daemon goes on either way. Each run writes its own ``run_outcome`` line to the
JSON-lines log (through the command line's one sync), and the daemon's end writes one more
(``command`` ``daemon``), so the log tells every scheduled run apart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.config import parse_duration
from pipeline.errors import HeldForReviewError, InvsyncError, UsageError
from pipeline.interrupt import StopRequest, stopping_on_signals

log = logging.getLogger("invsync.daemon")


@dataclass
class DaemonResult:
    """How the daemon's runs ended: every run is exactly one of ok, held, failed or
    interrupted."""

    runs: int = 0
    failures: int = 0
    held: int = 0  # held for review (exit 3): loaded what it could, a person decides the rest
    interrupted: int = 0  # a stop arrived during the run; the next sync resumes it
    stopped_by_signal: bool = False

    @property
    def ok(self) -> int:
        return self.runs - self.failures - self.held - self.interrupted

    def sentence(self) -> str:
        """``Daemon stopped after 3 run(s): 1 ok, 2 held for review, 0 failed.``"""
        text = (
            f"Daemon stopped after {self.runs} run(s): {self.ok} ok, "
            f"{self.held} held for review, {self.failures} failed"
        )
        if self.interrupted:
            text += f", {self.interrupted} interrupted"
        return text + "."


def parse_interval(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a duration such as 90s, 30m, 3h or 1d."
        ) from None


def run_daemon(
    sync_once: Callable[[StopRequest], str | None],
    every: float,
    jitter: float = 0.0,
    *,
    max_runs: int | None = None,
    continuous: bool = False,
    rng: random.Random | None = None,
    stop: StopRequest | None = None,
) -> DaemonResult:
    """Call ``sync_once(stop)`` every ``every`` seconds (plus up to ``jitter``), one at a time.

    ``every`` counts from the start of one run to the start of the next; a run longer
    than the interval is followed at once by the next, never overlapped by it.
    ``continuous`` runs them back to back instead, ``every`` and ``jitter`` unused
    (``--continuous``: budgeted runs, docs/fetch.md "Budgeted runs").
    ``sync_once`` may return the run's outcome; ``"interrupted"`` is counted as such.
    :class:`HeldForReviewError` counts as held, any other exception as failed.
    """
    if every <= 0 and not continuous:
        raise UsageError("--every must be longer than zero, e.g. --every 3h.")
    rng = rng or random.Random()
    stop = stop or StopRequest()
    result = DaemonResult()
    with stopping_on_signals(stop):
        while not stop.is_set():
            started = time.monotonic()
            result.runs += 1
            try:
                outcome = sync_once(stop)
            except HeldForReviewError as exc:
                result.held += 1
                log.warning("Run %d is held for review (exit code 3): %s", result.runs, exc)
            except InvsyncError as exc:
                result.failures += 1
                log.error("Run %d ended with exit code %d: %s", result.runs, exc.exit_code, exc)
            except Exception as exc:  # a bug in one run must not end the schedule
                result.failures += 1
                log.error(
                    "Run %d hit a bug (%s); the daemon goes on.", result.runs, type(exc).__name__
                )
            else:
                if outcome == "interrupted":
                    result.interrupted += 1
            if stop.is_set() or (max_runs is not None and result.runs >= max_runs):
                break
            delay = max(0.0, every + rng.uniform(0.0, jitter) - (time.monotonic() - started))
            if continuous:
                log.info("Next run now (--continuous).")
                continue
            log.info("Next run in %.0f s.", delay)
            if not stop.sleep(delay):
                break
    result.stopped_by_signal = stop.is_set()
    if result.stopped_by_signal:
        log.info("Stopped by signal after %d run(s).", result.runs)
    return result
