"""The log tells the story: "what happened at 03:00" is answered from
``data/logs/invsync.jsonl`` alone, as ``jq`` would read it — a held sync stage by stage, a
failed live run's final error, a lock refusal, a resumed run — and the one-liners in
docs/operations.md ("Reading the log") work on it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import _environment
from tests.integration.test_config_cli import LIVE, LIVE_ENV
from tests.integration.test_sync import small_demo

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["pull", "pull", "extract", "fetch", "transform", "review", "load"]


def events(data: Path, name: str | None = None) -> list[dict]:
    """The log's events (as ``jq 'select(.event)'``), oldest first; ``name`` only."""
    lines = (data / "logs" / "invsync.jsonl").read_text(encoding="utf-8").splitlines()
    found = [e for e in map(json.loads, lines) if "event" in e]
    return [e for e in found if name is None or e["event"] == name]


def story(data: Path, run_id: str) -> list[dict]:
    return [e for e in events(data) if e.get("run_id") == run_id]


def test_a_held_sync_tells_its_story_stage_by_stage_and_the_documented_jq_lines_read_it(
    cli, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    before = datetime.now(UTC).isoformat(timespec="seconds")
    small_demo(400)
    result = cli("sync", timeout=300)
    assert result.exit_code == 3, result.output  # the seeded demo holds a row
    (outcome,) = events(data, "run_outcome")
    run_id = outcome["run_id"]
    told = story(data, run_id)
    assert told[0]["event"] == "run_start" and told[0]["command"] == "sync"
    assert told[0]["resumed"] is False and told[0]["mode"] == "sandbox"
    ends = [e for e in told if e["event"] == "stage_end"]
    assert [e["stage"] for e in ends] == STAGES
    assert [e["platform"] for e in ends[:2]] == ["base", "ebay"]
    assert all(e["seen"] > 0 for e in ends[:2]) and all(e["seconds"] >= 0 for e in ends)
    assert ends[-1]["ok"] > 0  # the load's counts
    assert told[-1] == outcome
    assert (outcome["outcome"], outcome["exit_code"]) == ("held", 3)
    assert outcome["exit_class"] == "HeldForReviewError"
    assert "invsync approve" in outcome["message"]

    lock_holder = subprocess.Popen(  # hold the lock from another process, as a sync would
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from pipeline.lock import run_lock\n"
         "with run_lock(Path(sys.argv[1]), 'sync'):\n"
         "    print('locked', flush=True); time.sleep(60)", str(data)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert lock_holder.stdout is not None and lock_holder.stdout.readline() == "locked\n"
        refused = cli("sync")
    finally:
        lock_holder.kill()
        lock_holder.communicate(timeout=30)  # and its pipe closed
    assert refused.exit_code == 2
    for name, fields in _documented_one_liners():
        rows = _run_one_liner(name, clean_environment, before, run_id)
        if name == "outcomes":
            assert [(r["run_id"], r["outcome"]) for r in rows] == [
                (run_id, "held"),
                (None, "failed"),  # the refused sync: no run was started
            ]
            assert rows[1]["exit_class"] == "RunLockedError" and rows[1]["exit_code"] == 2
        elif name == "story":
            assert [r["event"] for r in rows] == ["run_start", *["stage_end"] * 7, "run_outcome"]
            assert rows[-1]["outcome"] == "held"
        else:
            assert rows == [f"pid {lock_holder.pid} (sync"]
        assert fields  # the filter names the fields it reads

    loaded = cli("load")  # a load and a fetch by hand end in the log as well
    fetched = cli("fetch", "--max-items", "20")
    assert fetched.exit_code == 0, fetched.output
    load_end, fetch_end = events(data, "run_outcome")[-2:]
    assert (load_end["command"], load_end["run_id"]) == ("load", run_id)
    assert load_end["exit_code"] == loaded.exit_code
    fetch_run = events(data, "run_start")[-1]["run_id"]
    assert fetch_run != run_id and events(data, "run_start")[-1]["command"] == "fetch"
    assert (fetch_end["command"], fetch_end["run_id"], fetch_end["outcome"]) == (
        "fetch",
        fetch_run,
        "ok",
    )


def _documented_one_liners() -> list[tuple[str, set[str]]]:
    """The ``jq`` lines of docs/operations.md "Reading the log", by what they answer, with
    the fields each filter reads."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Reading the log", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("jq ")]
    assert len(lines) == 3, lines
    names = ["outcomes", "story", "refusals"]
    return [
        (n, set(re.findall(r"\.([a-z_]+)", line))) for n, line in zip(names, lines, strict=True)
    ]


def _run_one_liner(name: str, cwd: Path, since: str, run_id: str) -> list:
    """Run the documented line (with jq when the machine has it; else its filter's meaning
    in Python over the same fields): ``--arg since`` is the test's start, ``--arg run`` the
    run."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Reading the log", 1)[1].split("\n## ", 1)[0]
    line = [ln for ln in section.splitlines() if ln.startswith("jq ")][
        ["outcomes", "story", "refusals"].index(name)
    ]
    line = re.sub(r'--arg since "\$\(date[^)]*\)"', f"--arg since {since}", line)
    line = re.sub(r"--arg run \S+", f"--arg run {run_id}", line)
    if shutil.which("jq"):
        done = subprocess.run(
            ["bash", "-c", line], cwd=cwd, capture_output=True, text=True, check=True
        )
        out = done.stdout.splitlines()
        if name == "refusals":
            return [re.search(r"pid \d+ \(\w+", r).group(0) for r in out]
        return [json.loads(r) for r in out]
    found = events(cwd / "data")  # the same filters, field by field
    if name == "outcomes":
        return [e for e in found if e["event"] == "run_outcome" and e["ts"] >= since]
    if name == "story":
        return [e for e in found if e.get("run_id") == run_id]
    return [
        f"pid {e['holder_pid']} ({e['holder_command']}"
        for e in found
        if e["event"] == "lock_refused"
    ]


def test_a_failed_live_run_leaves_its_final_error_in_the_log_and_no_secret(
    cli, start_sandbox, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    sandbox = start_sandbox(n_asins=300)
    Path("invsync.toml").write_text(LIVE)
    env = {
        **LIVE_ENV,
        "LWA_APP_ID": "amzn1.application-oa2-client.x",
        "LWA_CLIENT_SECRET": "lwa-client-secret-777777",
        "SP_API_REFRESH_TOKEN": "Atzr|sp-api-refresh-555555",
        **{k: sandbox.url for k in ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL")},
        "EBAY_API_URL": sandbox.url,
    }
    result = cli("sync", env=env)
    assert result.exit_code == 4, result.output  # the sandbox refuses credentials not its own
    (start,) = events(data, "run_start")
    (outcome,) = events(data, "run_outcome")
    assert start["mode"] == "live" and outcome["run_id"] == start["run_id"]
    assert (outcome["outcome"], outcome["exit_code"]) == ("failed", 4)
    assert outcome["exit_class"] == "BaseAuthError"
    assert "refused our credentials" in outcome["message"]
    assert outcome["message"] in result.stderr  # the sentence the terminal showed
    written = (data / "logs" / "invsync.jsonl").read_text(encoding="utf-8")
    for name, value in env.items():
        if "SECRET" in name or "TOKEN" in name:
            assert value not in written, name


def test_a_daemon_run_stopped_then_resumed_tells_both_halves(cli, clean_environment: Path) -> None:
    data = clean_environment / "data"
    small_demo(1)  # a slow fetch, stopped in its middle
    out = clean_environment / "daemon.out"
    with out.open("wb") as sink:
        first = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "daemon", "--every", "1h"],
            stdout=sink, stderr=subprocess.STDOUT, env=_environment(None),
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while "fetch:" not in out.read_text():
        assert first.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.1)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=120)
    small_demo(400)
    resumed = cli("sync", timeout=300)
    assert resumed.exit_code in (0, 3), resumed.output
    (stopped, daemon, finished) = events(data, "run_outcome")
    run_id = stopped["run_id"]
    assert (stopped["command"], stopped["outcome"], stopped["exit_code"], stopped["level"]) == (
        "sync",
        "interrupted",
        0,
        "info",
    )
    assert (daemon["command"], daemon["outcome"], daemon["level"]) == ("daemon", "stopped", "info")
    assert daemon["message"].startswith("Daemon stopped after 1 run(s)")
    assert finished["run_id"] == run_id and finished["outcome"] in ("ok", "held")
    starts = events(data, "run_start")
    assert [(s["run_id"], s["resumed"]) for s in starts] == [(run_id, False), (run_id, True)]
    second_half = story(data, run_id)[story(data, run_id).index(starts[1]) :]
    assert (
        [e["stage"] for e in second_half if e["event"] == "stage_end"]
        == [
            "settle",
            *STAGES[:2],  # pulled again ...
            *STAGES[3:],  # ... and no extract: the fetch plan is kept
        ]
    )
    assert os.path.getsize(data / "logs" / "invsync.jsonl") > 0
