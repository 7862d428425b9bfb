"""The daemon loop: one run at a time, a failed run is logged and the schedule goes on,
a held run is a warning counted apart from failures, a stop request ends it between runs."""

from __future__ import annotations

import itertools
import logging
import time

import pytest

from pipeline.daemon import parse_interval, run_daemon
from pipeline.errors import ApiQuotaError, HeldForReviewError, UsageError
from pipeline.interrupt import StopRequest


def test_a_failed_run_is_logged_and_the_daemon_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    starts: list[float] = []

    def flaky(stop: StopRequest) -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise ApiQuotaError("BASE hourly limit reached")
        if len(starts) == 2:
            raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR, logger="invsync.daemon"):
        result = run_daemon(flaky, every=0.05, max_runs=3)
    assert (result.runs, result.failures, result.stopped_by_signal) == (3, 2, False)
    assert "exit code 4" in caplog.text and "hit a bug (RuntimeError)" in caplog.text
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045  # the interval counts from one start to the next


def test_a_held_run_is_a_warning_counted_apart_from_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = iter(
        [
            HeldForReviewError("Run r1 is held for review: 2 BASE rows."),
            None,
            HeldForReviewError("Run r3 is held for review: 1 eBay row."),
        ]
    )

    def once(stop: StopRequest) -> None:
        held = next(outcomes)
        if held is not None:
            raise held

    with caplog.at_level(logging.DEBUG, logger="invsync.daemon"):
        result = run_daemon(once, every=0.01, max_runs=3)
    assert (result.runs, result.ok, result.held, result.failures) == (3, 1, 2, 0)
    assert result.sentence() == "Daemon stopped after 3 run(s): 1 ok, 2 held for review, 0 failed."
    held = [r for r in caplog.records if "held for review" in r.getMessage()]
    assert [r.levelno for r in held] == [logging.WARNING, logging.WARNING]
    assert "Run r1 is held for review: 2 BASE rows." in held[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_run_cut_short_by_a_stop_counts_as_interrupted() -> None:
    def once(stop: StopRequest) -> str:
        stop.set()
        return "interrupted"

    result = run_daemon(once, every=3600)
    assert (result.runs, result.ok, result.interrupted) == (1, 0, 1)
    assert result.sentence().endswith("0 ok, 0 held for review, 0 failed, 1 interrupted.")


def test_a_stop_during_a_run_ends_the_daemon_after_it() -> None:
    stop = StopRequest()
    calls = []

    def run(request: StopRequest) -> None:
        calls.append(1)
        request.set()

    result = run_daemon(run, every=3600, stop=stop)
    assert result.runs == 1 and result.stopped_by_signal and calls == [1]


def test_intervals_are_durations() -> None:
    assert parse_interval("3h", "--every") == 10800
    with pytest.raises(UsageError, match="--every 'often'"):
        parse_interval("often", "--every")
    with pytest.raises(UsageError):
        run_daemon(lambda stop: None, every=0)
