"""SIGTERM in the middle of a real `invsync fetch` leaves a valid partial snapshot and an
interrupted run; `invsync fetch --resume` completes it without fetching any ASIN twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline import snapshots, warehouse
from tests.integration.test_fetch import catalogue, ledger, seed_listings, spapi_calls


@pytest.mark.slow
def test_sigterm_then_resume_fetches_every_asin_exactly_once(
    start_sandbox, data_dir: Path, cli
) -> None:
    server = start_sandbox(time_scale=200.0)  # 20 calls/s: 40 calls take about 2 s
    asins = catalogue(server)["asins"][:800]
    con = warehouse.connect(data_dir)
    seed_listings(con, asins)
    con.close()
    env = {**{k: v for k, v in os.environ.items()}, **server.env()}
    env["INVSYNC_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "fetch"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(spapi_calls(ledger(server))) < 10:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "invsync fetch --resume" in stdout

    con = warehouse.connect(data_dir)
    run_id, outcome = con.execute("select run_id, outcome from runs").fetchall()[0]
    con.close()
    assert outcome == "interrupted"
    partial = snapshots.read_snapshot(data_dir, run_id)  # validated on read
    first_calls = spapi_calls(ledger(server))
    assert 0 < partial.height < 800
    assert partial.height == sum(len(c["items"]) for c in first_calls if c["status"] == 200)

    done = cli("fetch", "--resume", env={**server.env(), "INVSYNC_DATA_DIR": str(data_dir)})
    assert done.exit_code == 0, done.output
    assert f"Resuming run {run_id}." in done.stdout
    complete = snapshots.read_snapshot(data_dir, run_id)
    assert sorted(complete["asin"]) == sorted(asins)
    calls = spapi_calls(ledger(server))
    fetched = Counter(a for c in calls if c["status"] == 200 for a in c["items"])
    assert set(fetched) == set(asins)
    assert set(fetched.values()) == {1}  # no ASIN fetched twice
    con = warehouse.connect(data_dir)
    row = con.execute(
        "select outcome, spapi_calls, fetch_interruptions from runs where run_id = $r",
        {"r": run_id},
    ).fetchall()[0]
    con.close()
    assert row == ("ok", len(calls), 1)
