"""kill -9 at random points of a 1,000-row load, at least 12 times: nothing lost, nothing twice.

The kill points are drawn (seeded) over the whole load: before the first call lands, inside
a shop's BASE edits, inside an eBay bulk call of 25 and a Trading revision of 4."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from pipeline import listings_pull, runs, warehouse
from pipeline.config import open_workspace
from tests.integration import loadkit

KILLS = 12
BASE_ROWS = 760
INVENTORY_ROWS = 200  # 8 bulk calls of 25
TRADING_ROWS = 40  # 10 ReviseInventoryStatus calls of 4, reconciled with GetItem
EBAY_ROWS = INVENTORY_ROWS + TRADING_ROWS


def _changes(sandbox) -> int:
    with sandbox.state.lock:
        return len(sandbox.state.ledger.changes)


@pytest.mark.slow
def test_sigkill_anywhere_then_load_again_applies_every_change_exactly_once(
    start_sandbox, data_dir
):
    sandbox = start_sandbox(time_scale=100.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASE_", "EBAY_"))}
    env.update(sandbox.env())
    ws = open_workspace(data_dir=data_dir, environ=sandbox.env())
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base")
        listings_pull.run(ws, con, "ebay")  # Trading listings too, via GetMyeBaySelling
        run_id = runs.start_run(con, ws, "load")
        base = loadkit.base_diff(con, run_id, BASE_ROWS)
        ebay = pl.concat(
            [
                loadkit.ebay_diff(con, run_id, INVENTORY_ROWS, api="inventory"),
                loadkit.ebay_diff(con, run_id, TRADING_ROWS, api="trading"),
            ]
        )
        loadkit.write_transform_output(con, data_dir, base, "base")
        loadkit.write_transform_output(con, data_dir, ebay, "ebay")
    with sandbox.state.lock:
        sandbox.state.ledger.reset()

    rng = random.Random(6)
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "--data-dir",
        str(data_dir),
        "load",
        "--run",
        run_id,
    ]
    kills = 0
    finished = False
    while not finished:
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        start = _changes(sandbox)
        # kill after a random number of applied changes (0: as soon as the first call lands)
        target = start + rng.randint(0, 80)
        calls_at_start = len(sandbox.state.ledger.calls)
        while proc.poll() is None:
            if kills < KILLS and (
                _changes(sandbox) > target
                or (target == start and len(sandbox.state.ledger.calls) > calls_at_start)
            ):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                break
            time.sleep(0.001)
        else:
            stderr = proc.stderr.read() if proc.stderr else ""
            assert proc.returncode == 0, stderr
            finished = True
        if proc.stderr:
            proc.stderr.close()
        assert kills <= KILLS + 1

    assert kills >= KILLS
    stats = loadkit.ledger(sandbox.url)
    base_changes = loadkit.changes_per_key(stats, "base")
    ebay_changes = loadkit.changes_per_key(stats, "ebay")
    # every change applied, none twice
    assert len(base_changes) == BASE_ROWS and set(base_changes.values()) == {1}
    assert len(ebay_changes) == EBAY_ROWS and set(ebay_changes.values()) == {1}
    with warehouse.opened(data_dir) as con:
        states = con.execute(
            "select state, count(*) from push_journal where run_id = $r group by 1", {"r": run_id}
        ).fetchall()
        assert states == [("ok", BASE_ROWS + EBAY_ROWS)]
        # nothing lost: the local listings and the platforms hold the new values
        local = dict(
            con.execute(
                "select item_id, price_jpy from listings_base where source = 'push'"
            ).fetchall()
        )
    assert local == dict(
        zip(base["listing_key"].cast(pl.Int64), base["new_price_minor"], strict=True)
    )
    world = sandbox.state.apis["base"]
    on_base = {
        item_id: item.price
        for shop in world.shops.values()
        for item_id, item in shop.items.items()
        if item_id in local
    }
    assert on_base == local
    listings = sandbox.state.apis["ebay"].listings
    assert {s: listings[s].price_cents for s in ebay["listing_key"]} == dict(
        zip(ebay["listing_key"], ebay["new_price_minor"], strict=True)
    )
