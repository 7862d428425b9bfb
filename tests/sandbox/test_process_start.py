"""Amazon in time, started as a user or a benchmark starts it: ``invsync sandbox serve
--process``, ``python -m bench.sandbox_process --process`` and ``POST /_sandbox/process``
with a preset name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests

from bench.sandbox_process import sandbox_process
from pipeline.sandbox.process import ProcessSpec


def test_sandbox_serve_starts_the_named_process_and_refuses_an_unknown_one(cli):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SP_API_", "LWA_"))}
    command = [sys.executable, "-m", "pipeline", "sandbox", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--process", "busy"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[3]
        answer = requests.get(url + "/_sandbox/process", timeout=5).json()
        assert answer["running"] is True
        assert ProcessSpec.from_json(answer["spec"]) == ProcessSpec.from_json("busy")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()

    refused = cli("sandbox", "serve", "--port", "0", "--process", "hourly")
    assert refused.exit_code == 2
    assert "hourly" in refused.stderr and "day" in refused.stderr


def test_the_bench_sandbox_process_runs_the_given_process():
    spec = {"seed": 3, "classes": [[1.0, 60.0]]}
    with sandbox_process(time_scale=100.0, n_asins=50, process=spec) as sandbox:
        answer = requests.get(sandbox.url + "/_sandbox/process", timeout=5).json()
        assert answer["spec"] == ProcessSpec.from_json(spec).to_json()
        requests.post(sandbox.url + "/_sandbox/advance", json={"seconds": 60.0}, timeout=5)
        changes = sandbox.amazon_changes()
        assert len(changes) > 50  # 50 ASINs changing every sandbox minute, for 100 minutes
        assert changes == sandbox.stats()["amazon_changes"][: len(changes)]
    with sandbox_process(time_scale=100.0, n_asins=50) as sandbox:
        assert requests.get(sandbox.url + "/_sandbox/process", timeout=5).json() == {
            "running": False
        }


def test_post_process_takes_a_preset_name_as_its_body(sandbox):
    answer = requests.post(sandbox.url + "/_sandbox/process", data="day", timeout=5)

    assert answer.status_code == 200, answer.text
    assert answer.json()["spec"] == ProcessSpec().to_json()
    wrong = requests.post(sandbox.url + "/_sandbox/process", json={"classes": 5}, timeout=5)
    assert wrong.status_code == 400
    assert "wrong shape" in wrong.json()["error"]
