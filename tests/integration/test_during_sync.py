"""Operators' commands while a real `invsync sync` runs: the sync holds the warehouse only
while a stage writes it, never during its SP-API fetch, so reviewing, approving, importing
and reading work meanwhile — and whatever has to wait says so in a sentence, never as a
bug (exit 1)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import _environment
from tests.integration.test_sync import small_demo

pytestmark = pytest.mark.slow


def latest_run(data: Path) -> tuple[str, str, int | None]:
    """The newest run's id, outcome and the number of times its fetch was interrupted."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select run_id, outcome, fetch_interruptions from runs"
            " order by started_at desc, run_id desc limit 1"
        ).fetchall()
    finally:
        con.close()
    return rows[0]


def wait_for_line(path: Path, prefix: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not any(line.startswith(prefix) for line in path.read_text().splitlines()):
        assert proc.poll() is None, f"the sync ended early:\n{path.read_text()}"
        assert time.monotonic() < deadline, f"no {prefix!r} line:\n{path.read_text()}"
        time.sleep(0.1)


def test_review_approve_import_runs_and_config_work_while_a_sync_fetches(
    cli, cli_process, clean_environment: Path
) -> None:
    data = clean_environment / "data"
    small_demo(400)
    first = cli("sync", "--dry-run")  # a finished run to review and approve (no pushes: quicker)
    assert first.exit_code in (0, 3), first.output
    previous, _, _ = latest_run(data)

    small_demo(1)  # 0.1 requests/s: the second sync's 15 calls would take over two minutes
    csv = clean_environment / "one_listing.csv"
    csv.write_text(
        "account_id,item_id,asin,price_jpy,stock,visible,status\n"
        "shop1,990001,B0C1234567,1280,3,1,listed\n",
        encoding="utf-8",
    )
    log = clean_environment / "sync.out"
    with log.open("wb") as out:
        sync = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "sync"],
            stdout=out, stderr=subprocess.STDOUT, env=_environment(None),
        )  # fmt: skip
    try:
        wait_for_line(log, "fetch:", sync, seconds=60)  # its fetch has begun
        commands = {
            "review": (("review", "--run", previous), (0, 3)),
            "approve": (("approve", previous, "--platform", "base"), (0,)),
            "import": (("listings", "import", str(csv), "--platform", "base"), (0,)),
            "runs": (("runs",), (0,)),
            "config": (("config", "check"), (0,)),
        }
        for name, (args, codes) in commands.items():
            result = cli_process(*args, timeout=120)
            assert result.exit_code != 1 and "hit a bug" not in result.output, (name, result)
            assert result.exit_code in codes, (name, result)
            assert result.output.strip(), name  # it said what it did
        assert sync.poll() is None, log.read_text()  # all of it happened during the sync ...
    finally:
        sync.send_signal(signal.SIGTERM)  # the fetch abandons the batch it waits for
        sync.wait(timeout=120)
    assert sync.returncode == 0, log.read_text()
    run_id, outcome, interruptions = latest_run(data)
    assert run_id != previous and outcome == "interrupted"
    assert interruptions == 1  # ... in its fetch, where the SIGTERM found it
    imported = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        assert imported.execute(
            "select count(*) from listings_base where item_id = 990001"
        ).fetchall() == [(1,)]
    finally:
        imported.close()
