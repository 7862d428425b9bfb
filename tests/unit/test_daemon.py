"""The daemon loop: one run at a time, a failed run is logged and the schedule goes on,
a stop request ends it between runs."""

from __future__ import annotations

import itertools
import logging
import time

import pytest

from pipeline.daemon import parse_interval, run_daemon
from pipeline.errors import ApiQuotaError, UsageError
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
