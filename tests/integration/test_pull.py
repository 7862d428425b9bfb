"""`listings pull` against the sandbox: mapping by identifier / SKU pattern, drift, gone."""

from __future__ import annotations

from pipeline import listings_pull, warehouse
from pipeline.config import open_workspace
from tests.integration import loadkit


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
        assert ebay.total("seen") == len(inventory)
        skus = dict(con.execute("select sku, asin from listings_ebay").fetchall())
        assert all(skus[x.sku] == x.asin for x in inventory)

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
