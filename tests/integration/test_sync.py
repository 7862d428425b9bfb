"""`invsync sync` end to end on the sandbox demo: the summary, a second run that pushes
only what changed, one run at a time, and a daemon stopped by SIGTERM mid-run that the
next sync resumes."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import _OUR_VARS

pytestmark = pytest.mark.slow


def ledger(data: Path, run_id: str) -> dict:
    return json.loads((data / "sandbox" / "ledger" / f"{run_id}.json").read_text())


def run_ids(data: Path) -> list[str]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("select run_id from runs order by started_at").fetchall()]
    finally:
        con.close()


def query(data: Path, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


SMALL_DEMO = "[sandbox]\nn_asins = 300\n"  # about 450 listings: the whole flow in seconds


def small_demo(time_scale: float) -> None:
    """invsync.toml for a sandbox demo of 300 ASINs at ``time_scale``."""
    Path("invsync.toml").write_text(SMALL_DEMO + f"time_scale = {time_scale}\n")


def test_two_demo_syncs_the_second_pushes_only_what_changed(cli) -> None:
    data = Path.cwd() / "data"
    small_demo(400)
    first = cli("sync", timeout=300)
    assert first.exit_code in (0, 3), first.output  # 3: the gate held a few demo rows
    assert first.stdout.splitlines()[0].startswith("Running against the sandbox")
    summary = first.stdout
    calls_line = re.search(r"SP-API calls .*", summary).group(0)
    # per lane: its calls for the ASINs it answered, then the least calls those ASINs need
    valid = sum(int(n.replace(",", "")) for n in re.findall(r"for ([\d,]+) ASINs", calls_line))
    calls = math.ceil(valid / 20)
    made = int(re.search(r"SP-API calls +([\d,]+)", summary).group(1).replace(",", ""))
    least = int(re.search(r"least possible ([\d,]+)", calls_line).group(1).replace(",", ""))
    retried = int(re.search(r"retries (\d+)", summary).group(1))
    assert valid > 250 and made >= retried and least <= made
    assert "SP-API in Phase 2 0" in summary
    assert re.search(r"fetch time .* against a quota floor of", summary)
    # what the pull found, with the counts of what left the sync or changed by hand
    assert re.search(
        r"pulled +Listings pulled from 3 account\(s\): 0 gone, 0 unmapped, 0 drifted", summary
    )
    for platform in ("base", "ebay"):
        assert re.search(rf"{platform} +diffs +.*price_up \d+", summary)
        assert re.search(rf"{platform} +pushes +ok \d+ in \d+ calls", summary)

    second = cli("sync", timeout=300)
    assert second.exit_code in (0, 3), second.output
    one, two = run_ids(data)
    first_ledger, second_ledger = ledger(data, one), ledger(data, two)
    # the sandbox's world moved one tick; the second run fetched every ASIN once again
    assert second_ledger["tick"] == first_ledger["tick"] + 1
    # the pool's two lanes (getItemOffersBatch, getItemOffers) made every call the run counted
    made_first = sum(
        v["calls"] for k, v in first_ledger["per_operation"].items() if k.startswith("spapi.")
    )
    assert made == made_first
    made_second = int(re.search(r"SP-API calls +([\d,]+)", second.stdout).group(1).replace(",", ""))
    per_op = second_ledger["per_operation"]
    assert (
        per_op["spapi.getItemOffersBatch"]["calls"]
        + per_op.get("spapi.getItemOffers", {"calls": 0})["calls"]
        == made_second
    )
    assert per_op["spapi.getItemOffersBatch"]["calls"] < calls  # the pool took a share
    # every change the platforms applied in run 2 is one journal row of run 2, applied once
    changes = [(c["platform"], c["account"], c["key"]) for c in second_ledger["changes"]]
    assert len(changes) == len(set(changes))
    pushed = query(
        data,
        "select platform, account_id, listing_key from push_journal"
        " where run_id = $r and state = 'ok'",
        {"r": two},
    )
    assert sorted(changes) == sorted(pushed)
    assert 0 < len(changes) < len(first_ledger["changes"]) / 5
    # and each was due to Amazon moving or to a row the gate held last time
    moved = {
        r[0]
        for r in query(
            data,
            "select a.asin from snapshots a join snapshots b using (asin)"
            " where a.run_id = $one and b.run_id = $two"
            " and (a.price_jpy is distinct from b.price_jpy or a.in_stock is distinct from b.in_stock"
            "      or a.status <> b.status)",
            {"one": one, "two": two},
        )
    }
    held_before = {
        (r[0], r[1])
        for r in query(
            data, "select account_id, listing_key from diffs where run_id = $r and held", {"r": one}
        )
    }
    asin_of = dict(
        ((r[0], r[1], r[2]), r[3])
        for r in query(
            data, "select platform, account_id, listing_key, asin from push_journal where run_id = $r", {"r": two}
        )
    )  # fmt: skip
    for key in pushed:
        assert asin_of[key] in moved or (key[1], key[2]) in held_before, key


def test_a_second_sync_exits_at_once_naming_the_running_one(cli, clean_environment: Path) -> None:
    small_demo(4)  # 15 calls at 0.4 per second: a fetch of about 35 s
    env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    first = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sync"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        lock = clean_environment / "data" / "sync.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and str(first.pid) in lock.read_text()):
            assert time.monotonic() < deadline and first.poll() is None, (
                "the first sync never locked"
            )
            time.sleep(0.05)
        started = time.monotonic()
        second = cli("sync")
        assert time.monotonic() - started < 10  # at once, no waiting for the first
        assert second.exit_code == 2
        assert f"pid {first.pid}" in second.stderr and "started" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)


def test_a_lock_left_by_a_killed_sync_is_recovered_with_a_warning(
    cli, clean_environment: Path
) -> None:
    small_demo(4)
    env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    victim = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sync"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    lock = clean_environment / "data" / "sync.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and str(victim.pid) in lock.read_text()):
        assert time.monotonic() < deadline, "the sync never locked"
        time.sleep(0.05)
    victim.kill()  # SIGKILL: no clean-up at all
    victim.wait(timeout=30)
    small_demo(400)
    result = cli("sync", timeout=300)
    assert result.exit_code in (0, 3), result.output
    assert "Recovered the run lock" in result.stderr and f"pid {victim.pid}" in result.stderr


def test_sigterm_stops_the_daemon_cleanly_and_the_next_sync_resumes(
    cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    small_demo(10)  # 15 calls, one a second
    env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "daemon", "--every", "1h"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert daemon.stdout is not None
    seen = []
    for line in daemon.stdout:  # wait until the fetch is under way
        seen.append(line)
        if line.startswith("fetch:"):
            break
    time.sleep(2.0)  # a few batches in
    daemon.send_signal(signal.SIGTERM)
    out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, "".join(seen) + out
    assert "Daemon stopped after 1 run(s)" in out
    (run_id,) = run_ids(data)
    assert query(data, "select outcome from runs where run_id = $r", {"r": run_id}) == [
        ("interrupted",)
    ]
    fetched_first = {
        r[0]
        for r in query(
            data,
            "select asin from snapshots where run_id = $r"
            " and status in ('ok', 'no_offer', 'filtered_out', 'invalid_asin')",
            {"r": run_id},
        )
    }
    assert fetched_first  # the stop came after some batches were answered

    small_demo(400)
    resumed = cli("sync", timeout=300)
    assert resumed.exit_code in (0, 3), resumed.output
    assert f"Run {run_id} (sandbox, resumed)" in resumed.stdout
    assert run_ids(data) == [run_id]  # the same run, completed
    sent = [
        asin
        for call in ledger(data, run_id)["calls"]
        if call["operation"] == "getItemOffersBatch" and call["status"] == 200
        for asin in call["items"]
    ]
    assert sent and not set(sent) & fetched_first  # nothing fetched twice
    outcome = query(data, "select outcome from runs where run_id = $r", {"r": run_id})[0][0]
    assert outcome in ("ok", "held")


def test_every_api_command_starts_the_sandbox_itself_in_sandbox_mode(cli) -> None:
    """`listings pull`, `fetch` and `load` reach the APIs the way `sync` does: with no
    endpoints configured they start the sandbox on the persisted world (they used to refuse:
    "EBAY_API_URL is not set, and sandbox mode has no default")."""
    small_demo(400)
    pulled = cli("listings", "pull", "--platform", "ebay")
    assert pulled.exit_code == 0, pulled.output
    assert "in-process sandbox" in pulled.stdout and "Pulled" in pulled.stdout
    fetched = cli("fetch")
    assert fetched.exit_code == 0, fetched.output
    assert cli("transform").exit_code == 0
    reviewed = cli("review")
    assert reviewed.exit_code == 0, reviewed.output  # review only shows: never exit 3
    loaded = cli("load")
    assert loaded.exit_code == 0, loaded.output
    assert "in-process sandbox" in loaded.stdout
    assert re.search(r"ebay ebay-main: \d+ ok", loaded.stdout), loaded.stdout
    # the world the commands shared is persisted for the next one
    assert (Path("data") / "sandbox" / "world.json").is_file()
