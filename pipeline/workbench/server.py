"""The review workbench server behind ``invsync review --serve``: one run's page on 127.0.0.1.

Stage: review. Reads the run's diffs (:func:`pipeline.review.read_diff`) and the Amazon
snapshots (for the sparklines) once at start, and ``decisions.sqlite`` on every request;
writes decisions and breaker releases through :class:`pipeline.decisions.DecisionStore`
only. It never opens ``warehouse.duckdb``, so a sync can run while a person decides; the
breaker verdicts come from the caller (``serve(..., breakers=...)``), judged before serving.

Why Flask (with werkzeug's ``make_server`` in a thread, as the sandbox runs): it is already a
dependency, it parses JSON bodies, cookies and headers for us and answers malformed requests
properly, and the project already runs and tests a werkzeug server this way. ``http.server``
would mean hand-parsing every request of a server whose requests move money.

Who may talk to it:

* It listens on 127.0.0.1 only, on a free port (``port=0``), and answers only requests whose
  ``Host`` is that address (or ``localhost``) and port: a DNS-rebinding page gets 403.
* A one-time token (:func:`secrets.token_urlsafe`, new for every ``serve``) is in the URL it
  hands to ``on_ready`` (``http://127.0.0.1:PORT/?token=…``). Every request without it gets
  403. The first page load trades the URL's token for an HttpOnly, SameSite=Strict cookie and
  redirects to ``/``, so the token leaves the address bar; the page's script sends it back in
  the ``X-Invsync-Token`` header.
* A POST (a decision moves money) needs the token in that header — a cross-site page cannot
  set a custom header without a CORS preflight this server never grants — *and* an
  ``Origin`` equal to the workbench's own, *and* a JSON body. Anything else gets 403 (or 400
  for a malformed body), with one sentence saying what to do.
* Every answer forbids framing (``frame-ancestors 'none'``) and caching.

Routes: ``GET /`` the interactive page; ``POST /decide`` ``{"change_ids": [...],
"decision": "approve"|"reject"|"hold"}``; ``POST /release`` ``{"platform": "ebay"}`` approves
every held row of the platform that is not rejected and releases its tripped breaker;
``GET /plan`` what the next load would send (:func:`pipeline.workbench.render.next_load`),
every row listed; the answers to the POSTs carry the same plan with its first rows only.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import polars as pl
from werkzeug.wrappers import Response as WerkzeugResponse

from pipeline.config import Workspace
from pipeline.decisions import DECISIONS, KEY_COLUMNS, opened
from pipeline.display import DEFAULT_TIMEZONE
from pipeline.errors import UsageError
from pipeline.loopback import HOST, LoopbackServer
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS
from pipeline.workbench.render import (
    PLAN_LISTED,
    BreakerView,
    next_load,
    page_from_frames,
    plan_summary,
    render_review,
    with_optional_columns,
)

logger = logging.getLogger(__name__)
TOKEN_HEADER = "X-Invsync-Token"
COOKIE = "invsync_workbench"
_ROW_COLUMNS = (*KEY_COLUMNS, "held", "hold_reason", "protection")

# A breaker as the caller judged it: (tripped, reasons), (tripped, reasons, released), or an
# object with ``tripped``, ``reasons`` and ``released`` (pipeline.review.Breaker).
BreakerArg = Any


def _breaker_tuple(value: BreakerArg) -> tuple[bool, list[str], bool]:
    if isinstance(value, tuple):
        tripped, reasons, *rest = value
        return bool(tripped), list(reasons), bool(rest[0]) if rest else False
    return bool(value.tripped), list(value.reasons), bool(getattr(value, "released", False))


def read_run(ws: Workspace, run_id: str) -> dict[str, pl.DataFrame]:
    """Every diffed platform's diff of the run, as :func:`pipeline.review.read_diff` reads it."""
    from pipeline.review import read_diff
    from pipeline.transform import diff_path

    diffs = {
        p: read_diff(ws, run_id, p)
        for p in PLATFORMS
        if diff_path(ws.data_dir, run_id, p).is_file()
    }
    if not diffs:
        raise UsageError(
            f"Run {run_id} has no diffs to review; run `invsync transform --run {run_id}` first."
        )
    return diffs


class Workbench:
    """The workbench of one run on a real socket in a background thread.

    ``diffs`` are the run's diff frames per platform (as ``read_diff`` returns them),
    ``breakers`` their verdicts per platform, ``history`` ASIN -> Amazon prices in yen;
    the page shows its times in ``timezone`` (``[display] timezone``), named.
    """

    def __init__(
        self,
        data_dir: Path,
        run_id: str,
        *,
        diffs: Mapping[str, pl.DataFrame],
        breakers: Mapping[str, BreakerArg],
        history: Mapping[str, list[int]],
        port: int = 0,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        missing = [p for p in diffs if p not in breakers]
        if missing:
            raise UsageError(
                f"The workbench for run {run_id} has no breaker verdict for "
                f"{', '.join(DISPLAY_NAMES.get(p, p) for p in missing)}; judge it (review.breaker_for) before serving."
            )
        self.data_dir = data_dir
        self.run_id = run_id
        self.diffs = {p: with_optional_columns(frame) for p, frame in diffs.items()}
        self.breakers = {p: _breaker_tuple(breakers[p]) for p in self.diffs}
        self.history = dict(history)
        self.timezone = timezone  # [display] timezone: the zone the page shows times in
        self.token = secrets.token_urlsafe(32)
        self.port = port
        self.url = ""
        self._rows: dict[str, dict[str, Any]] = {}
        for frame in self.diffs.values():
            for row in frame.select(_ROW_COLUMNS).iter_rows(named=True):
                if row["change_id"] is not None:
                    self._rows[row["change_id"]] = row
        self.app = self._create_app()
        self._loopback: LoopbackServer | None = None

    # --- life ---------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Workbench:
        if self._loopback is not None:
            return self
        self._loopback = LoopbackServer(self.app, self.port, name="workbench")
        self.port = self._loopback.port
        self.url = f"{self.origin}/?token={self.token}"
        return self

    def stop(self) -> None:
        loopback, self._loopback = self._loopback, None
        if loopback is not None:
            loopback.stop()

    def __enter__(self) -> Workbench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- facts, re-read from the decisions store on every request ---------------------------

    def _state(self) -> tuple[dict[str, str], dict[str, tuple[bool, list[str], bool]]]:
        with opened(self.data_dir) as store:
            decisions = store.decisions(self._rows)
            breakers = {
                p: (tripped, reasons, released or store.breaker_released(self.run_id, p))
                for p, (tripped, reasons, released) in self.breakers.items()
            }
        return decisions, breakers

    def plan(self, listed: int | None = None) -> dict[str, Any]:
        """What the next load would send, per platform: counts, and the first ``listed`` rows
        that go out (``None``: every one)."""
        decisions, breakers = self._state()
        platforms: dict[str, Any] = {}
        for p, frame in self.diffs.items():
            tripped, reasons, released = breakers[p]
            breaker = BreakerView(tripped, reasons, released)
            summary = plan_summary(next_load(frame, decisions, breaker), breaker, listed=listed)
            platforms[p] = {
                "display_name": DISPLAY_NAMES.get(p, p),
                "holds_load": summary.holds_load,
                "breaker_released": released,
                "changes": summary.changes,
                "raises": summary.raises,
                "pauses": summary.pauses,
                "waiting": summary.waiting,
                "rejected": summary.rejected,
                "sends": summary.sends,
                "rows": summary.listed,
            }
        return {
            "run_id": self.run_id,
            "sends": sum(p["sends"] for p in platforms.values()),
            "platforms": platforms,
        }

    def page(self) -> str:
        decisions, breakers = self._state()
        model = page_from_frames(
            self.run_id, self.diffs, breakers, decisions, self.history,
            generated_at=datetime.now(UTC), timezone=self.timezone,
        )  # fmt: skip
        return render_review(model, interactive=True, token=self.token)

    # --- the app ------------------------------------------------------------------------------

    def _create_app(self) -> flask.Flask:
        app = flask.Flask(__name__)
        app.json.sort_keys = False  # type: ignore[attr-defined]

        def refuse(status: int, sentence: str) -> flask.Response:
            response = flask.jsonify({"error": sentence})
            response.status_code = status
            return response

        def token_matches(value: str | None) -> bool:
            return bool(value) and secrets.compare_digest(str(value).encode(), self.token.encode())

        @app.before_request
        def guard() -> flask.Response | None:
            request = flask.request
            if request.host not in (f"{HOST}:{self.port}", f"localhost:{self.port}"):
                return refuse(
                    403, f"The workbench answers only at {self.origin}; open that address."
                )
            if request.method == "POST":
                if not token_matches(request.headers.get(TOKEN_HEADER)):
                    return refuse(
                        403,
                        f"A decision needs the workbench's token in the {TOKEN_HEADER} header; use the page at the URL `invsync review --serve` printed.",
                    )
                if request.headers.get("Origin") not in (
                    self.origin,
                    f"http://localhost:{self.port}",
                ):
                    return refuse(
                        403,
                        f"A decision must come from the workbench's own page ({self.origin}), not from another site; use the page at the URL `invsync review --serve` printed.",
                    )
                if not request.is_json:
                    return refuse(
                        400,
                        "A decision is a JSON body (Content-Type: application/json); use the page's buttons.",
                    )
                return None
            if any(
                token_matches(v)
                for v in (
                    request.headers.get(TOKEN_HEADER),
                    request.cookies.get(COOKIE),
                    request.args.get("token"),
                )
            ):
                return None
            return refuse(
                403,
                "The workbench needs its one-time token; open the full URL `invsync review --serve` printed (it ends in ?token=…).",
            )

        @app.after_request
        def headers(response: flask.Response) -> flask.Response:
            response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-store"
            return response

        @app.get("/")
        def index() -> WerkzeugResponse:
            if "token" in flask.request.args:  # trade the URL's token for a cookie
                response = flask.redirect("/", code=303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
                return response
            return flask.Response(self.page(), content_type="text/html; charset=utf-8")

        @app.get("/plan")
        def plan() -> flask.Response:
            return flask.jsonify(self.plan())

        @app.post("/decide")
        def decide() -> flask.Response:
            body = flask.request.get_json(silent=True)
            if not isinstance(body, dict):
                return refuse(
                    400,
                    'A decision is a JSON object {"change_ids": [...], "decision": "approve"}; use the page\'s buttons.',
                )
            ids, decision = body.get("change_ids"), body.get("decision")
            if decision not in DECISIONS:
                return refuse(
                    400,
                    f"Decision {decision!r} is not one of {', '.join(DECISIONS)}; pick one of those.",
                )
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                return refuse(
                    400,
                    "A decision needs change_ids, a non-empty list of the rows' change ids; select a row first.",
                )
            unknown = [i for i in dict.fromkeys(ids) if i not in self._rows]
            if unknown:
                return refuse(
                    400,
                    f"Change {unknown[0]!r} is not in run {self.run_id}'s diff ({len(unknown)} unknown id(s)); reload the page and decide again.",
                )
            rows = [self._rows[i] for i in dict.fromkeys(ids)]
            with opened(self.data_dir) as store:
                recorded = store.record(rows, decision, by="workbench")
                decisions = store.decisions(r["change_id"] for r in rows)
            return flask.jsonify(
                {"recorded": recorded, "decisions": decisions, "plan": self.plan(PLAN_LISTED)}
            )

        @app.post("/release")
        def release() -> flask.Response:
            body = flask.request.get_json(silent=True)
            platform = body.get("platform") if isinstance(body, dict) else None
            if platform not in self.diffs:
                return refuse(
                    400,
                    f"Platform {platform!r} has no diff in run {self.run_id}; pick one of {', '.join(self.diffs)}.",
                )
            tripped = self.breakers[platform][0]
            with opened(self.data_dir) as store:
                held = [r for r in self._rows.values() if r["platform"] == platform and r["held"]]
                earlier = store.decisions(r["change_id"] for r in held)
                # a row a person rejected stays rejected: "approve all" means the waiting ones
                waiting = [r for r in held if earlier.get(r["change_id"]) != "reject"]
                recorded = store.record(waiting, "approve", by="workbench")
                released = tripped and (
                    store.release_breaker(self.run_id, platform, by="workbench")
                    or store.breaker_released(self.run_id, platform)
                )
                decisions = store.decisions(r["change_id"] for r in waiting)
            return flask.jsonify(
                {
                    "recorded": recorded,
                    "decisions": decisions,
                    "breaker_released": bool(released),
                    "plan": self.plan(PLAN_LISTED),
                }
            )

        return app


def can_open_browser() -> bool:
    """A browser can be shown: macOS or Windows, or a display and a known browser."""
    if sys.platform in ("darwin", "win32"):
        return True
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def ready_line(url: str) -> str:
    """What the CLI prints when the workbench is up."""
    return (
        f"Review workbench on {url} (this machine only; the token in the URL is the key, "
        "valid until you stop it with Ctrl-C)."
    )


def serve(
    ws: Workspace,
    run_id: str,
    *,
    breakers: Mapping[str, BreakerArg],
    open_browser: bool,
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
    stop_event: threading.Event | None = None,
    diffs: Mapping[str, pl.DataFrame] | None = None,
) -> None:
    """Serve run ``run_id``'s workbench on 127.0.0.1 until ``stop_event`` is set (or Ctrl-C).

    ``breakers``: each diffed platform's verdict, judged by the caller before serving (see
    :data:`BreakerArg`). ``on_ready`` gets the URL with its token once the server listens
    (the CLI prints :func:`ready_line`); ``open_browser`` opens it with :mod:`webbrowser`
    when a browser can be shown. ``diffs`` defaults to the run's diff files.
    """
    from pipeline.review import price_history

    frames = dict(diffs) if diffs is not None else read_run(ws, run_id)
    history = price_history(ws.data_dir, frames)
    bench = Workbench(
        ws.data_dir, run_id, diffs=frames, breakers=breakers, history=history, port=port,
        timezone=ws.settings.display.timezone,
    )  # fmt: skip
    stop = stop_event or threading.Event()
    bench.start()
    try:
        if on_ready is not None:
            on_ready(bench.url)
        if open_browser and can_open_browser():
            webbrowser.open(bench.url)
        while not stop.wait(0.2):  # a timed wait lets Ctrl-C through
            pass
    finally:
        bench.stop()


__all__: Sequence[str] = ("HOST", "TOKEN_HEADER", "Workbench", "ready_line", "serve")
