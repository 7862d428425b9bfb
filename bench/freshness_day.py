"""Freshness on a simulated day: three designs side by side against the same moving world.

Stage: bench (``python -m bench --sections freshness``). Reads: each design's sandbox ledger
(``GET /_sandbox/stats?calls=1``: SP-API calls, platform changes, Amazon changes), each
invsync design's ``runs`` table, and the world replayed standalone
(``bench/freshness_world.py``). Writes: one data directory and config per design under the
work directory it is given, nothing else.

Every design gets a sandbox process of its own (``bench/sandbox_process.py``) with the same
catalogue seed, the same ASINs and the same time scale S, so the same quotas in sandbox time.
invsync's designs start from listings in step (an initial full sync, untimed); then every
sandbox starts the same change process (``POST /_sandbox/process``) at once and the day runs:

* **A** the replaced design (``bench/replaced_design.py``): its passes back to back against
  its sandbox, for real (12 s per batch, getItemOffers per eBay cache miss, a 429 ends the
  pass; the next starts one batch interval later). It has no platform writer here: its
  pushes are **modelled** as applied at the end of each completed pass, every listing of
  every ASIN that pass observed priced at its tiered markup of the lowest any-offer price
  it read (buyable while it read one); a pass that died pushes nothing.
* **B** today's full passes back to back: ``invsync daemon --continuous`` with
  ``[amazon] pool = false`` and ``[fetch] budget = "all"``.
* **C** pooled, urgency-ordered budgeted runs: ``invsync daemon --continuous`` with
  ``[amazon] pool = true`` and ``[fetch] budget`` = the plan's budget.

invsync reads the wall clock while the sandbox's quotas and process run S times faster, so
every duration in invsync's config (``guardrails.max_source_age``, the budget) is divided by
S. At the end of the day (``day_seconds / S`` wall seconds after the process started) each
daemon gets SIGTERM; figures count only what happened within the day.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import requests

from bench import replaced_design
from bench.freshness_metrics import (
    NO_SUPPLY_CAUSES,
    Reactions,
    exposure_seconds,
    exposure_yen_seconds,
    max_observation_age,
    no_supply_causes,
    reactions,
)
from bench.freshness_world import (
    Listing,
    World,
    asin_of_listing,
    listing_states,
    markup_yen,
    platform_listings,
    replay,
)
from bench.sandbox_process import RunningSandbox, child_env, sandbox_process
from pipeline.config import open_workspace
from pipeline.sandbox.catalogue import Catalogue
from pipeline.sandbox.process import ProcessSpec

SPAPI_OPERATIONS = ("getItemOffersBatch", "getItemOffers", "getCompetitivePricing")
STOP_WAIT_SECONDS = 180.0
BARRIER_SECONDS = 1_200.0  # the longest the designs wait for each other's initial sync  # a daemon told to stop finishes the batch or row in flight


@dataclass(frozen=True)
class DayPlan:
    """The simulated day. Durations are sandbox seconds unless named ``wall``."""

    n_asins: int
    time_scale: float
    day_seconds: float
    budget_seconds: float  # design C's quota time per run
    max_source_age: float = 12 * 3600.0
    seed: int = 42
    process: ProcessSpec = field(default_factory=ProcessSpec)
    fx_jpy_per_usd: int = 150

    @property
    def wall_day(self) -> float:
        return self.day_seconds / self.time_scale


# 10,000 ASINs, a day in 28.8 wall minutes (S = 50: getItemOffersBatch every 200 ms,
# getItemOffers every 40 ms). At S = 100 (20 ms) arrivals on this 2-core machine, with three
# designs and three sandboxes on it, came up to 0.64 ms early and met a 429 every ~450 calls;
# and every wall second a run spends outside its fetch costs S sandbox seconds, which the
# real system does not pay (C's ~8 s became 13 sandbox minutes against a 15-minute budget).
# C's budget: 15 sandbox minutes, which at 2.5 ASINs/s buys 2,271 ASINs; with ~6 sandbox
# minutes of overhead a run comes every ~21 minutes and the max-age sweep needs
# k = N·P / (A − 2P) ≈ 10,000 × 21 / (720 − 42) ≈ 310 of them, leaving ~1,960 by urgency:
# more than the 1,000 ASINs that change about hourly.
FULL_DAY = DayPlan(n_asins=10_000, time_scale=50.0, day_seconds=86_400.0, budget_seconds=900.0)
# the smoke test's: 300 ASINs, 3 sandbox hours in 27 wall seconds
QUICK_DAY = DayPlan(n_asins=300, time_scale=400.0, day_seconds=3 * 3600.0, budget_seconds=300.0)


@dataclass(frozen=True)
class Design:
    name: str  # A | B | C
    label: str
    pool: bool = False
    budget: float | None = None  # sandbox seconds; None: every ASIN (a full pass)
    replaced: bool = False


DESIGNS = (
    Design("A", "replaced design (12 s per batch, eBay misses one by one)", replaced=True),
    Design("B", "today: full passes back to back (getItemOffersBatch alone)"),
    Design("C", "pooled + urgency-ordered budgeted runs", pool=True, budget=0.0),
)


@dataclass
class RunRecord:
    """One sync (B, C) or pass (A) within the day, sandbox seconds since the process start."""

    start: float
    end: float
    fetch_seconds: float = 0.0  # wall
    wall_seconds: float = 0.0
    outcome: str = ""
    asins: int = 0


@dataclass
class DesignResult:
    """One design's day."""

    name: str
    label: str
    runs: list[RunRecord] = field(default_factory=list)
    reactions: dict[str, Reactions] = field(default_factory=dict)
    below_cost_minutes: float = 0.0  # listing-minutes
    no_supply_minutes: float = 0.0
    # listing-minutes without supply by cause (freshness_metrics.NO_SUPPLY_CAUSES)
    no_supply_by_cause: dict[str, float] = field(default_factory=dict)
    exposure_yen_minutes: float = 0.0  # below cost (the loss) + no supply (the price), yen-min
    max_age: float = 0.0  # sandbox seconds, largest observation age of a listed ASIN
    # change class (index into the process's classes) → mean observations per listed ASIN
    observations_by_class: dict[int, float] = field(default_factory=dict)
    max_age_asin: str = ""
    asins_over_age: int = 0
    listed_asins: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # operation → calls within the day
    calls_all: dict[str, int] = field(default_factory=dict)  # the initial sync's too
    throttled: dict[str, int] = field(default_factory=dict)  # operation → 429s within the day
    steady_throttled: int = 0  # 429s after each run's first accepted call
    # the sandbox's own Amazon changes within the day, as (ASIN, kind); the replay's must match
    ledger_changes: list[tuple[str, str]] = field(default_factory=list)
    initial_sync_wall: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exposure_minutes(self) -> float:
        return self.below_cost_minutes + self.no_supply_minutes

    @property
    def overhead_wall(self) -> float:
        """Mean wall seconds of a run outside its fetch (start-up, pull, transform, load)."""
        done = [r for r in self.runs if r.wall_seconds > 0 and r.outcome != "interrupted"]
        return sum(r.wall_seconds - r.fetch_seconds for r in done) / len(done) if done else 0.0

    @property
    def period(self) -> float:
        """Mean sandbox seconds from one run's start to the next's."""
        starts = [r.start for r in self.runs]
        return (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else 0.0

    def latency(self, kind: str, q: float) -> float:
        found = self.reactions.get(kind)
        return found.quantile(q) if found else float("nan")


@dataclass
class FreshnessDay:
    plan: DayPlan
    designs: dict[str, DesignResult] = field(default_factory=dict)
    changes: Counter[str] = field(default_factory=Counter)
    changes_by_class: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    replay_seconds: float = 0.0
    replayed: list[tuple[str, str]] = field(default_factory=list)  # (ASIN, kind) in order

    def replay_agrees(self) -> bool:
        """The standalone replay made exactly the changes every sandbox made in the day."""
        return all(d.error or d.ledger_changes == self.replayed for d in self.designs.values())


# --- running the designs -----------------------------------------------------------------


def _config(plan: DayPlan, design: Design) -> str:
    today = datetime.now(UTC).date().isoformat()
    budget = "all" if design.budget is None else f"{design.budget / plan.time_scale!r}s"
    return (
        'mode = "sandbox"\n\n'
        f"[amazon]\npool = {'true' if design.pool else 'false'}\n\n"
        f'[fetch]\nbudget = "{budget}"\n\n'
        f"[sandbox]\ntime_scale = {plan.time_scale!r}\nn_asins = {plan.n_asins}\n"
        f"seed = {plan.seed}\n\n"
        f"[fx]\njpy_per_usd = {plan.fx_jpy_per_usd}\nas_of = {today}\n\n"
        # the process moves prices 2-20 % a step; the default 30 % hold would also hold the
        # first sync's catch-up moves and leave those listings out of step for the day
        f"[guardrails]\nmax_source_age = {plan.max_source_age / plan.time_scale!r}\n"
        "max_price_change_pct = 1000\n"
    )


def _environment(sandbox: RunningSandbox) -> dict[str, str]:
    mine = ("SP_API_", "LWA_", "BASE_", "EBAY_", "INVSYNC_", "AWS_ENV")
    env = {k: v for k, v in child_env().items() if not k.startswith(mine)}
    env.update(sandbox.env())
    return env


def _invsync(home: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "pipeline", "--config", str(home / "invsync.toml"),
        "--data-dir", str(home / "data"), *args,
    ]  # fmt: skip


def _start_process(sandbox: RunningSandbox, spec: ProcessSpec) -> float:
    """Start the change process; returns its start in ledger seconds."""
    answer = requests.post(f"{sandbox.url}/_sandbox/process", json=spec.to_json(), timeout=60)
    answer.raise_for_status()
    return float(answer.json()["started"])


@dataclass
class _Raw:
    """What a design's day left behind, before the figures."""

    design: Design
    started: float = 0.0  # ledger seconds at the process start
    stats: dict[str, Any] = field(default_factory=dict)
    passes: list[tuple[float, float, bool]] = field(default_factory=list)  # A: wall s, done
    home: Path | None = None
    initial_wall: float = 0.0
    error: str | None = None


def _run_invsync_design(
    plan: DayPlan, design: Design, home: Path, barrier: threading.Barrier, raw: _Raw
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "invsync.toml").write_text(_config(plan, design), encoding="utf-8")
    raw.home = home
    with sandbox_process(plan.time_scale, plan.n_asins, plan.seed) as sandbox:
        env = _environment(sandbox)
        log = (home / "daemon.log").open("w", encoding="utf-8")
        try:
            began = time.monotonic()
            first = subprocess.run(
                _invsync(home, "sync", "--budget", "all"),
                env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
            raw.initial_wall = time.monotonic() - began
            if first.returncode not in (0, 3):  # 3: rows held for review, the rest loaded
                raise RuntimeError(
                    f"design {design.name}'s initial sync exited {first.returncode}; see "
                    f"{home / 'daemon.log'}"
                )
            barrier.wait()
            raw.started = _start_process(sandbox, plan.process)
            deadline = time.monotonic() + plan.wall_day
            daemon = subprocess.Popen(
                _invsync(home, "daemon", "--continuous"),
                env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                while daemon.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.5)
                if daemon.poll() is not None:
                    raise RuntimeError(
                        f"design {design.name}'s daemon ended before the day did (exit "
                        f"{daemon.returncode}); see {home / 'daemon.log'}"
                    )
            finally:
                _stop(daemon)
            raw.stats = _ledger(sandbox)
            # kept beside the design's data directory, to look into a figure afterwards
            (home / "ledger.json").write_text(json.dumps(raw.stats), encoding="utf-8")
        finally:
            log.close()


def _ledger(sandbox: RunningSandbox) -> dict[str, Any]:
    """The sandbox's ledger, its process first advanced to now (past the day's end), so its
    Amazon changes cover the whole day."""
    answer = requests.get(f"{sandbox.url}/_sandbox/process/changes", timeout=120)
    answer.raise_for_status()
    stats = sandbox.stats(calls=True)
    stats["amazon_changes"] = answer.json()["amazon_changes"]
    return stats


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run_replaced_design(
    plan: DayPlan, design: Design, home: Path, barrier: threading.Barrier, raw: _Raw
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    listings = Catalogue(plan.seed, plan.n_asins).demo_listings()
    base = {account: listings[account] for account in ("shop1", "shop2")}
    with sandbox_process(plan.time_scale, plan.n_asins, plan.seed) as sandbox:
        config = home / "invsync.toml"
        config.write_text(f"[sandbox]\ntime_scale = {plan.time_scale!r}\n", encoding="utf-8")
        ws = open_workspace(config=config, data_dir=home / "data", environ=sandbox.env())
        barrier.wait()
        raw.started = _start_process(sandbox, plan.process)
        deadline = time.monotonic() + plan.wall_day
        while time.monotonic() < deadline:
            began = time.time()
            result = replaced_design.run(
                ws, base, listings["ebay-main"], time_scale=plan.time_scale, deadline=deadline
            )
            raw.passes.append((began, time.time(), not (result.died or result.stopped)))
            if result.died:
                time.sleep(replaced_design.BATCH_INTERVAL / plan.time_scale)
        raw.stats = _ledger(sandbox)


def _guarded(
    target: Callable[..., None], raw: _Raw, barrier: threading.Barrier, *args: Any
) -> Callable[[], None]:
    def body() -> None:
        try:
            target(*args, barrier, raw)
        except Exception as exc:  # one design failing must not hide the others
            first_line = (str(exc).splitlines() or ["another design failed first"])[0]
            raw.error = f"{type(exc).__name__}: {first_line[:300]}"
            barrier.abort()  # the others stop waiting for it to start the day

    return body


def run_day(plan: DayPlan, work: Path, say: Callable[[str], None] | None = None) -> FreshnessDay:
    """Run the three designs at once and measure them."""
    began = time.monotonic()
    designs = [
        Design(d.name, d.label, d.pool, plan.budget_seconds, d.replaced)
        if d.budget is not None
        else d
        for d in DESIGNS
    ]
    raws = {d.name: _Raw(d) for d in designs}
    barrier = threading.Barrier(len(designs), timeout=BARRIER_SECONDS)
    threads = []
    for design in designs:
        runner = _run_replaced_design if design.replaced else _run_invsync_design
        home = work / f"design-{design.name}"
        body = _guarded(runner, raws[design.name], barrier, plan, design, home)
        threads.append(threading.Thread(target=body, name=f"design-{design.name}"))
    for thread in threads:
        thread.start()
    if say:
        say(f"freshness: {len(designs)} designs, {plan.n_asins:,} ASINs, time scale "
            f"{plan.time_scale:g}; the day lasts {plan.wall_day:.0f} s of wall time")  # fmt: skip
    for thread in threads:
        thread.join()
    replay_began = time.monotonic()
    world = replay(plan.seed, plan.n_asins, plan.process, plan.day_seconds)
    listings = platform_listings(plan.seed, plan.n_asins)
    result = FreshnessDay(plan=plan, replay_seconds=time.monotonic() - replay_began)
    result.changes = Counter(c.kind for c in world.changes)
    result.replayed = [(c.asin, c.kind) for c in world.changes]
    result.changes_by_class = Counter(world.rate_class[c.asin] for c in world.changes)
    for design in designs:
        raw = raws[design.name]
        if raw.error is not None:
            result.designs[design.name] = DesignResult(design.name, design.label, error=raw.error)
            continue
        result.designs[design.name] = measure(plan, raw, world, listings)
    result.seconds = time.monotonic() - began
    return result


# --- the figures ---------------------------------------------------------------------------


def _observations(
    calls: list[dict[str, Any]], to_time: Callable[[float], float]
) -> dict[str, list[float]]:
    """ASIN → sandbox times of the SP-API answers that observed it. The world stands still
    until the process starts, so an observation from before (the initial sync) is exact at
    time 0 and counts from there."""
    seen: dict[str, list[float]] = {}
    for call in calls:
        if call["api"] != "spapi" or call["status"] != 200:
            continue
        invalid = set((call.get("detail") or {}).get("invalid") or ())
        t = max(0.0, to_time(float(call["t"])))
        for asin in call["items"]:
            if asin not in invalid:
                seen.setdefault(asin, []).append(t)
    for times in seen.values():
        times.sort()
    return seen


def _count_calls(
    result: DesignResult, calls: list[dict[str, Any]], to_time: Callable[[float], float],
    day: float,
) -> None:  # fmt: skip
    since_run: dict[str, bool] = {}
    starts = [r.start for r in result.runs]
    for call in calls:
        if call["api"] != "spapi":
            continue
        operation = str(call["operation"])
        result.calls_all[operation] = result.calls_all.get(operation, 0) + 1
        t = to_time(float(call["t"]))
        if not 0.0 <= t <= day:
            continue
        result.calls[operation] = result.calls.get(operation, 0) + 1
        run = f"{bisect.bisect_right(starts, t)}:{operation}"
        if call["status"] == 429:
            result.throttled[operation] = result.throttled.get(operation, 0) + 1
            if since_run.get(run):
                result.steady_throttled += 1
        else:
            since_run[run] = True


def _invsync_runs(
    home: Path, to_time: Callable[[float], float], wall_offset: float
) -> list[RunRecord]:
    path = home / "data" / "warehouse.duckdb"
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "select epoch(started_at), epoch(finished_at), fetch_seconds, outcome,"
            " unique_asins from runs where command = 'sync' order by started_at"
        ).fetchall()
    finally:
        con.close()
    out = []
    for started, finished, fetch_seconds, outcome, asins in rows:
        start = to_time(float(started) - wall_offset)
        if start < 0:
            continue  # the initial full sync
        end = to_time(float(finished) - wall_offset) if finished is not None else float("inf")
        out.append(
            RunRecord(
                start,
                end,
                float(fetch_seconds or 0.0),
                float(finished - started) if finished is not None else 0.0,
                str(outcome),
                int(asins or 0),
            )
        )
    return out


def measure(plan: DayPlan, raw: _Raw, world: World, listings: list[Listing]) -> DesignResult:
    """One design's figures from its ledger (and, for A, the modelled pushes)."""
    design = raw.design
    result = DesignResult(design.name, design.label)
    result.initial_sync_wall = raw.initial_wall
    calls: list[dict[str, Any]] = raw.stats.get("calls", [])
    result.ledger_changes = [
        (str(c["asin"]), str(c["kind"]))
        for c in raw.stats.get("amazon_changes", [])
        if float(c["process_t"]) <= plan.day_seconds
    ]
    offsets = sorted(float(c["wall"]) - float(c["t"]) for c in calls) or [0.0]
    wall_offset = offsets[len(offsets) // 2]  # unix = ledger t + offset

    def to_time(t: float) -> float:
        return (t - raw.started) * plan.time_scale

    day = plan.day_seconds
    seen = _observations(calls, to_time)
    # the ASINs invsync lists: a BASE item hidden by hand at the start (stock 0, visible 0)
    # is unlisted to invsync, which never fetches it, so it has no observation age to keep
    listed = sorted({x.asin for x in listings if x.asin in world.cost and x.visible})
    result.listed_asins = len(listed)
    if design.replaced:
        result.runs = [
            RunRecord(to_time(b - wall_offset), to_time(e - wall_offset), e - b, e - b,
                      "ok" if done else "died or stopped")
            for b, e, done in raw.passes
        ]  # fmt: skip
        seen = _last_per_pass(seen, result.runs, [done for _, _, done in raw.passes])
        pushes, states = _replaced_model(result.runs, raw.passes, seen, world, listings)
        for asin in listed:  # in step at the start: as if observed at 0
            seen.setdefault(asin, []).insert(0, 0.0)
    else:
        assert raw.home is not None
        result.runs = _invsync_runs(raw.home, to_time, wall_offset)
        owner = asin_of_listing(listings)
        pushes = {}
        for change in raw.stats.get("changes", []):
            owned = owner.get((str(change["platform"]), str(change["key"])))
            if owned is not None:
                pushes.setdefault(owned, []).append(to_time(float(change["t"])))
        for times in pushes.values():
            times.sort()
        states = listing_states(
            listings, raw.stats.get("changes", []), to_time, plan.fx_jpy_per_usd
        )
    result.reactions = reactions(world.changes, seen, pushes, end=day)
    below = missing = 0.0
    by_cause = dict.fromkeys(NO_SUPPLY_CAUSES, 0.0)
    for listing in listings:
        cost = world.cost.get(listing.asin)
        if cost is None:
            continue
        key = (listing.platform, listing.account, listing.key)
        b, m = exposure_seconds(states[key], cost, 0.0, day)
        below += b
        missing += m
        result.exposure_yen_minutes += sum(exposure_yen_seconds(states[key], cost, 0.0, day)) / 60
        if m:
            causes = no_supply_causes(states[key], cost, seen.get(listing.asin, []), 0.0, day)
            for cause, seconds in causes.items():
                by_cause[cause] = by_cause.get(cause, 0.0) + seconds / 60
    result.below_cost_minutes = below / 60
    result.no_supply_minutes = missing / 60
    result.no_supply_by_cause = by_cause
    by_class: dict[int, list[int]] = {}
    for asin in listed:
        inside = sum(1 for t in seen.get(asin, ()) if 0.0 < t <= day)
        by_class.setdefault(world.rate_class[asin], []).append(inside)
    result.observations_by_class = {k: sum(v) / len(v) for k, v in sorted(by_class.items())}
    for asin in listed:
        age = max_observation_age(seen.get(asin, []), 0.0, day) if seen.get(asin) else day
        if age > result.max_age:
            result.max_age, result.max_age_asin = age, asin
        if age > plan.max_source_age:
            result.asins_over_age += 1
    _count_calls(result, calls, to_time, day)
    return result


def _last_per_pass(
    seen: dict[str, list[float]], runs: list[RunRecord], done: list[bool]
) -> dict[str, list[float]]:
    """A reads an ASIN listed on two shops (or a shop and an eBay miss) twice in one pass;
    the later read is the one its cache, and so its push, keeps. A pass that did not
    complete (a 429, or the day's end) pushed nothing: its reads are left out."""
    ends = [r.end for r in runs]
    out: dict[str, list[float]] = {}
    for asin, times in seen.items():
        last: dict[int, float] = {}
        for t in times:
            number = bisect.bisect_left(ends, t)
            if number < len(done) and done[number]:
                last[number] = t
        out[asin] = sorted(last.values())
    return out


def _replaced_model(
    runs: list[RunRecord],
    passes: list[tuple[float, float, bool]],
    seen: dict[str, list[float]],
    world: World,
    listings: list[Listing],
) -> tuple[
    dict[str, list[float]], dict[tuple[str, str, str], list[tuple[float, float | None, bool]]]
]:
    """A's pushes and listing states: at the end of each completed pass, every listing of
    each ASIN the pass observed takes the price its markup gives the any-offer price read."""

    def decided(asin: str, t: float) -> tuple[float | None, bool]:
        steps = world.any_price[asin]
        index = bisect.bisect_right([s for s, _ in steps], t) - 1
        price = steps[max(index, 0)][1]
        return (None, False) if price is None else (float(markup_yen(price)), True)

    pushes: dict[str, list[float]] = {}
    per_asin: dict[str, list[tuple[float, float | None, bool]]] = {}
    for asin in world.cost:
        per_asin[asin] = [(float("-inf"), *decided(asin, 0.0))]
    for run, (_, _, done) in zip(runs, passes, strict=True):
        if not done:
            continue
        for asin, times in seen.items():
            inside = [t for t in times if run.start <= t <= run.end]
            if not inside or asin not in per_asin:
                continue
            pushes.setdefault(asin, []).append(run.end)
            per_asin[asin].append((run.end, *decided(asin, inside[-1])))
    for times in pushes.values():
        times.sort()
    for steps in per_asin.values():
        steps.sort(key=lambda s: s[0])
    states = {(x.platform, x.account, x.key): per_asin.get(x.asin, []) for x in listings}
    return pushes, states


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.freshness_day [--quick] [--work DIR]``: one day, printed as JSON."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.freshness_day")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--n-asins", type=int, default=None)
    parser.add_argument("--time-scale", type=float, default=None)
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--budget-minutes", type=float, default=None)
    args = parser.parse_args(argv)
    plan = QUICK_DAY if args.quick else FULL_DAY
    changes: dict[str, Any] = {}
    if args.n_asins:
        changes["n_asins"] = args.n_asins
    if args.time_scale:
        changes["time_scale"] = args.time_scale
    if args.hours:
        changes["day_seconds"] = args.hours * 3600.0
    if args.budget_minutes:
        changes["budget_seconds"] = args.budget_minutes * 60.0
    if changes:
        plan = DayPlan(**{**plan.__dict__, **changes})
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        day = run_day(plan, work, say=print)
    from bench.freshness_report import summary_lines

    print("\n".join(summary_lines(day)))


if __name__ == "__main__":
    main()
