"""Chaos: kill the sync anywhere, edit listings by hand, inject faults; check the invariants.

Stage: bench (``make bench`` runs 300 rounds; ``tests/integration/test_chaos.py`` 30).
Reads: a sandbox started in this process (its world and its ledger of every change an API
call applied) and the data directory's warehouse and snapshots once the sync process has
ended. Writes: the data directory under ``work`` (the sync's), nothing else.

A round, seeded: the Amazon world moves one tick; a few listings are edited by hand on
BASE or eBay (stock to 0 or a few units, price raised: what a seller does in the platform's
own admin); random faults are set (5xx, 429 storms, cut-off bodies, outages, eBay partial
failures, SP-API "too soon"); ``invsync sync`` runs in a process of its own and is killed
(SIGKILL or SIGTERM) after a random number of API calls, or let finish. A last round runs
without faults or kill. After every round:

* **no change applied twice**: within one run (resumed or not), no listing receives the
  same change from an API call twice (the sandbox ledger);
* **no hand edit overwritten**: after a hand edit, invsync changes that listing only to
  protect the seller (a pause to stock 0 or hidden, or a price raised to at least cost, as
  the journal's ``protect`` rows), never back to its own numbers;
* **no buyable listing below cost**: every price invsync sets on a listing left buyable is
  at least the Amazon cost the run knew (its own snapshot; JPY at the configured
  ``fx.jpy_per_usd`` for eBay);
* **no listing lost from the sync**: after a round whose sync finished, every listing on
  the platforms that names an ASIN is ``listed`` in the listing tables.

Exit codes are checked too: a sync ends 0, 3 (held), 4 (a push failed under faults) or
by its signal; exit 1 ("invsync hit a bug") is a violation.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

FX_JPY_PER_USD = 150  # written into the round's invsync.toml: eBay cost = JPY / this
# The longest a round's sync may take before it counts as hung. A sync under faults may
# legitimately wait out pipeline.fetch's back-off (up to BACKOFF_CAP_SECONDS = 120 s between
# two tries of a batch, three times): bench 15's chaos section stopped on a sync 71 s into one
# such wait, a false "hang" at 120 s. A real hang waits for ever, so 10 minutes still finds it.
SETTLE_SECONDS = 600.0
# the faults a round may draw (one to three of them), as sandbox fault SPEC parts
FAULT_MENU = (
    "error_rate=0.1",
    "error_rate=0.3",
    "malformed_rate=0.1",
    "html_rate=0.1",
    "throttle_storm_calls=5-12",
    "outage_calls=10-25",
    "ebay_429_rate=0.3",
    "partial_failure_rate=0.3",
    "too_soon_share=0.2",
    "slow_ms=30",
)
KILLS = ("none", "SIGTERM", "SIGKILL")
BUG_EXIT = 1


@dataclass(frozen=True)
class HandEdit:
    round: int
    platform: str
    account: str
    key: str
    fields: dict[str, int]
    change_index: int  # ledger changes before it: later ones came after the edit


@dataclass(frozen=True)
class Violation:
    round: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"round {self.round}: {self.kind}: {self.detail}"


@dataclass
class RoundResult:
    number: int
    kill: str
    faults: str
    exit_code: int | None
    run_id: str | None
    changes: tuple[int, int]  # ledger change indices [start, end)
    finished: bool  # the sync process ended by itself


@dataclass
class ChaosReport:
    seed: int
    rounds: list[RoundResult] = field(default_factory=list)
    hand_edits: list[HandEdit] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    changes_checked: int = 0
    listings: int = 0
    seconds: float = 0.0

    @property
    def kills(self) -> Counter[str]:
        return Counter(r.kill for r in self.rounds if r.kill != "none" and not r.finished)

    @property
    def fault_rounds(self) -> int:
        return sum(1 for r in self.rounds if r.faults)

    @property
    def exits(self) -> Counter[str]:
        return Counter(str(r.exit_code) for r in self.rounds)

    @property
    def runs(self) -> int:
        return len({r.run_id for r in self.rounds if r.run_id})

    def summary(self) -> str:
        kills = ", ".join(f"{n} {k}" for k, n in sorted(self.kills.items())) or "none"
        return (
            f"{len(self.rounds)} rounds (seed {self.seed}) over {self.runs} runs in "
            f"{self.seconds:.0f} s: kills {kills}; {len(self.hand_edits)} hand edits; "
            f"{self.fault_rounds} rounds with faults; {self.changes_checked} changes checked "
            f"on {self.listings} listings; exits {dict(sorted(self.exits.items()))}; "
            f"{len(self.violations)} violations"
        )


# --- the world and the sync -----------------------------------------------------------------


def _toml() -> str:
    today = datetime.now(UTC).date().isoformat()
    return (
        'mode = "sandbox"\n\n'
        f"[fx]\njpy_per_usd = {FX_JPY_PER_USD}\nas_of = {today}\n\n"
        # shop2 hides what Amazon cannot supply: hidden items must stay in the sync
        '[pricing.accounts.shop2]\nout_of_stock_action = "hide"\n'
    )


def _environment(server: Any) -> dict[str, str]:
    mine = ("SP_API_", "LWA_", "BASE_", "EBAY_", "INVSYNC_", "AWS_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(mine)}
    env.update(server.env())
    return env


def _known(data: Path) -> set[tuple[str, str, str]]:
    """Listings some pull has already seen: a hand edit before the first pull is just the
    value invsync first reads, not something it could overwrite."""
    return {
        (str(p), str(a), str(k))
        for p, a, k in _query(
            data,
            "select 'base', account_id, cast(item_id as varchar) from listings_base"
            " union all select 'ebay', account_id, sku from listings_ebay",
        )
    }


def _hand_edits(server: Any, data: Path, rng: random.Random, number: int) -> list[HandEdit]:
    """Zero to three listings that a pull has seen, edited by hand directly in the world
    (what the seller does in the platform's admin); every edit changes its value."""
    edits: list[HandEdit] = []
    known = _known(data)
    state = server.state
    with state.lock:
        base = [
            (account, str(item_id), item)
            for account, shop in sorted((state.apis["base"].shops or {}).items())
            for item_id, item in sorted(shop.items.items())
            if not item.variations and ("base", account, str(item_id)) in known
        ]
        ebay = [
            ("ebay-main", sku, listing)
            for sku, listing in sorted((state.apis["ebay"].listings or {}).items())
            if listing.status == "ACTIVE" and ("ebay", "ebay-main", sku) in known
        ]
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            index = len(state.ledger.changes)
            if rng.random() < 0.6 and base:
                account, key, item = rng.choice(base)
                what = rng.choice(("stock_zero", "stock_some", "price_up"))
                if what == "price_up":
                    item.price = int(item.price * rng.uniform(1.1, 1.5)) // 10 * 10
                    fields = {"price": item.price}
                else:
                    stock = 0 if what == "stock_zero" else rng.randint(1, 5)
                    if stock == item.stock:
                        continue
                    item.stock = stock
                    fields = {"stock": stock}
                edits.append(HandEdit(number, "base", account, key, fields, index))
            elif ebay:
                account, key, listing = rng.choice(ebay)
                what = rng.choice(("quantity_zero", "quantity_some", "price_up"))
                if what == "price_up":
                    listing.price_cents = int(listing.price_cents * rng.uniform(1.1, 1.5))
                    fields = {"price": listing.price_cents}
                else:
                    quantity = 0 if what == "quantity_zero" else rng.randint(1, 5)
                    if quantity == listing.quantity:
                        continue
                    listing.quantity = listing.available_quantity = quantity
                    fields = {"quantity": quantity}
                edits.append(HandEdit(number, "ebay", account, key, fields, index))
    return edits


def _sync(
    work: Path, env: dict[str, str], server: Any, kill: str, after_calls: int
) -> tuple[int | None, bool]:
    """One ``invsync sync`` process; killed with ``kill`` once ``after_calls`` more API calls
    have been answered (0: at the first). Returns its exit code and whether it ended itself."""
    ledger = server.state.ledger
    calls_at_start = len(ledger.calls)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--data-dir", str(work / "data"), "sync"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + SETTLE_SECONDS
    killed = False
    while proc.poll() is None:
        if kill != "none" and not killed and len(ledger.calls) > calls_at_start + after_calls:
            proc.send_signal(getattr(signal, kill))
            killed = True
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"a chaos sync ran over {SETTLE_SECONDS:.0f} s and was killed")
        time.sleep(0.001)
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode == BUG_EXIT or "hit a bug" in stderr:
        raise _Bug(stderr.strip()[-600:])
    return proc.returncode, not killed


class _Bug(Exception):
    pass


# --- the invariants --------------------------------------------------------------------------


def _query(data: Path, sql: str) -> list[tuple[Any, ...]]:
    path = data / "warehouse.duckdb"
    if not path.exists():
        return []
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _latest_sync(data: Path) -> str | None:
    rows = _query(
        data,
        "select run_id from runs where command = 'sync' order by started_at desc, run_id desc"
        " limit 1",
    )
    return str(rows[0][0]) if rows else None


def _costs(data: Path, run_id: str, cache: dict[str, dict[str, int]]) -> dict[str, int]:
    """ASIN → the landed Amazon cost (JPY) that run ``run_id``'s snapshot holds."""
    if run_id not in cache:
        files = sorted((data / "snapshots").glob(f"amazon/dt=*/run_id={run_id}/*.parquet"))
        costs: dict[str, int] = {}
        for path in files:
            frame = pl.read_parquet(path, columns=["asin", "status", "price_jpy"])
            for asin, status, price in frame.iter_rows():
                if status in ("ok", "fallback") and price is not None:
                    costs[asin] = int(price)
        cache[run_id] = costs
    return cache[run_id]


def _protect_keys(data: Path) -> set[tuple[str, str, str, str]]:
    rows = _query(
        data,
        "select run_id, platform, account_id, listing_key from push_journal"
        " where action = 'protect'",
    )
    return {tuple(map(str, r)) for r in rows}  # type: ignore[misc]


def _asin_of(server: Any, platform: str, account: str, key: str) -> str | None:
    apis = server.state.apis
    if platform == "base":
        item = apis["base"].shops[account].items.get(int(key))
        return item.identifier if item is not None else None
    listing = apis["ebay"].listings.get(key)
    return listing.asin if listing is not None else None


def check_round(
    server: Any, data: Path, report: ChaosReport, result: RoundResult, cache: dict[str, Any]
) -> None:
    """The four invariants after one round (the last one only when its sync finished)."""
    changes = server.state.ledger.changes
    start, end = result.changes
    by_run: dict[str, Counter[tuple[Any, ...]]] = cache.setdefault("by_run", {})
    protects = _protect_keys(data) if end > start else set()
    for index in range(start, end):
        change = changes[index]
        report.changes_checked += 1
        run_id = result.run_id or "?"
        fingerprint = (
            change.platform,
            change.account,
            change.key,
            tuple(sorted(change.changes.items())),
        )
        seen = by_run.setdefault(run_id, Counter())
        seen[fingerprint] += 1
        if seen[fingerprint] == 2:
            report.violations.append(
                Violation(result.number, "applied twice", f"run {run_id}: {fingerprint}")
            )
        _check_cost(server, data, report, result, change, cache)
        _check_hand_edits(report, result, change, index, protects)
    if result.finished and result.exit_code in (0, 3):  # 4: a platform failed, maybe its pull
        _check_nothing_lost(server, data, report, result)


def _check_cost(
    server: Any, data: Path, report: ChaosReport, result: RoundResult, change: Any, cache: Any
) -> None:
    price = change.changes.get("price")
    quantity = change.changes.get("stock", change.changes.get("quantity"))
    if price is None or change.changes.get("visible") == 0 or quantity == 0:
        return
    if result.run_id is None:
        return
    asin = _asin_of(server, change.platform, change.account, change.key)
    cost = _costs(data, result.run_id, cache.setdefault("costs", {})).get(asin or "")
    if cost is None:
        report.violations.append(
            Violation(
                result.number,
                "priced without a cost",
                f"{change.platform} {change.account}:{change.key} ({asin}) set to {price} "
                f"with no Amazon cost in run {result.run_id}",
            )
        )
        return
    floor_minor = cost if change.platform == "base" else cost * 100 / FX_JPY_PER_USD
    if price < floor_minor:
        report.violations.append(
            Violation(
                result.number,
                "below cost",
                f"{change.platform} {change.account}:{change.key} ({asin}) set to {price} "
                f"under the cost {cost} JPY in run {result.run_id}",
            )
        )


def _check_hand_edits(
    report: ChaosReport,
    result: RoundResult,
    change: Any,
    index: int,
    protects: set[tuple[str, str, str, str]],
) -> None:
    for edit in report.hand_edits:
        if (edit.platform, edit.account, edit.key) != (change.platform, change.account, change.key):
            continue
        if index < edit.change_index:
            continue
        values = change.changes
        pause = values.get("visible") == 0 or values.get("stock", values.get("quantity")) == 0
        raise_ = "price" in values and values["price"] > edit.fields.get("price", values["price"])
        protective = (result.run_id or "?", change.platform, change.account, change.key) in protects
        if protective and (pause or raise_):
            continue
        report.violations.append(
            Violation(
                result.number,
                "hand edit overwritten",
                f"{change.platform} {change.account}:{change.key} edited by hand in round "
                f"{edit.round} ({edit.fields}), then set to {values} by run {result.run_id}",
            )
        )
        return


def _check_nothing_lost(server: Any, data: Path, report: ChaosReport, result: RoundResult) -> None:
    state = server.state
    with state.lock:
        hidden_by_us = set()  # BASE items whose last visibility change an API call made
        for change in state.ledger.changes:
            if change.platform == "base" and "visible" in change.changes:
                key = ("base", change.account, change.key)
                if change.changes["visible"]:
                    hidden_by_us.discard(key)
                else:
                    hidden_by_us.add(key)
        # a BASE item hidden by the seller (never by invsync) is the seller's choice
        on_platforms = {
            ("base", account, str(item_id))
            for account, shop in state.apis["base"].shops.items()
            for item_id, item in shop.items.items()
            if item.identifier and (item.visible or ("base", account, str(item_id)) in hidden_by_us)
        } | {
            ("ebay", "ebay-main", sku)
            for sku, listing in state.apis["ebay"].listings.items()
            if listing.status == "ACTIVE"
        }
    report.listings = len(on_platforms)
    listed = {
        (str(p), str(a), str(k))
        for p, a, k in _query(
            data,
            "select 'base', account_id, cast(item_id as varchar) from listings_base"
            " where status = 'listed'"
            " union all select 'ebay', account_id, sku from listings_ebay where status = 'listed'",
        )
    }
    lost = sorted(on_platforms - listed)
    if lost:
        statuses = dict(
            ((str(p), str(a), str(k)), str(s))
            for p, a, k, s in _query(
                data,
                "select 'base', account_id, cast(item_id as varchar), status from listings_base"
                " union all select 'ebay', account_id, sku, status from listings_ebay",
            )
        )
        shown = ", ".join(
            f"{p} {a}:{k} ({statuses.get((p, a, k), 'absent')})" for p, a, k in lost[:5]
        )
        report.violations.append(
            Violation(result.number, "lost from the sync", f"{len(lost)} listing(s): {shown}")
        )


# --- the loop ---------------------------------------------------------------------------------


def run(
    rounds: int,
    *,
    seed: int,
    work: Path,
    n_asins: int = 40,
    time_scale: float = 200.0,
    say: Any = None,
) -> ChaosReport:
    """``rounds`` chaotic rounds and one clean last round; the report holds every violation."""
    from pipeline.sandbox.control import advance_world
    from pipeline.sandbox.server import SandboxServer

    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    (work / "invsync.toml").write_text(_toml(), encoding="utf-8")
    data = work / "data"
    report = ChaosReport(seed=seed)
    cache: dict[str, Any] = {}
    started = time.monotonic()
    server = SandboxServer(time_scale=time_scale, n_asins=n_asins, seed=seed).start()
    try:
        env = _environment(server)
        for number in range(1, rounds + 2):
            last = number == rounds + 1
            if number > 1:
                advance_world(server.state, 1)
            edits = [] if last else _hand_edits(server, data, rng, number)
            report.hand_edits.extend(edits)
            faults = (
                ""
                if last or rng.random() < 0.4
                else ",".join(sorted(set(rng.sample(FAULT_MENU, rng.randint(1, 3)))))
            )
            server.state.set_faults(faults or None)
            kill = "none" if last else rng.choice(KILLS)
            after = rng.randint(0, 60)
            start = len(server.state.ledger.changes)
            try:
                code, finished = _sync(work, env, server, kill, after)
            except _Bug as bug:
                report.violations.append(Violation(number, "exit 1", str(bug)))
                code, finished = BUG_EXIT, False
            result = RoundResult(
                number, kill, faults, code, _latest_sync(data),
                (start, len(server.state.ledger.changes)), finished,
            )  # fmt: skip
            report.rounds.append(result)
            check_round(server, data, report, result, cache)
            if last and code not in (0, 3):
                report.violations.append(
                    Violation(number, "last round", f"the clean last sync exited {code}")
                )
            if say is not None:
                say(
                    f"round {number}: kill {kill} after {after} calls, faults {faults or '-'}, "
                    f"exit {code}, {len(edits)} hand edits, {len(report.violations)} violations"
                )
    finally:
        server.stop()
    report.seconds = time.monotonic() - started
    return report
