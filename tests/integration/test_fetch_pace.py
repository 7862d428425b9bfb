"""Invariant 2, the quota floor, proven in two parts: the pacer's model on a fake clock
(tests/unit/test_pacer.py) and here ONE short paced run against the real sandbox over
loopback - no 429, and a span near (calls − burst) / rate. The long measurement (2,000 and
10,000 ASINs within 1.02 × the floor) is ``make bench`` (bench/fetch_bench.py), since a
benchmark is not a test. A rate the server changes mid-run is followed within one call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.sandbox_process import sandbox_process
from pipeline import fetch
from tests.integration.test_fetch import (
    catalogue,
    fetch_run,
    ledger,
    open_warehouse,
    run_row,
    seed_listings,
    set_faults,
    spapi_calls,
    workspace,
)


@pytest.fixture
def con(data_dir: Path):
    yield from open_warehouse(data_dir)


# The sandbox runs in a process of its own, as Amazon does: in this process its threads
# would share the interpreter lock with the client and delay admissions by more than the
# pacer's safety margin on a busy machine (with make test's second worker, CPU hogs).
# getItemOffersBatch at 2 req/s: 8 calls ≈ 3.5 s. A 500 ms interval leaves the loose 10 %
# bound 50 ms a call, well above how late an oversubscribed machine wakes a client; the
# 2 % target on long runs is the bench's to measure.
PACE_SCALE = 20.0
PACE_ASINS = 160  # 8 calls of 20
pytestmark = pytest.mark.slow


def test_a_short_paced_run_sends_at_the_quota_rate_without_a_429(con, data_dir: Path) -> None:
    with sandbox_process(time_scale=PACE_SCALE, n_asins=300) as server:
        paced_run(server, con, data_dir)


def paced_run(server, con, data_dir: Path) -> None:
    asins = catalogue(server)["asins"][:PACE_ASINS]
    seed_listings(con, asins)
    # one operation's pacer (the pooled lanes: tests/integration/test_fetch_pool.py)
    result = fetch_run(workspace(server, data_dir, pool=False), con)

    calls = spapi_calls(ledger(server), "getItemOffersBatch")
    assert len(calls) == PACE_ASINS // 20
    assert [c for c in calls if c["status"] == 429] == []  # never faster than the bucket
    rate = 0.1 * PACE_SCALE
    floor = (len(calls) - 1) / rate  # seconds: the burst of 1 leaves at once
    assert result.quota_floor_seconds == pytest.approx(floor)
    span = calls[-1]["t"] - calls[0]["t"]  # server side, first to last answer
    print(f"paced span {span:.3f} s, fetch {result.seconds:.3f} s, floor {floor:.3f} s")
    assert span <= 1.10 * floor  # and not much slower than it
    row = run_row(con, result.run_id)
    assert row["spapi_429s"] == 0
    assert row["quota_floor_seconds"] == pytest.approx(floor)


class RateChangeAt(fetch.SilentProgress):
    """Changes the sandbox's rate for getItemOffersBatch once ``after`` ASINs are done."""

    def __init__(self, server: object, after: int, rate: float) -> None:
        self.server, self.after, self.rate = server, after, rate
        self.changed = False

    def update(self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float) -> None:
        if not self.changed and asins_done >= self.after:
            set_faults(self.server, f"rate_override.getItemOffersBatch={self.rate}")
            self.changed = True


@pytest.mark.parametrize("new_rate", [0.2, 0.05])  # unscaled requests/s (documented 0.1)
def test_a_mid_run_rate_change_is_followed_within_one_call(
    con,
    data_dir: Path,
    new_rate: float,
) -> None:
    scale = 25.0  # after a doubling 5 req/s: intervals well above loopback jitter
    with sandbox_process(time_scale=scale, n_asins=300) as server:
        followed_rate_change(server, con, data_dir, scale, new_rate)


def followed_rate_change(server, con, data_dir: Path, scale: float, new_rate: float) -> None:
    seed_listings(con, catalogue(server)["asins"][:200])
    change = RateChangeAt(server, after=80, rate=new_rate)
    result = fetch_run(workspace(server, data_dir, pool=False), con, progress=change)

    calls = spapi_calls(ledger(server), "getItemOffersBatch")
    accepted = [c for c in calls if c["status"] == 200]
    assert len(accepted) == 10
    k = 80 // 20  # batches answered before the change
    times = [c["t"] for c in accepted]
    # A cut takes effect at once; until an answer states it, 429s can happen (they carry
    # no rate header) - but only for the one call after the change, never later.
    refused = [c["t"] for c in calls if c["status"] == 429]
    assert all(times[k - 1] < t < times[k] for t in refused), " ".join(
        f"{c['t']:.4f}:{c['status']}" for c in calls
    )
    assert len(refused) <= 4
    old, new = 1 / (0.1 * scale), 1 / (new_rate * scale)  # seconds per call
    # call k+1 still left at the old pace; its answer carried the new rate; from the
    # next call on the pacer follows it
    assert times[k] - times[k - 1] >= 0.97 * old
    following = [b - a for a, b in zip(times[k:], times[k + 1 :], strict=False)]
    assert min(following) >= 0.97 * new  # never faster than the new rate
    assert abs(following[0] - new) < abs(following[0] - old)  # the new pace at once
    # and kept: every interval within 30 % of it but for one late wake (a loaded machine
    # wakes a client 40-50 ms late now and then), and within 30 % on the whole
    assert len([gap for gap in following if gap > 1.3 * new]) <= 1, following
    assert sum(following) <= 1.3 * new * len(following), following
    assert run_row(con, result.run_id)["spapi_rate"] == pytest.approx(new_rate * scale)
