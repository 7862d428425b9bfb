"""The sandbox's own control routes under ``/_sandbox/``: faults, ticks, ledger, catalogue.

Stage: sandbox. Reads and writes :class:`~pipeline.sandbox.state.SandboxState`; these calls
are not recorded in the ledger (they are the test's hands, not the client's traffic).

* ``GET  /_sandbox/health``              → ``{"ok": true, "tick": n}``
* ``GET  /_sandbox/faults``              → the knobs now in force
* ``POST /_sandbox/faults``              JSON object or a SPEC string; replaces every knob
* ``POST /_sandbox/tick?n=1``            advance the world n steps; persists when configured
* ``POST /_sandbox/advance``             move the clock: ``{"seconds": N}`` (clock seconds,
                                         as fault windows and token lifetimes count) or
                                         ``{"sandbox_seconds": N}`` (scaled, as the BASE hour
                                         and eBay day count: N / time_scale clock seconds)
* ``POST /_sandbox/reset``               clear the ledger and refill every rate bucket
* ``GET  /_sandbox/stats?calls=1``       the ledger: per-operation counts, calls, changes
* ``GET  /_sandbox/catalogue``           ASINs, invalid ASINs, demo listing counts, tick
* ``GET  /_sandbox/catalogue/<asin>``    one ASIN's offers, buy box and reference price
* ``POST /_sandbox/process``             start Amazon's change process (JSON spec or a
                                         preset name, see ``process.py``) at the current time
* ``GET  /_sandbox/process``             the running process: spec, sandbox time, changes
* ``GET  /_sandbox/process/changes``     every change the process made (``amazon_changes``)

The stats, catalogue and process routes first advance the process (if any) to now, as
every SP-API answer does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flask

from pipeline.sandbox import process
from pipeline.sandbox.catalogue import catalogue_of
from pipeline.sandbox.state import SandboxState


def advance_world(state: SandboxState, steps: int) -> list[dict[str, Any]]:
    """Move the world ``steps`` ticks on (prices drift, stock flips); the platform modules
    follow it, and the world is saved. Returns each tick's summary."""
    with state.lock:
        catalogue = catalogue_of(state)
        summaries = [catalogue.tick() for _ in range(steps)]
        for api in state.apis.values():  # platform modules may follow the world
            on_tick = getattr(api, "on_tick", None)
            if api is not catalogue and callable(on_tick):
                on_tick(summaries)
        state.save()
    return summaries


def ledger_stats(state: SandboxState, *, include_calls: bool) -> dict[str, Any]:
    """The ledger with the world's tick, time scale, seed and clock offset (``/stats``)."""
    with state.lock:
        process.advance(state)
        result = state.ledger.stats(include_calls=include_calls)
        result["tick"] = catalogue_of(state).tick_number
        result["time_scale"] = state.time_scale
        result["seed"] = state.seed
        result["clock_offset"] = state.clock.offset
    return result


def blueprint(state: SandboxState) -> flask.Blueprint:
    bp = flask.Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

    def bad(message: str) -> tuple[flask.Response, int]:
        return flask.jsonify({"error": message}), 400

    @bp.get("/health")
    def health() -> flask.Response:
        return flask.jsonify({"ok": True, "tick": catalogue_of(state).tick_number})

    @bp.get("/faults")
    def get_faults() -> flask.Response:
        with state.lock:
            return flask.jsonify(state.faults.to_json())

    @bp.post("/faults")
    def set_faults() -> Any:
        request = flask.request
        spec: Any
        if request.is_json:
            spec = request.get_json(silent=True)
            if isinstance(spec, dict) and set(spec) == {"spec"}:
                spec = spec["spec"]
            if not isinstance(spec, dict | str | None):
                return bad("POST a JSON object of knobs or a SPEC string; see docs/sandbox.md.")
        else:
            spec = request.get_data(as_text=True)
        try:
            with state.lock:
                faults = state.set_faults(spec)
                return flask.jsonify(faults.to_json())
        except (ValueError, TypeError, KeyError) as exc:
            return bad(f"Fault spec rejected ({exc}); see docs/sandbox.md for the knobs.")

    @bp.post("/tick")
    def tick() -> Any:
        try:
            steps = int(flask.request.args.get("n", "1"))
        except ValueError:
            return bad("n must be a whole number of ticks.")
        if not 1 <= steps <= 10_000:
            return bad("n must be between 1 and 10000.")
        summaries = advance_world(state, steps)
        last = summaries[-1]
        return flask.jsonify(
            {
                "tick": last["tick"],
                "repriced": sorted({a for s in summaries for a in s["repriced"]}),
                "vanished": sorted({a for s in summaries for a in s["vanished"]}),
                "appeared": sorted({a for s in summaries for a in s["appeared"]}),
                "offers_changed": sorted({a for s in summaries for a in s["offers_changed"]}),
            }
        )

    @bp.post("/advance")
    def advance() -> Any:
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict):
            body = {}
        keys = set(body)
        if len(keys) != 1 or not keys <= {"seconds", "sandbox_seconds"}:
            return bad('POST {"seconds": N} or {"sandbox_seconds": N}; see docs/sandbox.md.')
        (key,) = keys
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return bad(f"{key} must be a number of 0 or more.")
        seconds = float(value) if key == "seconds" else float(value) / state.time_scale
        with state.lock:  # no request is half-way through its checks while time jumps
            now = state.clock.advance(seconds)
            return flask.jsonify({"advanced": seconds, "offset": state.clock.offset, "clock": now})

    @bp.post("/reset")
    def reset() -> flask.Response:
        state.reset()
        return flask.jsonify({"ok": True})

    @bp.get("/stats")
    def stats() -> flask.Response:
        include_calls = flask.request.args.get("calls", "1") not in ("0", "false", "no")
        return flask.jsonify(ledger_stats(state, include_calls=include_calls))

    @bp.get("/catalogue")
    def catalogue_summary() -> flask.Response:
        with state.lock:
            process.advance(state)
            catalogue = catalogue_of(state)
            listings = catalogue.demo_listings()
            return flask.jsonify(
                {
                    "seed": catalogue.seed,
                    "tick": catalogue.tick_number,
                    "asins": catalogue.asins,
                    "invalid_asins": catalogue.invalid_asins,
                    "demo_listings": {k: len(v) for k, v in listings.items()},
                }
            )

    @bp.get("/catalogue/<asin>")
    def catalogue_asin(asin: str) -> Any:
        with state.lock:
            process.advance(state)
            catalogue = catalogue_of(state)
            if not catalogue.is_valid(asin):
                return flask.jsonify({"error": f"{asin} is not in the catalogue"}), 404
            winner = catalogue.buy_box(asin)
            return flask.jsonify(
                {
                    "asin": asin,
                    "reference_price": catalogue.reference_price(asin),
                    "buy_box": None if winner is None else winner.seller_id,
                    "offers": [
                        {**dataclasses.asdict(o), "points": o.points, "landed": o.landed}
                        for o in catalogue.offers(asin)
                    ],
                }
            )

    @bp.post("/process")
    def start_process() -> Any:
        body: Any = flask.request.get_json(silent=True)
        if body is None:
            body = flask.request.get_data(as_text=True) or "{}"
        if not isinstance(body, dict | str):
            return bad("POST a JSON process spec or a preset name; see docs/sandbox.md.")
        try:
            spec = process.ProcessSpec.from_json(body)
        except (ValueError, TypeError, KeyError) as exc:
            return bad(f"Process spec rejected ({exc}); see docs/sandbox.md, Amazon in time.")
        with state.lock:
            process.start(state, spec)
            return flask.jsonify(process_summary(state))

    @bp.get("/process")
    def get_process() -> flask.Response:
        with state.lock:
            process.advance(state)
            return flask.jsonify(process_summary(state))

    @bp.get("/process/changes")
    def process_changes() -> flask.Response:
        with state.lock:
            process.advance(state)
            changes = [dataclasses.asdict(c) for c in state.ledger.amazon_changes]
            return flask.jsonify({"amazon_changes": changes})

    return bp


def process_summary(state: SandboxState) -> dict[str, Any]:
    """The running process (``{"running": false}`` without one): spec, start, sandbox time."""
    running = process.running_process(state)
    if running is None:
        return {"running": False}
    return {
        "running": True,
        "spec": running.world.spec.to_json(),
        "started": running.started - state.ledger.started,  # ledger seconds
        "process_t": running.world.now,
        "time_scale": running.time_scale,
        "amazon_changes": len(state.ledger.amazon_changes),
    }
