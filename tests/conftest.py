"""Shared fixtures: a clean environment per test, a temporary workspace, the CLI runners
(in-process by default; a real subprocess where a process of its own is the point)."""

from __future__ import annotations

import contextlib
import io
import logging
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


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    """The machine's environment less invsync's own variables, plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    return full_env


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> CliResult:
    """Run ``pipeline.cli.main(ARGS)`` in this process, as ``invsync ARGS`` would run: with
    ``env`` as the environment (invsync's variables from the machine removed), ``cwd`` as the
    working directory, and stdout / stderr captured. ``timeout`` is kept for the call
    sites' documentation; pytest-timeout bounds an in-process call."""
    from pipeline import cli as cli_module

    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    os.environ.clear()
    os.environ.update(_environment(env))
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_module.main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        _close_invsync_log_handlers()
    return CliResult(code, out.getvalue(), err.getvalue())


def _close_invsync_log_handlers() -> None:
    """A command installs handlers on the ``invsync`` logger (its stderr was our buffer, its
    file the test's data directory); the next command installs its own."""
    logger = logging.getLogger("invsync")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def run_cli_process(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> CliResult:
    """Run ``python -m pipeline ARGS`` in a real subprocess: only for what needs a process of
    its own (signals, the run lock, kill -9, the console script itself)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=_environment(env),
        cwd=cwd or Path.cwd(),
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_process():
    return run_cli_process


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the folders tests saved screenshots to (``record_property("screenshots", path)``),
    at the end of the run: a worker's own output never reaches the terminal under xdist."""
    folders = sorted(
        {
            str(value)
            for reports in terminalreporter.stats.values()
            for report in reports
            if getattr(report, "when", None) == "call"
            for name, value in getattr(report, "user_properties", ())
            if name == "screenshots"
        }
    )
    if folders:
        terminalreporter.write_sep("-", "screenshots")
        for folder in folders:
            terminalreporter.write_line(folder)
