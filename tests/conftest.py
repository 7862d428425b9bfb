"""Shared fixtures: a clean environment per test, a temporary workspace, the CLI runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_OUR_VARS = re.compile(r"^(SP_API_|LWA_|BASE_|EBAY_|INVSYNC_|AWS_ENV$|SP_API_DEFAULT_MARKETPLACE$)")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No invsync variable leaks in from the machine, and the working directory is empty,
    so no stray invsync.toml or .env is read."""
    for name in list(os.environ):
        if _OUR_VARS.match(name):
            monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> CliResult:
    """Run ``python -m pipeline ARGS`` in a real subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or Path.cwd(),
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def data_dir(clean_environment: Path) -> Path:
    path = clean_environment / "data"
    return path


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., Any]]:
    """A factory: ``start_sandbox(**SandboxServer kwargs)`` starts a real sandbox on 127.0.0.1
    (time scale 100 unless given); every server it started is stopped at teardown."""
    from pipeline.sandbox.server import SandboxServer

    started: list[SandboxServer] = []

    def start(**kwargs: Any) -> SandboxServer:
        kwargs.setdefault("time_scale", 100.0)
        server = SandboxServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def sandbox(start_sandbox: Callable[..., Any]) -> Any:
    """A started sandbox at time scale 100 (seed 42), stopped after the test."""
    return start_sandbox(time_scale=100.0)
