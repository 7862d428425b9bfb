"""One run at a time, and logs that carry the run id and never a secret."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import RunLockedError
from pipeline.lock import LOCK_NAME, run_lock
from pipeline.logs import configure_logging, run_context

HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.lock import run_lock
    with run_lock(Path(sys.argv[1]), "sync"):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def test_a_second_run_exits_at_once_naming_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError) as caught, run_lock(tmp_path):
            pass
        assert f"pid {holder.pid}" in str(caught.value) and "started" in str(caught.value)
        assert caught.value.exit_code == 2
    finally:
        holder.communicate("done\n", timeout=30)
    with run_lock(tmp_path) as me:  # released when the holder ends
        assert me.pid == os.getpid()


def test_a_lock_left_by_a_killed_process_is_recovered_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: no clean-up runs
    holder.communicate(timeout=30)
    assert str(holder.pid) in (tmp_path / LOCK_NAME).read_text()
    with caplog.at_level(logging.WARNING, logger="invsync.lock"), run_lock(tmp_path):
        pass
    assert any(
        f"pid {holder.pid}" in r.getMessage() and "is gone" in r.getMessage()
        for r in caplog.records
    )


def test_json_logs_carry_the_run_id_and_mask_secrets(tmp_path: Path) -> None:
    secret = "Atzr|very-secret-refresh-token"
    configure_logging(tmp_path, {"SP_API_REFRESH_TOKEN": secret}, terminal=False)
    log = logging.getLogger("invsync.test")
    try:
        with run_context("20261129T000000Z-abcdef"):
            log.info("refreshing with %s", secret)
            try:
                raise RuntimeError(f"token {secret} refused")
            except RuntimeError:
                log.exception("failed")
        log.info("outside a run")
    finally:
        for handler in logging.getLogger("invsync").handlers:
            handler.close()
        logging.getLogger("invsync").handlers.clear()
    text = (tmp_path / "logs" / "invsync.jsonl").read_text()
    assert secret not in text and "very-secret" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [entry["run_id"] for entry in lines] == ["20261129T000000Z-abcdef"] * 2 + [None]
    assert "***" in lines[0]["message"] and "RuntimeError" in lines[1]["exception"]
