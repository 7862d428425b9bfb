"""The pacer's token-bucket model, driven by a clock the test owns (no real sleeping)."""

from __future__ import annotations

import itertools

import pytest

from pipeline.pacer import Pacer, parse_rate_header, quota_floor_seconds


class FakeClock:
    """Seconds that move only when the test (or the pacer's sleep) moves them."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.now += seconds
        return True


def exchange(pacer: Pacer, clock: FakeClock, *, round_trip: float = 0.0, header: str | None = None):
    """Wait for the pacer, send at once, answer after ``round_trip`` seconds."""
    assert pacer.wait(clock.sleep)
    sent = clock.now
    pacer.sent(sent)
    clock.now += round_trip
    pacer.answered(sent, clock.now, header)
    return sent


def test_first_call_is_free_then_one_interval_each() -> None:
    clock = FakeClock()
    pacer = Pacer(0.1, clock=clock, safety=0.0, shift_quantile=None)
    sends = [exchange(pacer, clock) for _ in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert sends[0] == 1000.0
    assert gaps == pytest.approx([10.0, 10.0, 10.0])
    assert pacer.floor_seconds == pytest.approx(quota_floor_seconds(4, 0.1))


def test_safety_margin_is_a_share_of_the_interval() -> None:
    clock = FakeClock()
    pacer = Pacer(0.5, clock=clock, safety=0.01, shift_quantile=None)
    first = exchange(pacer, clock)
    second = exchange(pacer, clock)
    assert second - first == pytest.approx(2.0 * 1.01)


def test_the_safety_margin_never_falls_below_its_floor_in_seconds() -> None:
    """Jitter on this machine is milliseconds whatever the interval: at 20 ms, 0.75 % would
    be 0.15 ms, so the floor (1 ms) rules; at 2 s the share (15 ms) does."""
    for rate, expected in ((50.0, 0.020 + 0.001), (0.5, 2.0 * 1.0075)):
        clock = FakeClock()
        pacer = Pacer(rate, clock=clock, safety=0.0075, shift_quantile=None,
                      min_safety_seconds=0.001)  # fmt: skip
        first = exchange(pacer, clock)
        second = exchange(pacer, clock)
        assert second - first == pytest.approx(expected)


def test_the_rate_header_is_learned_and_a_change_is_followed_on_the_next_call() -> None:
    clock = FakeClock()
    pacer = Pacer(0.1, clock=clock, safety=0.0, shift_quantile=None)
    a = exchange(pacer, clock, header="5.0")  # first answer: the real plan is 5 req/s
    b = exchange(pacer, clock, header="5.0")
    assert b - a == pytest.approx(0.2)
    c = exchange(pacer, clock, header="10.0")  # the server doubled the rate
    d = exchange(pacer, clock, header="10.0")
    assert c - b == pytest.approx(0.2)
    assert d - c == pytest.approx(0.1)  # followed within one call
    e = exchange(pacer, clock, header="2.5")
    f = exchange(pacer, clock, header="2.5")
    assert e - d == pytest.approx(0.1)
    assert f - e == pytest.approx(0.4)
    assert [ch.new_rate for ch in pacer.rate_changes] == [5.0, 10.0, 2.5]


def test_no_header_keeps_the_documented_default() -> None:
    clock = FakeClock()
    pacer = Pacer(0.5, clock=clock, safety=0.0, shift_quantile=None)
    a = exchange(pacer, clock, header=None)
    b = exchange(pacer, clock, header="not a number")
    assert b - a == pytest.approx(2.0)
    assert pacer.rate == 0.5


def test_a_429_waits_for_the_bucket_and_longer_when_it_repeats() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, safety=0.0, shift_quantile=None)
    exchange(pacer, clock)
    waits = []
    for _ in range(4):
        before = clock.now
        assert pacer.wait(clock.sleep)
        waits.append(clock.now - before)
        pacer.sent(clock.now)
        pacer.throttled(clock.now)
    # one interval to the bucket, then 0.1, 0.2, 0.4 intervals after each refusal
    assert waits == pytest.approx([1.0, 0.1, 0.2, 0.4])
    # an answer ends the streak: back to one interval
    exchange(pacer, clock)
    before = clock.now
    exchange(pacer, clock)
    assert clock.now - before == pytest.approx(1.0)


def test_repeated_429s_never_wait_more_than_nine_intervals() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, safety=0.0, shift_quantile=None)
    for _ in range(30):
        pacer.wait(clock.sleep)
        pacer.sent(clock.now)
        pacer.throttled(clock.now)
    assert pacer.delay() <= 9.0 + 1e-9


def test_a_slow_answer_moves_the_next_send_later_by_its_excess() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, safety=0.0, shift_quantile=0.5)
    for _ in range(5):
        exchange(pacer, clock, round_trip=0.01)
    sent = exchange(pacer, clock, round_trip=0.31)  # 0.30 s slower than usual
    nxt = exchange(pacer, clock, round_trip=0.01)
    assert nxt - sent == pytest.approx(1.30)


def test_waking_early_by_the_learned_overhead_puts_requests_on_the_wire_on_time() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, safety=0.0, shift_quantile=None)
    overhead = 0.05  # seconds from waking to the wire (building the request)
    wire = []
    for _ in range(6):
        assert pacer.wait(clock.sleep)
        clock.now += overhead
        wire.append(clock.now)
        pacer.sent(clock.now)
        pacer.answered(clock.now, clock.now, None)
    gaps = [b - a for a, b in itertools.pairwise(wire)]
    assert gaps[0] == pytest.approx(1.0 + overhead)  # not learned yet
    assert gaps[-1] == pytest.approx(1.0)  # learned: on time
    assert min(gaps) >= 1.0 - 1e-9  # never early


class OvershootingClock(FakeClock):
    """A timed sleep wakes ``overshoot`` seconds late; a zero-length one costs ``tick``."""

    def __init__(self, overshoot: float, tick: float) -> None:
        super().__init__()
        self.overshoot, self.tick = overshoot, tick
        self.zero_sleeps = 0

    def sleep(self, seconds: float) -> bool:
        if seconds <= 0:
            self.zero_sleeps += 1
            self.now += self.tick
        else:
            self.now += seconds + self.overshoot
        return True


@pytest.mark.parametrize(("spin", "late_at_most"), [(0.0, 0.0004), (0.002, 0.00001)])
def test_spinning_the_last_stretch_removes_the_sleep_overshoot(
    spin: float, late_at_most: float
) -> None:
    clock = OvershootingClock(overshoot=0.0004, tick=0.00001)  # 0.4 ms late, 10 µs per spin
    pacer = Pacer(10.0, clock=clock, safety=0.0, shift_quantile=None, spin_seconds=spin)
    sends = [exchange(pacer, clock) for _ in range(5)]
    lateness = [b - a - 0.1 for a, b in itertools.pairwise(sends)]
    assert min(lateness) >= -1e-12  # never early
    assert max(lateness) == pytest.approx(late_at_most, abs=1e-5)
    assert (clock.zero_sleeps > 0) == (spin > 0)


def test_an_interrupted_sleep_stops_the_wait() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock)
    exchange(pacer, clock)
    assert pacer.wait(lambda seconds: False) is False


@pytest.mark.parametrize(
    ("text", "rate"),
    [("0.1", 0.1), (" 10.0 ", 10.0), ("0.0333", 0.0333), ("0", None), ("-1", None),
     ("nan", None), ("abc", None), (None, None)],
)  # fmt: skip
def test_rate_header_values(text: str | None, rate: float | None) -> None:
    assert parse_rate_header(text) == rate


def test_quota_floor_arithmetic() -> None:
    # 10,000 ASINs = 500 calls: item_offers at 0.1/s and competitive_pricing at 0.5/s
    assert quota_floor_seconds(500, 0.1) == pytest.approx(4990.0)
    assert quota_floor_seconds(500, 0.5) == pytest.approx(998.0)
    assert quota_floor_seconds(1, 0.1) == 0.0
