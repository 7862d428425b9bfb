"""How every command reaches Amazon, BASE and eBay: live, a sandbox elsewhere, or one started here.

Stage: none (the start-up every API-calling command shares: ``sync``, ``fetch``, ``load``,
``listings pull``, ``daemon``). Reads the workspace's mode and endpoint variables; in sandbox
mode with no endpoints it starts the sandbox in this process on the world persisted under
``<data_dir>/sandbox/world.json`` and stops it (saving the world) when the command ends.

* Live mode checks every credential first (one sentence naming the missing ones) and is never
  redirected to a sandbox.
* Sandbox mode with all endpoints set (``invsync sandbox serve`` elsewhere) uses them, with the
  sandbox's demo credentials under whatever the environment sets.
* Sandbox mode without them starts the sandbox here, for the endpoints not given. ``sync`` asks for ``tick=True``: every run
  after the first moves the world one step first, so a second sync sees prices and stock move.

:class:`Apis` is the one small interface the stages use besides the workspace: how many SP-API
calls the sandbox has answered so far (the proof that Phase 2 makes none), and the ledger of a
run kept beside the world for the demo. Both read the in-process sandbox directly; against a
live API or a sandbox elsewhere they answer ``None`` / do nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import layout
from pipeline.config import Workspace
from pipeline.files import write_atomic

ENDPOINT_VARS = ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL", "EBAY_API_URL")
AMAZON = ("SP_API_ENDPOINT", "LWA_ENDPOINT")  # what fetch calls
PLATFORM_APIS = ("BASE_API_URL", "EBAY_API_URL")  # what load and listings pull call


@dataclass
class Apis:
    """The workspace this command calls the APIs with, and the sandbox started for it."""

    ws: Workspace  # with the endpoints (and, in sandbox mode, the demo credentials)
    sandbox: Any = None  # a started pipeline.sandbox.server.SandboxServer, or None

    @property
    def started_sandbox(self) -> bool:
        return self.sandbox is not None

    def spapi_calls(self) -> int | None:
        """SP-API calls the in-process sandbox has answered so far; None when unmeasurable
        (live mode, or a sandbox in another process)."""
        if self.sandbox is None:
            return None
        return sum(self.sandbox.call_counts(prefix="spapi.").values())

    def keep_ledger(self, run_id: str) -> Path | None:
        """Write the in-process sandbox's ledger (every call and change so far) as
        ``<data_dir>/sandbox/ledger/<run_id>.json``, so a demo run's calls can be checked
        after the sandbox has gone."""
        if self.sandbox is None:
            return None
        target = layout.sandbox_ledger_path(self.ws.data_dir, run_id)
        write_atomic(target, json.dumps(self.sandbox.ledger_stats()).encode("utf-8"))
        return target


def _with_demo_credentials(ws: Workspace) -> Workspace:
    """Sandbox mode: the sandbox's demo credentials stand in for any the environment lacks."""
    from pipeline.sandbox.credentials import DEMO_ENV

    missing = {k: v for k, v in DEMO_ENV.items() if not ws.env.get(k)}
    return ws.with_env(missing) if missing else ws


@contextmanager
def open_apis(
    ws: Workspace, *, needs: tuple[str, ...] = ENDPOINT_VARS, tick: bool = False
) -> Iterator[Apis]:
    """The APIs of this command (``needs``: the endpoint variables it calls); see the module
    docstring for the three cases. A sandbox is started only when one it needs is unset."""
    if not ws.is_sandbox:
        ws.require_live_credentials()
        yield Apis(ws)
        return
    ws = _with_demo_credentials(ws)
    given = {name for name in ENDPOINT_VARS if ws.endpoint(name)}
    if ws.settings.amazon.endpoint:
        given |= {"SP_API_ENDPOINT"}
    if ws.settings.amazon.lwa_endpoint:
        given |= {"LWA_ENDPOINT"}
    if given >= set(needs):
        yield Apis(ws)
        return
    from pipeline.sandbox.server import SandboxServer

    world = layout.sandbox_world_path(ws.data_dir)
    first_run = not world.exists()
    settings = ws.settings.sandbox
    server = SandboxServer(
        time_scale=settings.time_scale,
        seed=settings.seed,
        n_asins=settings.n_asins,
        persist_path=world,
    ).start()
    try:
        if tick and not first_run:
            server.tick()
        endpoints = {k: v for k, v in server.env().items() if k not in given}
        yield Apis(ws.with_env(endpoints), server)
    finally:
        server.stop()
