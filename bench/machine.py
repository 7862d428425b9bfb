"""The machine a benchmark ran on: CPU, cores, memory, Python and library versions, the
load average, and the commit measured.

Stage: bench. Reads /proc (Linux), the installed package metadata and ``git rev-parse``
(read-only); writes nothing.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

LIBRARIES = ("polars", "duckdb", "pyarrow", "python-amazon-sp-api", "pandera", "flask", "requests")


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    memory_gib: float
    os: str
    python: str
    libraries: dict[str, str]
    commit: str
    started_at: str  # ISO 8601, UTC
    load_at_start: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    """Total memory in GiB from /proc/meminfo (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)  # kB → GiB
    except OSError:
        pass
    return 0.0


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15-minute load averages (runnable processes; 2 cores → 2.0 is full)."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def commit(repo: Path) -> str:
    """The commit measured, with ``+changes`` when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=repo, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    untracked = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, timeout=10
    ).stdout
    changed = bool(dirty) or any(line.startswith("??") for line in untracked.splitlines())
    return f"{head}{' + uncommitted changes' if changed else ''}"


def describe_machine(repo: Path) -> Machine:
    return Machine(
        cpu=cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=memory_gib(),
        os=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        libraries=library_versions(),
        commit=commit(repo),
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        load_at_start=load_average(),
    )
