"""Structured events in the JSON-lines log: one line each, fields at the top level, secrets
masked, never on the terminal; and the run lock's refusals among them."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from pipeline.errors import RunLockedError
from pipeline.lock import run_lock
from pipeline.logs import configure_logging, ensure_file_log, event, log_file


def _close_handlers() -> None:
    logger = logging.getLogger("invsync")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _events(data_dir: Path) -> list[dict]:
    lines = log_file(data_dir).read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if "event" in e]


def test_an_event_is_one_json_line_with_its_fields_masked_and_never_on_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Atzr|refresh-token-in-an-error-message"
    terminal = io.StringIO()
    monkeypatch.setattr("sys.stderr", terminal)
    configure_logging(tmp_path, {"SP_API_REFRESH_TOKEN": secret})
    try:
        event(
            "run_outcome",
            run_id="20261130T030001Z-1a2b3c",
            command="sync",
            outcome="failed",
            exit_code=4,
            exit_class="ApiAuthError",
            message=f"Amazon refused {secret}; check the token.",
        )
    finally:
        _close_handlers()
    (line,) = _events(tmp_path)
    assert line["event"] == "run_outcome" and line["run_id"] == "20261130T030001Z-1a2b3c"
    assert line["exit_code"] == 4 and line["exit_class"] == "ApiAuthError"
    assert line["level"] == "warning"  # a failure is found by level as well as by outcome
    assert secret not in log_file(tmp_path).read_text() and "***" in line["message"]
    assert "run_outcome" not in terminal.getvalue() and secret not in terminal.getvalue()


def test_an_unknown_event_name_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown log event"):
        event("run_finished", run_id="x")


def test_a_command_that_set_no_logging_up_still_writes_its_events_to_its_own_data_dir(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    try:
        ensure_file_log(first, {})
        ensure_file_log(first, {})  # once, not twice
        event("run_start", run_id="r1", command="fetch", mode="sandbox", resumed=False)
        ensure_file_log(second, {})  # another data directory replaces the first's file
        event("run_start", run_id="r2", command="fetch", mode="sandbox", resumed=False)
    finally:
        _close_handlers()
    assert [e["run_id"] for e in _events(first)] == ["r1"]
    assert [e["run_id"] for e in _events(second)] == ["r2"]


def test_a_lock_refusal_is_logged_naming_the_holder(tmp_path: Path) -> None:
    try:
        with run_lock(tmp_path, "sync"), pytest.raises(RunLockedError), run_lock(tmp_path, "fetch"):
            pass
    finally:
        _close_handlers()
    (refused,) = [e for e in _events(tmp_path) if e["event"] == "lock_refused"]
    assert refused["command"] == "fetch"
    assert refused["holder_pid"] == os.getpid() and refused["holder_command"] == "sync"
    assert refused["lock"] == str(tmp_path / "sync.lock") and refused["level"] == "warning"
