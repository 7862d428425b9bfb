"""The sandbox's one clock: advancing it moves every time-dependent behaviour at once, and
``POST /_sandbox/advance`` is how a test outside the process does it."""

from __future__ import annotations

import pytest
import requests

from pipeline.sandbox.clock import SandboxClock
from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.sandbox.server import SandboxServer
from tests.sandbox.platform_clients import BaseClient, advance, wait_for_window
from tests.sandbox.spapi_clients import access_token, batch_body


class Ticks:
    """A source the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_is_its_source_plus_what_was_advanced():
    ticks = Ticks()
    clock = SandboxClock(ticks)
    unix0 = clock.unix()

    ticks.now += 2.0
    assert clock() == clock.now() == 102.0
    assert clock.advance(5.0) == 107.0
    assert clock.offset == 5.0
    assert clock.unix() == pytest.approx(unix0 + 7.0)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(float("nan"))
    assert clock() == 107.0


def test_a_server_runs_on_the_clock_it_is_given(start_sandbox):
    clock = SandboxClock()
    server = start_sandbox(clock=clock, time_scale=1.0)
    assert server.clock is clock is server.state.clock
    headers = {"x-amz-access-token": access_token(server)}
    body = batch_body(server.state.apis["catalogue"].asins[:1])
    url = server.url + "/batches/products/pricing/v0/itemOffers"

    first = requests.post(url, json=body, headers=headers, timeout=5)
    refused = requests.post(url, json=body, headers=headers, timeout=5)
    clock.advance(10.0)  # one token at 0.1 req/s
    again = requests.post(url, json=body, headers=headers, timeout=5)

    assert [r.status_code for r in (first, refused, again)] == [200, 429, 200]
    assert server.call_counts("spapi.") == {"spapi.getItemOffersBatch": 3}
    assert server.call_counts() == {"lwa.token": 1, "spapi.getItemOffersBatch": 3}
    ledger = requests.get(server.url + "/_sandbox/stats", timeout=5).json()
    assert ledger["per_operation"]["spapi.getItemOffersBatch"]["calls"] == 3
    assert ledger["clock_offset"] == 10.0


def test_advance_takes_clock_seconds_or_sandbox_seconds(start_sandbox):
    server = start_sandbox(time_scale=100.0, n_asins=50)  # a sandbox hour: 36 clock seconds
    shop = BaseClient(server.url, DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"])
    shop.refresh()
    wait_for_window(server.url, "base", "seconds_to_next_hour", 5.0, account="shop1")
    assert shop.get("/1/items", limit=1).status_code == 200

    start = server.clock.offset  # wait_for_window may have moved it
    assert advance(server.url, seconds=1.5)["offset"] == start + 1.5
    assert hour_calls(server) == 1  # 1.5 clock seconds: the same sandbox hour
    moved = advance(server.url, sandbox_seconds=3600.0)

    assert moved["advanced"] == pytest.approx(36.0)
    assert moved["offset"] == pytest.approx(start + 37.5)
    assert hour_calls(server) == 0  # a full sandbox hour later: the next hour


def hour_calls(server: SandboxServer) -> int:
    usage = requests.get(server.url + "/_sandbox/base/limits", timeout=5).json()
    return int(usage["shop1"]["hour_calls"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"seconds": -1},
        {"seconds": "5"},
        {"seconds": True},
        {"seconds": 1, "sandbox_seconds": 1},
        {"minutes": 1},
        [5],
    ],
)
def test_advance_refuses_what_is_no_forward_move(sandbox: SandboxServer, body):
    response = requests.post(sandbox.url + "/_sandbox/advance", json=body, timeout=5)

    assert response.status_code == 400
    assert response.json()["error"].endswith(("see docs/sandbox.md.", "a number of 0 or more."))
    assert sandbox.clock.offset == 0.0
