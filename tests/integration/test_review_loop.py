"""The review loop a seller lives with, on real demo syncs against a real sandbox: decide in
the workbench (headless Chromium) or on the command line, `invsync load` pushes exactly the
approved changes, the next sync does not hold them again; an old run approved after a newer
one loaded pushes nothing; no listing the platforms sell is left below its Amazon cost.

The sandbox here runs in a thread of the test (``start_sandbox``) so its ledger can be read
and reset between commands; the commands reach it through the endpoint variables, as they
reach a sandbox served elsewhere (``invsync sandbox serve``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import requests

from pipeline import pricing
from pipeline.config import open_workspace
from pipeline.review import read_diff
from tests.conftest import _environment
from tests.integration import loadkit
from tests.integration.test_workbench_browser import _reads_as_cards, _row, _wait, _width

# A small demo (300 ASINs) with a tight move limit, so that every account has rows that wait
# for a person and are not losing money now (a loss-making held raise is sent at once).
DEMO = """
[sandbox]
n_asins = 300
time_scale = 100

[guardrails]
max_price_change_pct = 10
"""


def _demo(start_sandbox: Any) -> tuple[Any, dict[str, str], Path]:
    Path("invsync.toml").write_text(DEMO)
    server = start_sandbox(time_scale=100.0, n_asins=300)
    return server, dict(server.env()), Path.cwd() / "data"


def _latest_run(data: Path) -> str:
    return sorted(p.name.removeprefix("run_id=") for p in (data / "diffs").glob("run_id=*"))[-1]


def _waiting(data: Path, run_id: str, platform: str) -> pl.DataFrame:
    ws = open_workspace(data_dir=data, environ={})
    diff = read_diff(ws, run_id, platform)
    return diff.filter(pl.col("held") & pl.col("protection").is_null()).sort("listing_key")


def _edits(server: Any) -> dict[str, int]:
    """BASE items/edit calls per item since the last reset, from the sandbox's ledger."""
    stats = requests.get(f"{server.url}/_sandbox/stats", timeout=60).json()
    return loadkit.changes_per_key(stats, "base")


def _reset(server: Any) -> None:
    requests.post(f"{server.url}/_sandbox/reset", timeout=60).raise_for_status()


@pytest.mark.browser
@pytest.mark.slow
def test_the_demo_loop_closes_in_the_workbench(
    cli: Any, start_sandbox: Any, browser: Any, shots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, env, data = _demo(start_sandbox)
    first = cli("sync", env=env, timeout=300)
    assert first.exit_code == 3, first.output
    run_id = _latest_run(data)
    waiting = _waiting(data, run_id, "base").filter(pl.col("account_id") == "shop1")
    assert waiting.height >= 3, waiting
    approve_one, approve_two, reject = waiting["change_id"].head(3).to_list()
    keys = dict(zip(waiting["change_id"], waiting["listing_key"], strict=True))

    command = [sys.executable, "-m", "pipeline", "review", "--serve", "--no-browser"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=_environment(env), cwd=Path.cwd()
    )
    try:
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 120
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "invsync review --serve ended before it printed its URL"
            if line.startswith("Review workbench on "):
                url = line.split()[3]
        assert url.startswith("http://127.0.0.1:") and "token=" in url, url

        browser.get(url)
        _wait(browser, lambda b: "rows shown" in b.find_element(By.ID, "shown").text, "rows")
        Select(browser.find_element(By.ID, "f-account")).select_by_value("shop1")
        shown = [r for r in browser.find_elements(By.CSS_SELECTOR, "tr.row") if r.is_displayed()]
        assert shown and {r.get_attribute("data-account") for r in shown} == {"shop1"}

        for change_id in (approve_one, approve_two):
            _row(browser, change_id).find_element(By.CSS_SELECTOR, "button.approve").click()
            _wait(
                browser,
                lambda b, c=change_id: _row(b, c).get_attribute("data-decision") == "approve",
                f"the approval of {keys[change_id]}",
            )
        _row(browser, reject).find_element(By.CSS_SELECTOR, "button.reject").click()
        _wait(
            browser,
            lambda b: _row(b, reject).get_attribute("data-decision") == "reject",
            "the rejection",
        )
        # the sync already sent every row not held and every protective raise: the next
        # load sends exactly the two approved changes, and the page says so
        _wait(
            browser,
            lambda b: b.find_element(By.ID, "plan-total").text == "2",
            "the plan of the next load",
        )
        _width(browser, 1400)
        browser.save_screenshot(str(shots / "demo-workbench-1400.png"))
        _width(browser, 400)
        _reads_as_cards(browser)
        browser.save_screenshot(str(shots / "demo-workbench-400.png"))
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()

    _reset(server)
    loaded = cli("load", env=env, timeout=300)
    assert loaded.exit_code == 0, loaded.output
    # exactly the two approved changes went out, nothing else
    assert _edits(server) == {f"shop1:{keys[approve_one]}": 1, f"shop1:{keys[approve_two]}": 1}
    pushed = waiting.filter(pl.col("change_id").is_in([approve_one, approve_two]))
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        prices = dict(
            con.execute(
                "select cast(item_id as varchar), price_jpy from listings_base"
                " where account_id = 'shop1'"
            ).fetchall()
        )
    for row in pushed.iter_rows(named=True):
        assert prices[row["listing_key"]] == row["new_price_minor"]

    second = cli("sync", env=env, timeout=300)
    assert second.exit_code in (0, 3), second.output
    again = read_diff(open_workspace(data_dir=data, environ={}), _latest_run(data), "base")
    held_again = set(again.filter(pl.col("held"))["listing_key"])
    assert not held_again & {keys[approve_one], keys[approve_two]}
    # the rejected change, proposed again unchanged, stays rejected: it does not wait
    rejected = again.filter(pl.col("change_id") == reject)
    assert rejected.height in (0, 1)
    assert (shots / "demo-workbench-400.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_demo_loop_closes_on_the_command_line_in_the_persisted_world(cli: Any) -> None:
    """`make sync`'s own path: the sandbox started by each command on the world kept under
    data/sandbox; approve, then `invsync load` pushes into that world; the next sync (the
    world moved on a tick) does not hold the approved rows again."""
    Path("invsync.toml").write_text(DEMO.replace("time_scale = 100", "time_scale = 400"))
    data = Path.cwd() / "data"
    assert cli("sync", timeout=300).exit_code == 3
    run_id = _latest_run(data)
    waiting = _waiting(data, run_id, "base")
    keys = waiting["listing_key"].head(3).to_list()
    approved = cli("approve", run_id, "--listing", keys[0], "--listing", keys[1])
    assert approved.exit_code == 0 and "Approved 2 BASE row(s)" in approved.stdout
    assert cli("reject", run_id, "--listing", keys[2]).exit_code == 0
    loaded = cli("load", timeout=300)
    assert loaded.exit_code == 0, loaded.output
    assert "2 ok" in loaded.stdout and "1 row(s) — rejected" in loaded.stdout

    second = cli("sync", timeout=300)
    assert second.exit_code in (0, 3), second.output
    again = read_diff(open_workspace(data_dir=data, environ={}), _latest_run(data), "base")
    pushed = waiting.filter(pl.col("listing_key").is_in(keys[:2]))
    for row in pushed.iter_rows(named=True):
        mine = again.filter(pl.col("listing_key") == row["listing_key"])
        # the pull read the world back: the listing now stands at the approved price, so any
        # row of it starts from there (the world moved a tick), never from the old price
        assert mine.is_empty() or mine["old_price_minor"].item() == row["new_price_minor"]


@pytest.mark.slow
def test_approving_an_old_run_after_a_newer_one_loaded_pushes_nothing_stale(
    cli: Any, start_sandbox: Any
) -> None:
    server, env, data = _demo(start_sandbox)
    assert cli("sync", env=env, timeout=300).exit_code == 3
    old_run = _latest_run(data)
    assert _waiting(data, old_run, "base").height > 0
    server.tick()  # Amazon moves; the next run decides anew and loads
    assert cli("sync", env=env, timeout=300).exit_code in (0, 3)
    new_run = _latest_run(data)
    assert new_run != old_run

    approved = cli("approve", old_run, env=env)
    assert approved.exit_code == 0, approved.output
    _reset(server)
    loaded = cli("load", "--run", old_run, env=env, timeout=300)
    assert loaded.exit_code == 0, loaded.output
    assert "a newer run re-decided the listing" in loaded.stdout
    assert _edits(server) == {}
    stats = requests.get(f"{server.url}/_sandbox/stats", timeout=60).json()
    assert not loadkit.changes_per_key(stats, "ebay")


@pytest.mark.slow
def test_after_a_demo_run_no_listing_the_platforms_sell_is_below_its_amazon_cost(
    cli: Any, start_sandbox: Any
) -> None:
    """Invariant 11 over the sandbox's world: read the world back through the platforms' own
    APIs (a pull into a fresh warehouse) and check every buyable listing against the run's
    Amazon observation: it earns at least its minimum profit, and none is for sale while
    Amazon cannot supply it. The run summary says how many were protected."""
    from pipeline import listings_pull, warehouse

    _server, env, data = _demo(start_sandbox)
    run = cli("sync", env=env, timeout=300)
    assert run.exit_code == 3, run.output
    assert "listings protected while held: " in run.stdout
    run_id = _latest_run(data)
    ws = open_workspace(data_dir=data, environ={})
    snapshot = {
        row["asin"]: row
        for row in pl.read_parquet(
            next((data / "snapshots").rglob(f"run_id={run_id}/*.parquet"))
        ).iter_rows(named=True)
    }
    # the next sync's own first step: read every listing back from the platforms
    world = open_workspace(data_dir=data, environ=env)
    with warehouse.opened(world.data_dir) as con:
        for platform in ("base", "ebay"):
            listings_pull.run(world, con, platform)
        base = con.execute(
            "select account_id, item_id, asin, price_jpy, stock, visible from listings_base"
            " where status = 'listed'"
        ).fetchall()
        ebay = con.execute(
            "select account_id, sku, asin, price_cents, quantity from listings_ebay"
            " where status = 'listed'"
        ).fetchall()
    fx = pricing.resolve_fx(ws.settings, snapshot[next(iter(snapshot))]["fetched_at"])
    rules = {
        r.account_id: r
        for platform in ("base", "ebay")
        for r in pricing.compile_rules(ws.settings, platform, fx)
    }
    checked = 0
    selling = [
        (a, str(k), asin, price, qty > 0 and shown) for a, k, asin, price, qty, shown in base
    ]
    selling += [(a, k, asin, price, qty > 0) for a, k, asin, price, qty in ebay]
    for account, key, asin, price, buyable in selling:
        seen = snapshot.get(asin)
        if not buyable or seen is None:
            continue
        if seen["status"] in ("no_offer", "filtered_out") or seen["in_stock"] is False:
            raise AssertionError(f"{account} {key} is for sale but Amazon cannot supply {asin}")
        if seen["status"] != "ok":
            continue  # an error is not a fact: nothing was decided from it
        rule = rules[account]
        profit = pricing.expected_profit(price, seen["price_jpy"], rule)
        assert profit >= rule.min_profit, (account, key, price, seen["price_jpy"], profit)
        checked += 1
    assert checked > 200
