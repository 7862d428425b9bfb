"""`listings pull` against the sandbox: mapping by identifier / SKU pattern, drift, gone,
and the eBay Trading listings found through GetMyeBaySelling."""

from __future__ import annotations

import pytest

from pipeline import listings_pull, warehouse
from pipeline.clients.ebay import EbayQuotaError
from pipeline.config import open_workspace
from tests.integration import loadkit
from tests.sandbox.platform_clients import set_limits, wait_for_window


def test_pull_maps_asins_then_reports_drift_and_gone(start_sandbox, data_dir, cli):
    sandbox = start_sandbox(time_scale=100.0, n_asins=200)
    ws = open_workspace(data_dir=data_dir, environ=sandbox.env())
    world = sandbox.state.apis
    with warehouse.opened(data_dir) as con:
        first = listings_pull.run(ws, con, "base")
        shops = world["base"].shops
        assert first.total("inserted") == sum(len(s.items) for s in shops.values())
        identifiers = dict(con.execute("select item_id, asin from listings_base").fetchall())
        assert all(
            identifiers[i] == item.identifier
            for shop in shops.values()
            for i, item in shop.items.items()
            if i in identifiers
        )
        ebay = listings_pull.run(ws, con, "ebay")
        inventory = [x for x in world["ebay"].listings.values() if x.api == "inventory"]
        assert ebay.total("seen") == len(world["ebay"].listings)  # Trading ones too
        skus = dict(con.execute("select sku, asin from listings_ebay").fetchall())
        assert all(skus[x.sku] == x.asin for x in world["ebay"].listings.values())

        # a price changed by hand on BASE, a quantity on eBay, and one BASE item deleted
        shop1 = shops["shop1"]
        edited, deleted = sorted(shop1.items)[:2]
        with sandbox.state.lock:
            shop1.items[edited].price += 1000
            inventory[0].quantity += 4
            inventory[0].available_quantity += 4
        loadkit.set_faults(sandbox.url, f"bad_item_ids={deleted}")

        again = listings_pull.run(ws, con, "base", account="shop1")
        assert again.accounts[0].drifted_keys == [str(edited)]
        assert again.accounts[0].gone_keys == [str(deleted)]
        flagged = con.execute(
            "select item_id, status, drift_detected_at is not null from listings_base"
            " where item_id in ($a, $b) order by item_id",
            {"a": edited, "b": deleted},
        ).fetchall()
        assert flagged == [(edited, "listed", True), (deleted, "gone", False)]
        ebay_again = listings_pull.run(ws, con, "ebay")
        assert ebay_again.accounts[0].drifted_keys == [inventory[0].sku]
        assert ebay_again.total("gone") == 0

    result = cli(
        "--data-dir", str(data_dir), "listings", "pull", "--platform", "base", env=sandbox.env()
    )
    assert result.exit_code == 0, result.output
    assert "0 drifted" in result.stdout


def _ebay_rows(con) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in con.execute(
            "select sku, api, listing_id, offer_id, asin, price_cents, quantity, status"
            " from listings_ebay"
        ).fetchall()
    }


def test_pull_finds_every_trading_listing_once_then_reports_an_ended_one_gone(
    start_sandbox, data_dir, cli
):
    sandbox = start_sandbox(time_scale=100.0, n_asins=600)
    ws = open_workspace(data_dir=data_dir, environ=sandbox.env())
    world = sandbox.state.apis["ebay"]
    everyone = list(world.listings.values())
    trading = [x for x in everyone if x.api == "trading"]
    pages = -(-len(everyone) // 200)  # GetMyeBaySelling, 200 per page
    assert pages >= 2 and len(trading) >= 5
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 10.0)
    quota_before = set_limits(sandbox.url, "ebay", {})["trading_calls_today"]
    with warehouse.opened(data_dir) as con:
        pulled = listings_pull.run(ws, con, "ebay")
        rows = _ebay_rows(con)
        listing_ids = [r[0] for r in con.execute("select listing_id from listings_ebay").fetchall()]

    account = pulled.accounts[0]
    assert account.trading == len(trading) and account.trading_complete
    assert account.inserted == len(everyone) and account.unmapped == 0
    # every Trading listing, with its ItemID and no offer; nothing twice
    assert {sku: row for sku, row in rows.items() if row[0] == "trading"} == {
        x.sku: ("trading", x.listing_id, None, x.asin, x.price_cents, x.quantity, "listed")
        for x in trading
    }
    assert {sku for sku, row in rows.items() if row[0] == "inventory"} == {
        x.sku for x in everyone if x.api == "inventory"
    }
    assert len(listing_ids) == len(set(listing_ids)) == len(everyone)
    ledger = loadkit.ledger(sandbox.url)
    assert len(loadkit.calls_of(ledger, "trading", "GetMyeBaySelling")) == pages
    assert set_limits(sandbox.url, "ebay", {})["trading_calls_today"] == quota_before + pages

    # a Trading listing ended on eBay, another repriced by hand
    ended, edited = trading[0], trading[1]
    with sandbox.state.lock:
        del world.listings[ended.sku]
        edited.price_cents += 123
    with warehouse.opened(data_dir) as con:
        again = listings_pull.run(ws, con, "ebay")
        rows = _ebay_rows(con)
    assert again.accounts[0].gone_keys == [ended.sku]
    assert again.accounts[0].drifted_keys == [edited.sku]
    assert rows[ended.sku][-1] == "gone"
    assert rows[edited.sku][4] == edited.price_cents
    assert sum(row[-1] == "gone" for row in rows.values()) == 1

    result = cli(
        "--data-dir", str(data_dir), "listings", "pull", "--platform", "ebay", env=sandbox.env()
    )
    assert result.exit_code == 0, result.output
    assert f"{len(trading) - 1} on the Trading API" in result.stdout
    assert "0 gone" in result.stdout


def test_pull_stops_whole_at_the_trading_daily_quota(start_sandbox, data_dir):
    sandbox = start_sandbox(time_scale=100.0, n_asins=200)
    ws = open_workspace(data_dir=data_dir, environ=sandbox.env())
    wait_for_window(sandbox.url, "ebay", "seconds_to_next_day", 10.0)
    used = set_limits(sandbox.url, "ebay", {})["trading_calls_today"]
    set_limits(sandbox.url, "ebay", {"trading_daily_call_limit": used})
    with warehouse.opened(data_dir) as con:
        with pytest.raises(EbayQuotaError, match="Trading API daily call limit"):
            listings_pull.run(ws, con, "ebay")
        assert con.execute("select count(*) from listings_ebay").fetchall() == [(0,)]
    ledger = loadkit.ledger(sandbox.url)
    assert loadkit.calls_of(ledger, "ebay", "getInventoryItems") == []  # stopped before them
