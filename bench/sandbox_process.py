"""The sandbox in a process of its own, so the client measured never shares an
interpreter lock with the server answering it (the real APIs live elsewhere too).

Stage: bench. ``python -m bench.sandbox_process --time-scale S --n-asins N`` serves
:class:`pipeline.sandbox.server.SandboxServer` on a free 127.0.0.1 port and prints
``READY <url>``; :func:`sandbox_process` starts it, waits for that line and stops it
with SIGTERM. ``--process '<json>'`` (or a preset name such as ``day``) starts Amazon's
change process in it (docs/sandbox.md, "Amazon in time"). Reads and writes nothing on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from pipeline.sandbox.credentials import DEMO_ENV

REPO = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """The environment for a bench subprocess: ours, with the repository importable
    whatever the working directory (``python -m bench.…`` needs it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


@dataclass(frozen=True)
class RunningSandbox:
    url: str
    time_scale: float
    n_asins: int

    def env(self) -> dict[str, str]:
        """Endpoint overrides pointing at this sandbox, plus the demo credentials."""
        names = ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL", "EBAY_API_URL")
        return {**dict.fromkeys(names, self.url), **DEMO_ENV}

    def reset(self) -> None:
        """Clear the ledger, refill every bucket, reset the platforms' counters."""
        requests.post(f"{self.url}/_sandbox/reset", timeout=30).raise_for_status()

    def amazon_changes(self) -> list[dict[str, Any]]:
        """Every change Amazon's process made so far (``t`` on the ledger's clock, as the
        calls' and platform changes' ``t``); empty without a process."""
        answer = requests.get(f"{self.url}/_sandbox/process/changes", timeout=120)
        answer.raise_for_status()
        return list(answer.json()["amazon_changes"])

    def stats(self, calls: bool = True) -> dict[str, Any]:
        answer = requests.get(
            f"{self.url}/_sandbox/stats", params={"calls": int(calls)}, timeout=120
        )
        answer.raise_for_status()
        return answer.json()


@contextlib.contextmanager
def sandbox_process(
    time_scale: float, n_asins: int, seed: int = 42, process: str | dict[str, Any] | None = None
) -> Iterator[RunningSandbox]:
    """A sandbox in its own process; ``process`` (a spec as JSON text or object, or a preset
    name) starts Amazon's change process there as the server is made."""
    command = [
        sys.executable, "-m", "bench.sandbox_process",
        "--time-scale", repr(time_scale), "--n-asins", str(n_asins), "--seed", str(seed),
    ]  # fmt: skip
    if process is not None:
        command += ["--process", process if isinstance(process, str) else json.dumps(process)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"the bench sandbox did not start (it said {line!r})")
        yield RunningSandbox(url=line.split()[1], time_scale=time_scale, n_asins=n_asins)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main(argv: list[str] | None = None) -> None:
    from pipeline.sandbox.process import ProcessSpec
    from pipeline.sandbox.server import serve_forever

    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_process")
    parser.add_argument("--time-scale", type=float, required=True)
    parser.add_argument("--n-asins", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--process", default=None, help="a process spec (JSON) or preset name")
    args = parser.parse_args(argv)
    spec = None if args.process is None else ProcessSpec.from_json(args.process)

    def announce(server: Any) -> None:
        print(f"READY {server.url}", flush=True)

    serve_forever(
        0, args.time_scale, args.seed, None, on_ready=announce, n_asins=args.n_asins, process=spec
    )


if __name__ == "__main__":
    main()
