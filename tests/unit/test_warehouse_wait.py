"""Waiting for a warehouse another process holds: a bounded wait announced once, then one
sentence naming the holder (exit 2) — never DuckDB's IOException as a bug."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline import warehouse
from pipeline.errors import ConfigError, WarehouseBusyError

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
con.close()
"""


@contextmanager
def held(data_dir: Path, mode: str = "write") -> Iterator[subprocess.Popen[str]]:
    """Another process holds the warehouse (``mode`` write or read) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse.warehouse_path(data_dir)), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    warehouse.connect(tmp_path).close()  # created and migrated
    return tmp_path


def test_a_read_waits_then_names_the_sync_that_holds_the_warehouse(data_dir: Path) -> None:
    notices: list[str] = []
    with held(data_dir) as holder:
        lock = {"pid": holder.pid, "started_at": "2025-01-02T03:04:05+00:00", "command": "sync"}
        (data_dir / "sync.lock").write_text(json.dumps(lock))
        started = time.monotonic()
        with warehouse.wait_notices(notices.append), pytest.raises(WarehouseBusyError) as raised:
            warehouse.connect(data_dir, read_only=True, wait=1.0)
        waited = time.monotonic() - started
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert f"sync run pid {holder.pid} (started 2025-01-02T03:04:05+00:00)" in message
    assert str(warehouse.warehouse_path(data_dir)) in message and "try again" in message
    assert waited >= 1.0  # it did wait (no upper bound: a busy machine may be slow)
    assert len(notices) == 1 and notices[0].startswith("Waiting for the warehouse")
    assert f"pid {holder.pid}" in notices[0]


def test_without_a_sync_lock_the_process_duckdb_names_is_the_holder(data_dir: Path) -> None:
    with held(data_dir, "read") as holder, pytest.raises(WarehouseBusyError) as raised:
        warehouse.connect(data_dir, wait=0)  # a writer is refused while a reader holds it
    assert f"process pid {holder.pid} (python" in str(raised.value)
    assert "is reading it" in str(raised.value)


def test_a_wait_ends_as_soon_as_the_holder_lets_go(data_dir: Path) -> None:
    notices: list[str] = []
    with held(data_dir) as holder, warehouse.wait_notices(notices.append):
        assert holder.stdin is not None
        holder.stdin.close()  # the holder closes its connection and exits
        con = warehouse.connect(data_dir, read_only=True, wait=60)
    try:
        assert con.execute("select count(*) from schema_migrations").fetchall()[0][0] > 0
    finally:
        con.close()
    assert len(notices) <= 1  # announced once, if the holder was not gone already


def test_the_wait_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert warehouse.default_wait() == warehouse.DEFAULT_WAIT_SECONDS
    monkeypatch.setenv(warehouse.WAIT_ENV, "2.5")
    assert warehouse.default_wait() == 2.5
    monkeypatch.setenv(warehouse.WAIT_ENV, "soon")
    with pytest.raises(ConfigError, match=warehouse.WAIT_ENV):
        warehouse.default_wait()


def test_a_damaged_file_is_not_called_busy(tmp_path: Path) -> None:
    warehouse.warehouse_path(tmp_path).write_bytes(b"not a duckdb file" * 512)
    with pytest.raises(Exception) as raised:
        warehouse.connect(tmp_path, read_only=True, wait=0)
    assert not isinstance(raised.value, WarehouseBusyError)


def test_a_command_beside_a_writer_says_busy_on_stderr_never_a_bug(
    cli, clean_environment: Path
) -> None:
    data_dir = clean_environment / "data"
    warehouse.connect(data_dir).close()
    with held(data_dir) as holder:
        for args in (("runs",), ("transform",)):  # a read-only open and a writing one
            result = cli(*args, env={warehouse.WAIT_ENV: "0.5"})
            assert result.exit_code == 2, result
            assert "hit a bug" not in result.output
            lines = result.stderr.splitlines()
            assert lines[0].startswith("Waiting for the warehouse")  # the notice, once
            assert lines[-1].startswith("Error: The warehouse") and "busy" in lines[-1]
            assert f"pid {holder.pid}" in lines[-1]
        # deciding never opens the warehouse: approve answers at once, about the run
        decided = cli("approve", "r1", env={warehouse.WAIT_ENV: "0.5"})
        assert decided.exit_code == 2 and "Run r1 has no diff" in decided.stderr
        assert "Waiting" not in decided.stderr
        checked = cli("config", "check", env={warehouse.WAIT_ENV: "0.5"})
        assert checked.exit_code == 0 and not checked.stderr  # it never opens the warehouse
