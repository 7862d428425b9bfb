"""The sandbox HTTP server: one Flask app on 127.0.0.1 speaking SP-API, BASE and eBay.

Stage: sandbox. Reads an optional persisted world (``persist_path``, JSON); writes it back at
stop, after each tick, within a second of any change a call applied, and before answering a
BASE token grant (the rotated refresh token the client keeps). Everything else lives in memory in one
:class:`~pipeline.sandbox.state.SandboxState`.

* :func:`create_app` wires the LWA and SP-API routes (``spapi``), the ``/_sandbox`` control
  routes (``control``), when their modules exist, ``thebase.blueprint(state)`` and
  ``ebay.blueprint(state)``, and the consent pages of both (``consent.blueprint(state)``).
* :class:`SandboxServer` runs it on a real socket in a background thread (tests, the demo).
* :func:`serve_forever` backs ``invsync sandbox serve``.
* ``process=`` (a :class:`~pipeline.sandbox.process.ProcessSpec`) starts Amazon's change
  process at the server's creation (sandbox time 0); none runs unless asked.

Latency: werkzeug writes the status line and headers, then the body, in separate
``send`` calls; with Nagle's algorithm on and the client's delayed ACK, each response
would wait ~40 ms for the second packet. Accepted sockets get ``TCP_NODELAY``.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from pipeline.loopback import HOST, LoopbackServer
from pipeline.sandbox import control, spapi
from pipeline.sandbox import process as amazon_process
from pipeline.sandbox.catalogue import Catalogue, catalogue_of
from pipeline.sandbox.clock import SandboxClock
from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.sandbox.state import SandboxState

logger = logging.getLogger(__name__)
_PLATFORM_MODULES = ("thebase", "ebay")
_SPAPI_PREFIXES = ("/products/", "/batches/products/")


def create_app(state: SandboxState) -> flask.Flask:
    """The Flask app over ``state``; creates the catalogue from the seed if it is missing."""
    catalogue_of(state)
    app = flask.Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the official key order
    app.register_blueprint(spapi.blueprint(state))
    app.register_blueprint(control.blueprint(state))
    for name in _PLATFORM_MODULES:
        module_name = f"pipeline.sandbox.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but something it imports does not
            continue
        app.register_blueprint(module.blueprint(state))
    from pipeline.sandbox import consent  # the consent pages share the BASE and eBay worlds

    app.register_blueprint(consent.blueprint(state))

    @app.errorhandler(HTTPException)
    def spapi_style_errors(exc: HTTPException) -> Any:
        """Unknown SP-API paths and methods answer like Amazon (JSON ``errors``); other
        paths keep werkzeug's answer (the platform blueprints register their own)."""
        path = flask.request.path
        if not path.startswith(_SPAPI_PREFIXES) or exc.code is None:
            return exc
        message = {404: "The requested resource doesn't exist."}.get(
            exc.code, exc.description or exc.name
        )
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.code, "InvalidInput")
        body = {"errors": [{"code": code, "message": message, "details": ""}]}
        return flask.Response(json.dumps(body), status=exc.code, content_type="application/json")

    return app


def read_world(path: Path | None) -> dict[str, Any] | None:
    """The persisted world at ``path``, None when there is none yet."""
    if path is None or not Path(path).exists():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"the sandbox world file {path} cannot be read ({exc.__class__.__name__}); delete it to start a fresh world"
        ) from None
    return data if isinstance(data, dict) else None


SAVE_EVERY = 1.0  # seconds between writes of a persisted world that changed


class SandboxServer:
    """A real HTTP server on 127.0.0.1 in a background thread.

    ``with SandboxServer(time_scale=100) as sandbox: ... sandbox.url ...``

    ``clock`` is the sandbox's one clock (a fresh :class:`SandboxClock` by default); a test
    that holds it moves the sandbox's time with ``clock.advance(seconds)``.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        time_scale: float = 1.0,
        seed: int = 42,
        faults: str | dict[str, Any] | None = None,
        token_lifetime: float = 3600.0,
        persist_path: Path | None = None,
        n_asins: int | None = None,
        clock: SandboxClock | None = None,
        process: amazon_process.ProcessSpec | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be above 0")
        self.port = port
        self.url = ""
        self.state = SandboxState(
            time_scale=time_scale,
            seed=seed,
            token_lifetime=token_lifetime,
            persist_path=Path(persist_path) if persist_path is not None else None,
            clock=clock if clock is not None else SandboxClock(),
        )
        if faults:
            self.state.set_faults(faults)
        world = read_world(self.state.persist_path)
        catalogue = Catalogue(seed, n_asins)
        if world is not None:
            stored = world.get("apis", {})
            if int(world.get("seed", seed)) != seed:
                raise ValueError(
                    f"the sandbox world file {persist_path} was made with seed {world.get('seed')}, "
                    f"not {seed}; pass that seed or delete the file"
                )
            catalogue.load(stored.get("catalogue", {}))
        self.state.apis["catalogue"] = catalogue
        self.app = create_app(self.state)
        if world is not None:
            others = {k: v for k, v in world.get("apis", {}).items() if k != "catalogue"}
            self.state.load({"apis": others})
        if process is not None:
            self.start_process(process)
        self._loopback: LoopbackServer | None = None
        self._saving = threading.Event()

    def start(self) -> SandboxServer:
        if self._loopback is not None:
            return self
        self._loopback = LoopbackServer(self.app, self.port, name="sandbox", poll_interval=0.02)
        self.port = self._loopback.port
        if self.state.persist_path is not None:
            self._saving = threading.Event()
            threading.Thread(target=self._save_changes, name="sandbox-save", daemon=True).start()
        self.url = f"http://{HOST}:{self.port}"
        return self

    def _save_changes(self) -> None:
        """A persisted world is written within :data:`SAVE_EVERY` seconds of a change, so a
        process killed outright (the demo's sync runs its sandbox in-process) loses at most
        that much of what the platforms applied, as a live platform loses nothing."""
        while not self._saving.wait(SAVE_EVERY):
            if self.state.unsaved_changes:
                self.state.save()

    def stop(self) -> None:
        loopback, self._loopback = self._loopback, None
        if loopback is None:
            return
        self._saving.set()
        loopback.stop()
        with self.state.lock:
            self.state.save()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the in-process interface (the same facts as the /_sandbox routes) -----------------

    @property
    def clock(self) -> SandboxClock:
        """The clock every time-dependent behaviour of this sandbox reads."""
        return self.state.clock

    def call_counts(self, prefix: str = "") -> dict[str, int]:
        """Calls answered so far per ``api.operation`` (e.g. ``spapi.getItemOffersBatch``)
        whose name starts with ``prefix``: the ledger's counts without going through HTTP."""
        with self.state.lock:
            per_operation = self.state.ledger.stats(include_calls=False)["per_operation"]
        return {
            name: entry["calls"] for name, entry in per_operation.items() if name.startswith(prefix)
        }

    def ledger_stats(self) -> dict[str, Any]:
        """The whole ledger, as ``GET /_sandbox/stats`` answers it."""
        return control.ledger_stats(self.state, include_calls=True)

    def tick(self, steps: int = 1) -> None:
        """Move the world ``steps`` ticks on, as ``POST /_sandbox/tick`` does."""
        control.advance_world(self.state, steps)

    def start_process(self, spec: amazon_process.ProcessSpec) -> None:
        """Start Amazon's change process now, as ``POST /_sandbox/process`` does."""
        with self.state.lock:
            amazon_process.start(self.state, spec)

    def env(self) -> dict[str, str]:
        """Endpoint overrides pointing at this server, plus the demo credentials."""
        if not self.url:
            raise RuntimeError("start the sandbox before asking for its environment")
        endpoints = dict.fromkeys(
            ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL", "EBAY_API_URL"), self.url
        )
        return {**endpoints, **DEMO_ENV}


def serve_forever(
    port: int,
    time_scale: float,
    seed: int,
    faults: str | dict[str, Any] | None,
    *,
    on_ready: Callable[[SandboxServer], None] | None = None,
    persist_path: Path | None = None,
    n_asins: int | None = None,
    process: amazon_process.ProcessSpec | None = None,
) -> None:
    """Run a sandbox until SIGINT or SIGTERM; ``on_ready`` gets the started server."""
    stopping = threading.Event()

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop_on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = SandboxServer(
        port=port,
        time_scale=time_scale,
        seed=seed,
        faults=faults,
        persist_path=persist_path,
        n_asins=n_asins,
        process=process,
    )
    try:
        server.start()
        if on_ready is not None:
            on_ready(server)
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
