"""The sandbox server itself: real sockets, latency, persistence, environment, and
``invsync sandbox serve`` as a user runs it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
import requests

from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.sandbox.server import SandboxServer
from tests.sandbox.spapi_clients import BATCH_PATH, access_token, batch_body


def test_a_200_takes_a_few_milliseconds_not_the_40_ms_of_nagle(sandbox):
    """TCP_NODELAY: headers and body leave in separate packets; without it the delayed ACK
    adds ~40 ms to every response."""
    token = access_token(sandbox)
    asin = sandbox.state.apis["catalogue"].asins[0]
    path = (
        f"/products/pricing/v0/items/{asin}/offers?MarketplaceId=A1VC38T7YXB528&ItemCondition=New"
    )
    durations = []
    for _ in range(40):
        sandbox.clock.advance(0.021)  # clock seconds: one getItemOffers token at 0.5 × 100 req/s
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
        connection.request("GET", path, headers={"x-amz-access-token": token})
        response = connection.getresponse()
        response.read()
        connection.close()
        durations.append(time.perf_counter() - started)
        assert response.status == 200

    assert statistics.median(durations) < 0.015  # seconds; measured ≈ 1.5 ms


def test_the_library_host_header_bug_is_tolerated(sandbox):
    """python-amazon-sp-api sends ``host: endpoint[8:]`` (``27.0.0.1:PORT`` for http)."""
    token = access_token(sandbox)
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    body = json.dumps(batch_body(sandbox.state.apis["catalogue"].asins[:1]))
    connection.request(
        "POST",
        BATCH_PATH,
        body=body,
        headers={
            "Host": sandbox.url[8:],
            "x-amz-access-token": token,
            "content-type": "application/json",
        },
    )
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.status == 200


def test_an_unknown_sp_api_path_is_a_json_404(sandbox):
    response = requests.get(sandbox.url + "/products/pricing/v0/nothing", timeout=5)

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NotFound"


def test_env_points_every_endpoint_at_the_server_with_demo_credentials(sandbox):
    env = sandbox.env()

    for name in ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL", "EBAY_API_URL"):
        assert env[name] == sandbox.url
    assert env["LWA_APP_ID"] == DEMO_ENV["LWA_APP_ID"]
    assert sandbox.url.startswith("http://127.0.0.1:")


def test_stop_frees_the_port_and_a_second_stop_is_harmless():
    server = SandboxServer().start()
    port = server.port
    server.stop()
    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)


def test_n_asins_sizes_the_catalogue(start_sandbox):
    server = start_sandbox(n_asins=10_000)

    summary = requests.get(server.url + "/_sandbox/catalogue", timeout=10).json()

    assert len(summary["asins"]) == 10_000
    assert summary["asins"][:2000] == start_sandbox().state.apis["catalogue"].asins


def test_a_persisted_world_continues_across_servers(tmp_path):
    world = tmp_path / "sandbox-world.json"
    with SandboxServer(persist_path=world) as first:
        requests.post(first.url + "/_sandbox/tick", params={"n": 3}, timeout=5)
        prices = {
            a: first.state.apis["catalogue"].reference_price(a)
            for a in first.state.apis["catalogue"].asins
        }
    saved = json.loads(world.read_text())
    assert (saved["seed"], saved["tick"]) == (42, 3)
    assert saved["apis"]["catalogue"] == {"seed": 42, "n_asins": 2000, "tick": 3}

    with SandboxServer(persist_path=world) as second:
        catalogue = second.state.apis["catalogue"]
        assert catalogue.tick_number == 3
        assert {a: catalogue.reference_price(a) for a in catalogue.asins} == prices
        requests.post(second.url + "/_sandbox/tick", timeout=5)
        assert json.loads(world.read_text())["tick"] == 4  # saved after each tick


def test_a_world_from_another_seed_is_refused(tmp_path):
    world = tmp_path / "sandbox-world.json"
    with SandboxServer(persist_path=world, seed=1):
        pass

    with pytest.raises(ValueError, match="seed 1"):
        SandboxServer(persist_path=world, seed=2)


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SP_API_", "LWA_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    return process, first_line


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_sandbox_serve_prints_its_url_and_exports_and_stops_on_a_signal(stop_signal):
    process, first_line = _serve(
        "--port", "0", "--time-scale", "50", "--seed", "7", "--faults", "zero_offers"
    )
    try:
        assert first_line.startswith("sandbox serving on http://127.0.0.1:")
        url = first_line.split()[3]
        lines = [process.stdout.readline().strip() for _ in range(5)]
        assert f"export SP_API_ENDPOINT={url}" in lines
        assert f"export EBAY_API_URL={url}" in lines
        summary = requests.get(url + "/_sandbox/stats", timeout=5).json()
        assert (summary["time_scale"], summary["seed"]) == (50.0, 7)
        assert requests.get(url + "/_sandbox/faults", timeout=5).json()["zero_offers"] is True
    finally:
        process.send_signal(stop_signal)
        code = process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
    assert code == 0


def test_sandbox_serve_rejects_a_bad_fault_spec(cli):
    result = cli("sandbox", "serve", "--port", "0", "--faults", "no_such_fault")

    assert result.exit_code == 2
    assert "no_such_fault" in result.stderr
