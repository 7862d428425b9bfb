"""A BASE item invsync hid stays in the sync and is restocked (issue 14): with
``out_of_stock_action = "hide"`` a sync hides an item Amazon cannot supply; the next sync's
pull keeps it `listed` (not `unlisted`, which would take it out of the sync for good); when
Amazon can supply again a sync shows it again with stock. An item hidden by hand stays
`unlisted`: the seller's choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from pipeline import layout
from tests.integration import loadkit

pytestmark = pytest.mark.slow

HIDE = '[pricing.base]\nout_of_stock_action = "hide"\n'


def _query(data_dir: Path, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def _sync(cli: Any, config: Path, data_dir: Path, env: dict[str, str]) -> None:
    result = cli("--config", str(config), "--data-dir", str(data_dir), "sync", env=env, timeout=300)
    assert result.exit_code in (0, 3), result.output  # 3: the gate held a few demo rows


def _in_stock_item(data_dir: Path) -> tuple[int, str]:
    """A shown shop1 item without variations whose ASIN the last snapshot has in stock, and
    which no other listing shares (so nothing else moves with it)."""
    run_id = _query(data_dir, "select run_id from runs order by started_at desc limit 1")[0][0]
    snapshot = layout.snapshot_path(data_dir, run_id)
    rows = _query(
        data_dir,
        "select l.item_id, l.asin from listings_base as l"
        f" join read_parquet('{snapshot}') as s on s.asin = l.asin"
        " where l.account_id = 'shop1' and l.status = 'listed' and l.visible and l.stock > 0"
        "   and not l.has_variations and s.status = 'ok' and s.in_stock"
        "   and l.drift_detected_at is null"
        "   and (select count(*) from listings_base as b where b.asin = l.asin) = 1"
        "   and (select count(*) from listings_ebay as e where e.asin = l.asin) = 0"
        " order by l.item_id limit 1",
    )
    assert rows, "the demo has a shop1 item in stock at Amazon"
    return int(rows[0][0]), str(rows[0][1])


def _edits(url: str, item_id: int) -> list[dict[str, Any]]:
    stats = loadkit.ledger(url)
    return [c["changes"] for c in stats["changes"] if c["platform"] == "base"
            and c["key"] == str(item_id)]  # fmt: skip


def test_an_item_invsync_hid_stays_in_the_sync_and_is_restocked(start_sandbox, data_dir, cli):
    sandbox = start_sandbox(time_scale=400.0, n_asins=120)
    env = sandbox.env()
    config = data_dir.parent / "invsync.toml"
    config.write_text(HIDE, encoding="utf-8")
    _sync(cli, config, data_dir, env)  # the world as invsync first finds it
    item_id, asin = _in_stock_item(data_dir)
    catalogue = sandbox.state.apis["catalogue"]
    with sandbox.state.lock:
        offers, catalogue.products[asin].offers = catalogue.products[asin].offers, []

    # Amazon cannot supply: the sync hides it (visible 0), its stock as it was
    _sync(cli, config, data_dir, env)
    item = sandbox.state.apis["base"].shops["shop1"].items[item_id]
    assert item.visible == 0 and item.stock > 0
    # the next sync pulls it hidden and keeps it in the sync
    _sync(cli, config, data_dir, env)
    row = _query(
        data_dir, "select status, visible from listings_base where item_id = $i", {"i": item_id}
    )
    assert row == [("listed", False)]  # before issue 14: unlisted, out of the sync for good
    assert _query(
        data_dir, "select hidden_by_invsync from listings_base where item_id = $i", {"i": item_id}
    ) == [(True,)]

    # Amazon can supply again: the sync restocks it (shown, stock > 0)
    with sandbox.state.lock:
        catalogue.products[asin].offers = offers
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10).raise_for_status()
    _sync(cli, config, data_dir, env)
    edits = _edits(sandbox.url, item_id)
    assert len(edits) == 1 and edits[0]["visible"] == 1  # once, shown (its stock was kept)
    assert item.visible == 1 and item.stock > 0
    assert _query(
        data_dir,
        "select status, visible, hidden_by_invsync from listings_base where item_id = $i",
        {"i": item_id},
    ) == [("listed", True, False)]

    # hidden by hand: the seller's choice, out of the sync (unlisted) and never shown again
    with sandbox.state.lock:
        item.visible = 0
    _sync(cli, config, data_dir, env)
    assert item.visible == 0
    assert _query(
        data_dir, "select status from listings_base where item_id = $i", {"i": item_id}
    ) == [("unlisted",)]
    # and the sync's log says so, with the run and the command that lists it
    last_run = _query(data_dir, "select run_id from runs order by started_at desc limit 1")[0][0]
    lines = [json.loads(x) for x in (data_dir / "logs" / "invsync.jsonl").read_text().splitlines()]
    shop1 = [x for x in lines if x["logger"] == "invsync.listings" and x["run_id"] == last_run
             and x["message"].startswith("BASE shop1:")]  # fmt: skip
    assert len(shop1) == 1 and shop1[0]["level"] == "warning"
    assert "1 hidden by hand (now unlisted)" in shop1[0]["message"]
    assert "`invsync listings show --unlisted --account shop1`" in shop1[0]["message"]
