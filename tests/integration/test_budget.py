"""Budgeted runs end to end on the real sandbox (a world of its own, so no sync moves it
unless a test ticks it): the budget buys its capacity of ASINs, most urgent first; the
ASINs it did not observe keep their last decision; a rule change prices their listings from
the last observation; the max-age sweep keeps every listed ASIN within max_source_age over a
sequence of runs; and a budget that cannot says so with its numbers and holds stale changes."""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from pipeline import pool, sync
from pipeline.config import Workspace
from tests.integration import loadkit

pytestmark = pytest.mark.slow

SINGLE_LANE = "[amazon]\npool = false\n"  # the fetch's lane is getItemOffersBatch alone


def query(data_dir: Path, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def plan_of(data_dir: Path, run_id: str) -> list[str]:
    rows = query(data_dir, "select asin from fetch_plan where run_id = $r and valid", {"r": run_id})
    return [r[0] for r in rows]


def diff_rows(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        cursor = con.execute("select * from diff_history where run_id = $r", {"r": run_id})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def full_pass(ws: Workspace) -> sync.SyncSummary:
    summary = sync.run(ws, budget=None)
    assert summary.outcome in ("ok", "held"), summary.message
    return summary


@pytest.fixture
def world(start_sandbox: Any) -> Any:
    """A sandbox of 200 ASINs at time scale 100 (getItemOffersBatch 10 requests/s)."""
    return start_sandbox(time_scale=100.0, n_asins=200)


def test_a_budgeted_run_fetches_the_capacity_of_its_budget_and_stays_within_it(
    world: Any, data_dir: Path
) -> None:
    ws = loadkit.workspace(world, data_dir, SINGLE_LANE)
    full_pass(ws)
    requests.post(f"{world.url}/_sandbox/reset", timeout=10).raise_for_status()
    budget = 0.25  # seconds of quota time: burst 1 + 2 calls at the learned 10 requests/s
    run = sync.run(ws, budget=budget)

    (rates,) = query(data_dir, "select spapi_rate from runs order by started_at limit 1")
    lanes = pool.lanes_for("item_offers", pool=False, rates={"item_offers": rates[0]})
    capacity = pool.capacity(budget, lanes)
    assert capacity == 60 < run.unique_asins + 150  # fewer than the ~200 listed
    assert len(plan_of(data_dir, run.run_id)) == capacity
    row = query(
        data_dir,
        "select fetch_budget_seconds, fetch_selected_asins, quota_floor_seconds, spapi_calls,"
        " spapi_retries from runs where run_id = $r",
        {"r": run.run_id},
    )[0]
    assert row[0] == budget and row[1] == capacity
    assert row[2] <= budget  # the quota floor of its calls is within the budget
    batch = loadkit.calls_of(loadkit.ledger(world.url), "spapi", "getItemOffersBatch")
    assert len(batch) == math.ceil(capacity / 20) == row[3] - row[4]
    assert run.budget_line and f"{capacity} of " in run.budget_line


def test_unobserved_asins_keep_their_last_decision_and_a_rule_change_prices_them_from_it(
    world: Any, data_dir: Path
) -> None:
    ws = loadkit.workspace(world, data_dir, SINGLE_LANE)
    first = full_pass(ws)
    settled = full_pass(ws)  # what the rules decide with nothing new from Amazon
    requests.post(f"{world.url}/_sandbox/tick?n=3", timeout=10).raise_for_status()
    run = sync.run(ws, budget=0.25)
    observed = set(plan_of(data_dir, run.run_id))
    rows = diff_rows(data_dir, run.run_id)

    def decision(row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in ("platform", "listing_key", "change_kind",
                                      "new_price_minor", "new_quantity", "held"))  # fmt: skip

    # Amazon moved many ASINs; only those the run observed get a new decision: a listing it
    # did not observe has no diff, or exactly the one the last full pass had (a change still
    # held, or one the platform did not take)
    before = {decision(r) for r in diff_rows(data_dir, settled.run_id)}
    unobserved = [decision(r) for r in rows if r["asin"] not in observed]
    assert {r["asin"] for r in rows} & observed and set(unobserved) <= before, unobserved
    assert len(unobserved) <= len(before) < 20

    # a rule change (a local change): the unobserved ASINs' listings are decided from their
    # last observation, named by its run and its time
    ruled = loadkit.workspace(world, data_dir, SINGLE_LANE + "[pricing.base]\nshipping_jpy = 300\n")
    again = sync.run(ruled, budget=0.25)
    seen = set(plan_of(data_dir, again.run_id))
    carried = [
        r
        for r in diff_rows(data_dir, again.run_id)
        if r["asin"] not in seen and r["platform"] == "base"
    ]
    assert len(carried) > 50  # most BASE listings' ASINs were not observed by this run
    sources = {r["source_run_id"] for r in carried}
    assert sources <= {first.run_id, settled.run_id, run.run_id} and settled.run_id in sources
    assert all(r["source_fetched_at"] is not None for r in carried)


def ebay_offer_reads(url: str) -> list[str]:
    """The SKUs of every getOffers call on the sandbox's ledger, in order."""
    return [sku for c in loadkit.calls_of(loadkit.ledger(url), "ebay", "getOffers")
            for sku in c["items"]]  # fmt: skip


def inventory_skus(data_dir: Path) -> dict[str, str]:
    rows = query(
        data_dir,
        "select sku, asin from listings_ebay where api = 'inventory' and status = 'listed'",
    )
    return dict(rows)


def test_a_budgeted_run_reads_ebay_offers_only_for_the_asins_it_observes(
    world: Any, data_dir: Path
) -> None:
    ws = loadkit.workspace(world, data_dir, SINGLE_LANE)
    requests.post(f"{world.url}/_sandbox/reset", timeout=10).raise_for_status()
    full_pass(ws)
    skus = inventory_skus(data_dir)
    assert len(skus) > 40
    # a full pass reads every listed SKU's offer
    assert set(skus) <= set(ebay_offer_reads(world.url))

    requests.post(f"{world.url}/_sandbox/reset", timeout=10).raise_for_status()
    run = sync.run(ws, budget=0.25)  # 60 of ~200 ASINs
    observed = set(plan_of(data_dir, run.run_id))
    read = ebay_offer_reads(world.url)
    pushed = {r[0] for r in query(data_dir, "select listing_key from push_journal"
                                  " where run_id = $r and platform = 'ebay'", {"r": run.run_id})}  # fmt: skip
    # every SKU of an observed ASIN is read, once; another only to read a change back
    assert {sku for sku, asin in skus.items() if asin in observed} <= set(read)
    assert {sku for sku in read if skus.get(sku) not in observed} <= pushed
    deferred = [sku for sku, asin in skus.items() if asin not in observed]
    assert deferred and not set(deferred) & (set(read) - pushed)
    assert len(read) < len(skus)
    # the listings it did not read stay as the last pull left them, none gone
    assert inventory_skus(data_dir) == skus
    assert f"{len(deferred)} listing(s)" not in (run.message or "")  # not an error


def test_a_change_to_an_ebay_listing_the_run_did_not_read_is_read_back_and_never_overwrites_a_hand_edit(
    world: Any, data_dir: Path
) -> None:
    ws = loadkit.workspace(world, data_dir, SINGLE_LANE)
    full_pass(ws)
    full_pass(ws)
    skus = inventory_skus(data_dir)
    listings = world.state.apis["ebay"].listings
    edited = sorted(skus)[::3]
    with world.state.lock:  # the seller re-prices a third of the eBay listings by hand
        for sku in edited:
            listings[sku].price_cents += 77
    hand = {sku: listings[sku].price_cents for sku in edited}
    # a rule change decides every eBay listing again, observed by this run or not
    ruled = loadkit.workspace(
        world, data_dir, SINGLE_LANE + "[pricing.ebay]\nshipping_jpy = 2500\n"
    )
    requests.post(f"{world.url}/_sandbox/reset", timeout=10).raise_for_status()
    run = sync.run(ruled, budget=0.25)
    observed = set(plan_of(data_dir, run.run_id))
    journal = dict(query(data_dir, "select listing_key, state || ':' || coalesce(error_code, '')"
                         " from push_journal where run_id = $r and platform = 'ebay'",
                         {"r": run.run_id}))  # fmt: skip
    unread_edited = [sku for sku in edited if skus[sku] not in observed]
    unread_clean = [sku for sku in skus if skus[sku] not in observed and sku not in edited]
    assert unread_edited and unread_clean
    # no hand edit is overwritten: the ones the run read are held as drift by its pull, the
    # ones it did not read were read back and skipped as drifted
    assert all(listings[sku].price_cents == hand[sku] for sku in edited)
    assert all(journal.get(sku) == "skipped:drifted" for sku in unread_edited if sku in journal)
    assert any(journal.get(sku) == "skipped:drifted" for sku in unread_edited)
    # the unread listings nobody touched took the new rule, each read back before its send
    sent = [sku for sku in unread_clean if journal.get(sku) == "ok:"]
    assert sent and set(sent) <= set(ebay_offer_reads(world.url))


def test_the_max_age_sweep_keeps_every_listed_asin_within_max_source_age(
    start_sandbox: Any, data_dir: Path
) -> None:
    world = start_sandbox(time_scale=100.0, n_asins=60)
    one_by_one = SINGLE_LANE + "batch_size = 1\n"  # 11 ASINs per second of quota time
    full_pass(loadkit.workspace(world, data_dir, SINGLE_LANE))
    # the run period P depends on this machine's speed (pull, transform, load): one
    # budgeted run measures it, and max_source_age is set to 8 P, which a sweep of ~60
    # ASINs at 21 a run can keep (k = ceil(N P / (A - 2P)) = ceil(N / 6) ≤ 21)
    started = time.monotonic()
    sync.run(loadkit.workspace(world, data_dir, one_by_one), budget=2.0)
    max_age = max(40.0, 8 * (time.monotonic() - started))
    ws = loadkit.workspace(
        world, data_dir, one_by_one + f"[guardrails]\nmax_source_age = {max_age:.0f}\n"
    )
    started = time.monotonic()
    sweeps = []
    while time.monotonic() - started < max_age * 1.25:
        run = sync.run(ws, budget=2.0)  # 21 of ~60 ASINs a run
        assert run.guarantee_note is None, run.guarantee_note
        sweeps.append(query(data_dir, "select fetch_sweep_asins from runs where run_id = $r",
                            {"r": run.run_id})[0][0])  # fmt: skip
        (oldest,) = query(
            data_dir,
            "select max(age) from (select asin, epoch(now()) - epoch(max(fetched_at)) as age"
            " from snapshots where status in ('ok', 'no_offer', 'filtered_out', 'invalid_asin')"
            " group by asin) where asin in (select asin from fetch_plan where valid)",
        )[0]
        assert oldest <= max_age, f"an ASIN was last observed {oldest:.1f} s ago"
    assert len(sweeps) >= 6 and all(k and k > 0 for k in sweeps)


def test_a_budget_that_cannot_keep_the_max_age_says_so_and_holds_stale_changes(
    world: Any, data_dir: Path
) -> None:
    toml = SINGLE_LANE + '[guardrails]\nmax_source_age = "2s"\n'
    ws = loadkit.workspace(world, data_dir, toml)
    full_pass(ws)
    time.sleep(2.5)  # every observation is now past max_source_age
    ruled = loadkit.workspace(world, data_dir, toml + "[pricing.base]\nshipping_jpy = 300\n")
    run = sync.run(ruled, budget=0.25)
    note = run.guarantee_note
    assert note and "cannot keep every listed ASIN within max_source_age" in note
    listed = len(query(data_dir, "select asin from fetch_plan where run_id = $r and valid",
                       {"r": query(data_dir, "select min(run_id) from runs")[0][0]}))  # fmt: skip
    assert f"{listed:,} ASINs" in note and "max_source_age 2 s" in note
    assert query(data_dir, "select fetch_guarantee_note from runs where run_id = $r",
                 {"r": run.run_id}) == [(note,)]  # fmt: skip
    seen = set(plan_of(data_dir, run.run_id))
    carried = [r for r in diff_rows(data_dir, run.run_id) if r["asin"] not in seen]
    assert carried and all(r["held"] and "source_stale" in r["hold_reason"] for r in carried)


def test_daemon_continuous_runs_budgeted_syncs_back_to_back_until_sigterm(
    clean_environment: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import _OUR_VARS

    Path("invsync.toml").write_text("[sandbox]\nn_asins = 100\ntime_scale = 400\n")
    env = {k: v for k, v in os.environ.items() if not _OUR_VARS.match(k)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "daemon", "--continuous", "--budget", "0.1s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert daemon.stdout is not None
    seen = []
    for line in daemon.stdout:  # wait for the third run to start
        seen.append(line)
        if sum(x.startswith("fetch:") and "ASINs in" in x for x in seen) == 3:
            break
    daemon.send_signal(signal.SIGTERM)
    out, _ = daemon.communicate(timeout=120)
    text = "".join(seen) + out
    assert daemon.returncode == 0, text
    assert re.search(r"Daemon stopped after 3 run\(s\)", text), text
    assert "Next run now (--continuous)." in text and "Next run in" not in text
    rows = query(
        clean_environment / "data",
        "select started_at, finished_at, fetch_budget_seconds from runs order by started_at",
    )
    assert len(rows) == 3 and all(r[2] == 0.1 for r in rows)
    gaps = [(b[0] - a[1]).total_seconds() for a, b in itertools.pairwise(rows)]
    assert all(gap < 5 for gap in gaps), gaps  # back to back, no interval between


def test_daemon_continuous_and_every_are_exclusive(cli) -> None:
    result = cli("daemon", "--continuous", "--every", "1h")
    assert result.exit_code == 2 and "runs syncs back to back" in result.output
