"""`make sync`'s demo keeps its sandbox world under data/sandbox/ and runs it in the sync's
own process. Killed outright (kill -9) right after BASE handed out a new refresh token, the
next sync must still be let in: BASE's old refresh token stops working once a new one is
issued, so the world is written before that answer leaves (issue 14: before, every later
`make sync` failed with "BASE shop shop1 refused our credentials")."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import _environment
from tests.integration.test_sync import small_demo

pytestmark = pytest.mark.slow


def test_a_demo_sync_killed_after_a_base_token_grant_leaves_a_world_the_next_sync_enters(
    cli, clean_environment: Path
) -> None:
    small_demo(20)
    out = clean_environment / "sync.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "sync"],
            stdout=sink, stderr=subprocess.STDOUT, env=_environment(None),
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while "BASE shop2: access token refreshed" not in out.read_text():
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    again = cli("sync", timeout=300)
    assert again.exit_code in (0, 3), again.output
    assert "refused our credentials" not in again.output
    assert "resuming it" in again.stderr  # the killed run, found and finished
