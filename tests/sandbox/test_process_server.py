"""Amazon in time, through the server: SP-API answers show the world at their moment, the
ledger records each change when it happened, and without a process nothing moves."""

from __future__ import annotations

import dataclasses

import requests

from pipeline.sandbox.catalogue import Catalogue
from pipeline.sandbox.clock import SandboxClock
from pipeline.sandbox.process import HOUR, ProcessSpec, WorldProcess
from tests.sandbox.spapi_clients import (
    access_token,
    advance,
    batch_body,
    offer_request,
    products_client,
    stats,
)

N = 200
SCALE = 100.0


def _frozen_clock() -> SandboxClock:
    """A clock that moves only when advanced: the process's sandbox time is exact."""
    return SandboxClock(lambda: 1000.0)


def _changes(server) -> list[dict]:
    response = requests.get(server.url + "/_sandbox/process/changes", timeout=5)
    response.raise_for_status()
    return list(response.json()["amazon_changes"])


def test_the_ledger_records_each_change_when_it_happened_not_when_it_was_asked(start_sandbox):
    spec = ProcessSpec(classes=((1.0, HOUR),))
    server = start_sandbox(time_scale=SCALE, n_asins=N, clock=_frozen_clock(), process=spec)
    client = products_client(server)
    asins = Catalogue(42, N).asins[:20]

    advance(server, 60.0)  # 6,000 sandbox seconds: every ASIN changes about 1.7 times
    client.get_item_offers_batch([offer_request(a) for a in asins])

    recorded = stats(server)["amazon_changes"]
    replay = WorldProcess(Catalogue(42, N), spec).advance_to(60.0 * SCALE)
    assert [(c["asin"], c["process_t"], c["kind"]) for c in recorded] == [
        (c.asin, c.t, c.kind) for c in replay
    ]
    assert len(recorded) > N  # the world moved while nobody asked
    for change in recorded:
        assert abs(change["t"] - change["process_t"] / SCALE) < 1e-9
        assert 0.0 < change["t"] <= 60.0
    assert min(c["t"] for c in recorded) < 10.0  # spread over the minute, not stamped at 60
    assert _changes(server) == recorded


def test_a_stock_out_shows_as_no_buyable_offers_and_the_restock_brings_the_offers_back(
    start_sandbox,
):
    spec = ProcessSpec(classes=((1.0, HOUR),), stockout_share=1.0, mean_outage_seconds=HOUR)
    server = start_sandbox(time_scale=SCALE, n_asins=N, clock=_frozen_clock(), process=spec)
    pristine = Catalogue(42, N)
    asins = [a for a in pristine.asins if pristine.products[a].offers][:20]
    world = WorldProcess(Catalogue(42, N), spec)
    t = 1800.0  # sandbox seconds
    world.advance_to(t)
    gone = [a for a in asins if world.out_of_stock(a)]
    assert gone and len(gone) < len(asins)

    advance(server, t / SCALE)
    answer = requests.post(
        server.url + "/batches/products/pricing/v0/itemOffers",
        json=batch_body(asins),
        headers={"x-amz-access-token": access_token(server)},
        timeout=5,
    ).json()
    status = {r["request"]["Asin"]: r["body"]["payload"]["status"] for r in answer["responses"]}
    assert sorted(a for a, s in status.items() if s == "NoBuyableOffers") == sorted(gone)

    asin = gone[0]
    restocked = next(
        c.t for c in world.advance_to(30 * 86_400.0) if c.asin == asin and c.kind == "restock"
    )
    advance(server, (restocked - t) / SCALE + 1e-6)
    client = products_client(server)
    payload = client.get_item_offers_batch([offer_request(asin)]).payload["responses"][0]
    assert payload["body"]["payload"]["status"] == "Success"
    listed = sorted(int(o["ListingPrice"]["Amount"]) for o in payload["body"]["payload"]["Offers"])
    assert listed == sorted(o.listing for o in pristine.products[asin].offers)


def test_without_a_process_the_world_stays_as_it_is_over_time(start_sandbox):
    server = start_sandbox(time_scale=SCALE, n_asins=N, clock=_frozen_clock())
    before = requests.get(
        server.url + "/_sandbox/catalogue/" + server.state.apis["catalogue"].asins[0], timeout=5
    ).json()
    pristine = Catalogue(42, N)

    advance(server, 7 * 86_400.0 / SCALE)
    products_client(server).get_item_offers_batch([offer_request(a) for a in pristine.asins[:20]])

    catalogue = server.state.apis["catalogue"]
    assert {
        a: [dataclasses.astuple(o) for o in p.offers] for a, p in catalogue.products.items()
    } == {a: [dataclasses.astuple(o) for o in p.offers] for a, p in pristine.products.items()}
    assert stats(server)["amazon_changes"] == []
    assert (
        requests.get(server.url + "/_sandbox/catalogue/" + pristine.asins[0], timeout=5).json()
        == before
    )


def test_post_process_starts_the_process_at_the_current_sandbox_time(start_sandbox):
    server = start_sandbox(time_scale=SCALE, n_asins=N, clock=_frozen_clock())
    advance(server, 100.0)  # before the process: no change belongs here
    started = requests.post(
        server.url + "/_sandbox/process", json={"classes": [[1.0, 3600.0]]}, timeout=5
    )
    assert started.status_code == 200, started.text
    assert started.json()["started"] == 100.0

    advance(server, 36.0)
    changes = _changes(server)
    replay = WorldProcess(Catalogue(42, N), ProcessSpec(classes=((1.0, 3600.0),))).advance_to(
        3600.0
    )
    assert [(c["asin"], c["kind"]) for c in changes] == [(c.asin, c.kind) for c in replay]
    assert all(100.0 < c["t"] <= 136.0 for c in changes)

    refused = requests.post(
        server.url + "/_sandbox/process", json={"classes": [[0.5, 60]]}, timeout=5
    )
    assert refused.status_code == 400
    assert "add up to 1" in refused.json()["error"]
