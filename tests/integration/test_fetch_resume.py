"""SIGTERM in the middle of a real `invsync fetch` leaves a valid partial snapshot and an
interrupted run; `invsync fetch --resume` completes it without fetching any ASIN twice.
After `kill -9` the run's checkpoint keeps every answered batch, so a resume continues from
there, and the next plain fetch closes the dead run with a reason."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import layout, snapshots, warehouse
from tests.integration.test_fetch import catalogue, ledger, seed_listings, spapi_calls
from tests.integration.test_readers import READERS


class _AnyColumns:
    """Equal to any set of columns holding the run id (the folder key) and the ASIN."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, set) and {"run_id", "asin"} <= other


ANY_COLUMNS = _AnyColumns()


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


@pytest.mark.slow
def test_kill_9_then_resume_continues_from_the_last_checkpointed_batch(
    start_sandbox, data_dir: Path, cli
) -> None:
    """`kill -9` gives fetch no chance to write its snapshot; the batches it checkpointed
    are kept, so the two fetches together ask Amazon about every ASIN once plus at most
    the calls in flight (one per lane of the pool), and the run's snapshot holds every ASIN
    once."""
    server = start_sandbox(time_scale=200.0)
    asins = catalogue(server)["asins"][:800]
    planned = math.ceil(len(asins) / 20)
    con = warehouse.connect(data_dir)
    seed_listings(con, asins)
    con.close()
    env = {**os.environ, **server.env(), "INVSYNC_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "fetch"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(spapi_calls(ledger(server))) < 12:
        assert proc.poll() is None, "fetch ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=30)
    killed_calls = len(spapi_calls(ledger(server)))
    assert killed_calls < planned

    con = warehouse.connect(data_dir)
    run_id, outcome = con.execute("select run_id, outcome from runs").fetchall()[0]
    con.close()
    assert outcome == "running"  # nobody could record the kill
    assert not snapshots.snapshot_exists(data_dir, run_id)
    staging = layout.fetch_checkpoint_dir(data_dir, run_id).parent
    parts = sorted(staging.glob(f"run_id=*/{layout.CHECKPOINT_PARTS}"))
    for read in READERS.values():  # the checkpoint reads as one dataset, as every folder
        assert read(staging) == (sum(pq.read_metadata(p).num_rows for p in parts), ANY_COLUMNS)

    done = cli("fetch", "--resume", env={**server.env(), "INVSYNC_DATA_DIR": str(data_dir)})
    assert done.exit_code == 0, done.output
    assert f"Resuming run {run_id}." in done.stdout
    calls = spapi_calls(ledger(server))
    answered = [c for c in calls if c["status"] == 200]
    in_flight = 2  # one call per lane: getItemOffersBatch and getItemOffers
    assert planned <= len(answered)
    fetched = Counter(a for c in answered for a in c["items"])
    assert set(fetched) == set(asins)
    assert sum(n - 1 for n in fetched.values()) <= 20 + 1  # only the in-flight calls twice
    assert sum(len(c["items"]) for c in answered) <= len(asins) + 20 + 1
    assert len([c for c in answered if len(c["items"]) > 1]) <= planned + in_flight - 1
    complete = snapshots.read_snapshot(data_dir, run_id)
    assert complete.height == len(asins) == complete["asin"].n_unique()
    assert sorted(complete["asin"]) == sorted(asins)
    assert not layout.fetch_checkpoint_dir(data_dir, run_id).exists()  # removed once written
    con = warehouse.connect(data_dir)
    outcome, recorded, interruptions = con.execute(
        "select outcome, spapi_calls, fetch_interruptions from runs where run_id = $r",
        {"r": run_id},
    ).fetchall()[0]
    con.close()
    assert outcome == "ok" and interruptions == 1
    # uncounted: each lane's call in flight, and 429s a lane met since its last checkpointed
    # batch (a batch is checkpointed, with the counters, once answered)
    refused = len([c for c in calls if c["status"] == 429])
    assert len(calls) - in_flight - refused <= recorded <= len(calls)


@pytest.mark.slow
def test_a_fetch_left_running_by_a_kill_is_closed_with_a_reason_by_the_next_fetch(
    start_sandbox, data_dir: Path, cli
) -> None:
    """A plain `invsync fetch` after a `kill -9` does not leave the dead run `running`
    forever: it marks it interrupted, says so, and the run stays resumable."""
    server = start_sandbox(time_scale=200.0)
    asins = catalogue(server)["asins"][:400]
    con = warehouse.connect(data_dir)
    seed_listings(con, asins)
    con.close()
    env = {**os.environ, **server.env(), "INVSYNC_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "fetch"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(spapi_calls(ledger(server))) < 4:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=30)
    con = warehouse.connect(data_dir)
    killed = con.execute("select run_id from runs").fetchall()[0][0]
    con.close()

    fresh = cli(
        "fetch", "--max-items", "20",
        env={**server.env(), "INVSYNC_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    assert fresh.exit_code == 0, fresh.output
    assert f"Run {killed} was left running by a fetch that was killed" in fresh.stdout
    con = warehouse.connect(data_dir)
    outcome, message = con.execute(
        "select outcome, message from runs where run_id = $r", {"r": killed}
    ).fetchall()[0]
    con.close()
    assert outcome == "interrupted" and "invsync fetch --resume" in message
