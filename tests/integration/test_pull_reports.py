"""`listings pull` leaves nothing silently (issue 14): an item it cannot map is unmapped
with its id, never gone; a `sent` journal row whose change the platform shows is settled ok,
not drift; each account's pull logs its gone, unmapped and drifted counts with the command
that lists them, and `invsync listings show` lists them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pipeline import extract, journal, listings_pull, runs, warehouse
from pipeline.clients import factory
from tests.integration import loadkit


def _base_row(con: Any, item_id: int) -> tuple:
    return con.execute(
        "select status, price_jpy, source, drift_detected_at is not null from listings_base"
        " where item_id = $i",
        {"i": item_id},
    ).fetchone()


def _base_listings_of(con: Any, asin: str) -> int:
    """The BASE listings extract serves ``asin`` for."""
    frame = extract.listed_asins(con)
    row = frame.filter(frame["asin"] == asin)
    return int(row["base_listings"][0]) if row.height else 0


def test_an_item_whose_code_no_longer_names_an_asin_is_unmapped_not_gone(start_sandbox, data_dir):
    sandbox = start_sandbox(time_scale=100.0, n_asins=120)
    ws = loadkit.workspace(sandbox, data_dir)
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base", account="shop1")
        shop1 = sandbox.state.apis["base"].shops["shop1"]  # the world exists once asked
        item_id = sorted(shop1.items)[0]
        item = shop1.items[item_id]
        asin = item.identifier
        served = _base_listings_of(con, asin)
        with sandbox.state.lock:
            item.identifier = "仕入れ先変更"  # the seller rewrote the 商品コード by hand
        pulled = listings_pull.run(ws, con, "base", account="shop1").accounts[0]

        assert _base_row(con, item_id)[0] == "unmapped"  # before issue 14: gone
        assert (pulled.gone, pulled.unmapped, pulled.unmapped_keys) == (0, 1, [str(item_id)])
        unmapped = con.execute(
            "select platform, account_id, listing_key, reason, title from listings_unmapped"
        ).fetchall()
        assert unmapped == [("base", "shop1", str(item_id), "no_asin", item.title)]
        assert _base_listings_of(con, asin) == served - 1  # out of extract, so of the sync

        # the code names the ASIN again: back in the sync, nothing unmapped
        with sandbox.state.lock:
            item.identifier = asin
        again = listings_pull.run(ws, con, "base", account="shop1").accounts[0]
        assert (again.gone, again.unmapped) == (0, 0)
        assert _base_row(con, item_id)[0] == "listed"
        assert con.execute("select count(*) from listings_unmapped").fetchone() == (0,)


def test_an_ebay_sku_outside_the_pattern_is_listed_as_unmapped_with_its_id(start_sandbox, data_dir):
    sandbox = start_sandbox(time_scale=100.0, n_asins=120)
    ws = loadkit.workspace(sandbox, data_dir)
    world = sandbox.state.apis["ebay"]
    model = next(x for x in world.listings.values() if x.api == "inventory")
    with sandbox.state.lock:
        odd = dataclasses.replace(
            model, sku="HANDMADE-TOTE-1", offer_id="9990001", listing_id="990000000001"
        )
        world.listings[odd.sku] = odd
    with warehouse.opened(data_dir) as con:
        pulled = listings_pull.run(ws, con, "ebay").accounts[0]
        unmapped = con.execute(
            "select platform, listing_key, reason from listings_unmapped"
        ).fetchall()
    assert (pulled.unmapped, pulled.unmapped_keys, pulled.gone) == (1, ["HANDMADE-TOTE-1"], 0)
    assert unmapped == [("ebay", "HANDMADE-TOTE-1", "no_asin")]


def _sent_rows(con: Any, ws: Any, n: int) -> tuple[str, list[dict[str, Any]]]:
    """``n`` shop1 price changes journaled and marked `sent` the way a load does, as a
    crash between the call and its answer leaves them."""
    run_id = runs.start_run(con, ws, "load")
    diff = loadkit.base_diff(con, run_id, n, account="shop1", price_step=70)
    journal.record_pending(con, diff)
    rows = journal.open_rows(con, run_id, "base")
    journal.mark_sent(con, rows, "crashed")
    return run_id, rows


def _journal_state(con: Any, run_id: str, key: str) -> str:
    return con.execute(
        "select state from push_journal where run_id = $r and listing_key = $k",
        {"r": run_id, "k": key},
    ).fetchone()[0]


def test_a_sent_change_the_platform_shows_is_ours_not_drift(start_sandbox, data_dir):
    sandbox = start_sandbox(time_scale=100.0, n_asins=120)
    ws = loadkit.workspace(sandbox, data_dir)
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base", account="shop1")
        shop1 = sandbox.state.apis["base"].shops["shop1"]
        run_id, rows = _sent_rows(con, ws, 3)
        applied, unsent, by_hand = rows
        # the first reached BASE before the "crash"; the third was then changed by hand
        client = factory.base_client(ws, ws.settings.account("shop1"))
        client.edit_item(
            int(applied["listing_key"]),
            price=applied["new_price_minor"],
            stock=applied["new_quantity"],
        )
        with sandbox.state.lock:
            shop1.items[int(by_hand["listing_key"])].price += 1234

        pulled = listings_pull.run(ws, con, "base", account="shop1").accounts[0]

        assert pulled.drifted_keys == [by_hand["listing_key"]]
        assert pulled.settled == 1
        assert _base_row(con, int(applied["listing_key"])) == (
            "listed", applied["new_price_minor"], "push", False,
        )  # fmt: skip
        assert _journal_state(con, run_id, applied["listing_key"]) == "ok"
        # not on BASE: left `sent` for the load's read-back, the listing as it was
        assert _journal_state(con, run_id, unsent["listing_key"]) == "sent"
        assert _base_row(con, int(unsent["listing_key"]))[1:3] == (
            unsent["old_price_minor"], "pull",
        )  # fmt: skip
        assert _journal_state(con, run_id, by_hand["listing_key"]) == "sent"
        assert _base_row(con, int(by_hand["listing_key"]))[3] is True


def test_an_ebay_sent_change_the_platform_shows_is_settled_ok(start_sandbox, data_dir):
    from pipeline.clients.ebay import PriceQuantity

    sandbox = start_sandbox(time_scale=100.0, n_asins=120)
    ws = loadkit.workspace(sandbox, data_dir)
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "ebay")
        run_id = runs.start_run(con, ws, "load")
        journal.record_pending(con, loadkit.ebay_diff(con, run_id, 2, api="inventory"))
        rows = journal.open_rows(con, run_id, "ebay")
        journal.mark_sent(con, rows, "crashed")
        applied, unsent = rows
        client = factory.ebay_client(ws, ws.settings.account("ebay-main"))
        client.bulk_update(
            [
                PriceQuantity(
                    applied["listing_key"],
                    applied["new_price_minor"],
                    applied["new_quantity"],
                    "USD",
                    applied["offer_id"],
                )
            ]
        )
        pulled = listings_pull.run(ws, con, "ebay").accounts[0]
        assert pulled.drifted == 0  # before issue 14: drifted, held as changed by hand
        assert _journal_state(con, run_id, applied["listing_key"]) == "ok"
        assert pulled.settled == 1
        assert _journal_state(con, run_id, unsent["listing_key"]) == "sent"
        source = con.execute(
            "select source, price_cents from listings_ebay where sku = $s",
            {"s": applied["listing_key"]},
        ).fetchone()
        assert source == ("push", applied["new_price_minor"])


def _log_lines(data_dir: Path, logger: str) -> list[dict[str, Any]]:
    path = data_dir / "logs" / "invsync.jsonl"
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [e for e in entries if e["logger"] == logger]


def test_every_pull_names_what_left_and_the_command_lists_it(start_sandbox, data_dir, cli):
    sandbox = start_sandbox(time_scale=100.0, n_asins=120)
    env = sandbox.env()
    first = cli("--data-dir", str(data_dir), "listings", "pull", "--platform", "base", env=env)
    assert first.exit_code == 0, first.output
    assert "Listings pulled from 2 account(s): 0 gone, 0 unmapped, 0 drifted." in first.stdout
    quiet = _log_lines(data_dir, "invsync.listings")
    assert [e["level"] for e in quiet] == ["info", "info"]
    assert quiet[0]["message"].startswith("BASE shop1: 0 gone, 0 unmapped, 0 drifted")

    # a CSV-imported row BASE does not list, an item whose code lost its ASIN, a price by hand
    csv = data_dir.parent / "extra.csv"
    csv.write_text(
        "account_id,item_id,asin,price_jpy,stock,visible,status\n"
        "shop1,987654321,B000000001,1500,2,true,listed\n",
        encoding="utf-8",
    )
    imported = cli(
        "--data-dir", str(data_dir), "listings", "import", str(csv), "--platform", "base", env=env
    )
    assert imported.exit_code == 0, imported.output
    shop1 = sandbox.state.apis["base"].shops["shop1"]
    lost, edited = sorted(shop1.items)[:2]
    with sandbox.state.lock:
        shop1.items[lost].identifier = ""
        shop1.items[edited].price += 500

    second = cli(
        "--data-dir", str(data_dir), "listings", "pull", "--platform", "base",
        "--account", "shop1", env=env,
    )  # fmt: skip
    assert second.exit_code == 0, second.output
    sentence = (
        "Listings pulled from 1 account(s): 1 gone, 1 unmapped, 1 drifted "
        "(shop1: 1 gone, 1 unmapped, 1 drifted); list them with "
        "`invsync listings show --account shop1`."
    )
    assert sentence in second.stdout
    warned = _log_lines(data_dir, "invsync.listings")[-1]
    assert warned["level"] == "warning"
    assert warned["message"] == (
        "BASE shop1: 1 gone, 1 unmapped, 1 drifted; "
        "list them with `invsync listings show --account shop1`."
    )

    shown = cli("--data-dir", str(data_dir), "listings", "show", "--account", "shop1", env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "3 listing(s): 1 gone, 1 unmapped, 1 drifted."
    kinds = {line.split()[0]: line.split()[3] for line in lines[1:]}
    assert kinds == {"gone": "987654321", "unmapped": str(lost), "drifted": str(edited)}
    assert "no_asin" in next(line for line in lines if line.startswith("unmapped"))
    only_gone = cli("--data-dir", str(data_dir), "listings", "show", "--gone", env=env)
    assert only_gone.stdout.splitlines()[0] == "1 listing(s): 1 gone."
    wrong = cli("--data-dir", str(data_dir), "listings", "show", "--platform", "amazon", env=env)
    assert wrong.exit_code == 2 and "--platform must be base or ebay" in wrong.output


def _journal_ok(con: Any, item_id: int, new_visible: bool, minutes_ago: int) -> None:
    """An `ok` BASE journal row of shop1's ``item_id`` that left it ``new_visible``."""
    con.execute(
        "insert into push_journal (run_id, platform, account_id, listing_key, change_id,"
        " state, old_price_minor, new_price_minor, old_quantity, new_quantity, old_visible,"
        " new_visible, created_at, finished_at) values ($r, 'base', 'shop1', $k, $c, 'ok',"
        " 1000, 1000, 2, 2, not $v, $v, now(), now() - to_minutes($m))",
        {"r": f"run-{minutes_ago}", "k": str(item_id), "c": f"c{minutes_ago}", "v": new_visible,
         "m": minutes_ago},
    )  # fmt: skip


def test_migration_052_brings_back_the_items_a_confirmed_hide_left_unlisted():
    import duckdb

    from pipeline.warehouse import apply_migrations
    from tests.sql.frames import insert_base

    con = duckdb.connect()
    try:
        apply_migrations(con)
        hidden = {"account_id": "shop1", "asin": "B000000001", "price_jpy": 1000}
        insert_base(con, [{**hidden, "item_id": n, "visible": False, "status": "unlisted"}
                          for n in (1, 2, 3)])  # fmt: skip
        _journal_ok(con, 1, True, 60)  # shown, then hidden by invsync: back in the sync
        _journal_ok(con, 1, False, 5)
        _journal_ok(con, 2, False, 60)  # hidden by invsync, shown again, then hidden by hand
        _journal_ok(con, 2, True, 5)  # (item 3: never pushed, hidden by hand)
        # the warehouse as it was before 052
        con.execute("drop table listings_unmapped")
        con.execute("alter table listings_base drop column hidden_by_invsync")
        con.execute("delete from schema_migrations where version = 52")

        assert apply_migrations(con) == ["052_listings_unmapped"]
        rows = con.execute(
            "select item_id, status, hidden_by_invsync from listings_base order by item_id"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(1, "listed", True), (2, "unlisted", False), (3, "unlisted", False)]


def test_a_sent_hide_the_pull_settles_keeps_the_item_in_the_sync(start_sandbox, data_dir):
    import polars as pl

    sandbox = start_sandbox(time_scale=100.0, n_asins=120)
    ws = loadkit.workspace(sandbox, data_dir)
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base", account="shop1")
        run_id = runs.start_run(con, ws, "load")
        diff = loadkit.base_diff(con, run_id, 2, account="shop1", price_step=30)
        first = pl.col("listing_key") == diff["listing_key"][0]
        diff = diff.with_columns(  # the first row hides its item (out_of_stock_action hide)
            pl.when(first).then(pl.col("old_price_minor")).otherwise(pl.col("new_price_minor"))
            .alias("new_price_minor"),
            pl.when(first).then(False).otherwise(pl.col("new_visible")).alias("new_visible"),
        )  # fmt: skip
        journal.record_pending(con, diff)
        hide, price = journal.open_rows(con, run_id, "base")
        journal.mark_sent(con, [hide, price], "crashed")
        client = factory.base_client(ws, ws.settings.account("shop1"))
        for row in (hide, price):  # both reached BASE before the "crash"
            client.edit_item(
                int(row["listing_key"]),
                price=row["new_price_minor"],
                stock=row["new_quantity"],
                visible=row["new_visible"],
            )
        shop1 = sandbox.state.apis["base"].shops["shop1"]
        with sandbox.state.lock:  # and the seller hid the second one by hand
            shop1.items[int(price["listing_key"])].visible = 0

        pulled = listings_pull.run(ws, con, "base", account="shop1").accounts[0]
        states = {_journal_state(con, run_id, r["listing_key"]) for r in (hide, price)}
        keys = {"a": int(hide["listing_key"]), "b": int(price["listing_key"])}
        rows = con.execute(
            "select item_id, status, visible from listings_base"
            " where item_id in ($a, $b) order by item_id = $a desc",
            keys,
        ).fetchall()
        assert rows == [
            (keys["a"], "listed", False),  # hidden by us: stays in the sync (before: unlisted)
            (keys["b"], "unlisted", False),  # hidden by hand: leaves it
        ]
        hidden_by_us = con.execute(
            "select hidden_by_invsync from listings_base where item_id in ($a, $b)"
            " order by item_id = $a desc",
            keys,
        ).fetchall()
    assert hidden_by_us == [(True,), (False,)]
    assert (pulled.settled, pulled.drifted, pulled.hidden_by_hand, states) == (2, 0, 1, {"ok"})


def test_a_platform_price_beyond_the_bounds_is_unmapped_and_the_sync_runs(
    start_sandbox, data_dir, cli
):
    """The import refuses a price the pricing SQL cannot hold (9×10^18 yen); a platform can
    still hold one. The pull leaves such a listing out as `out_of_range` (unmapped, with its
    id), so the transform of every other listing runs."""
    sandbox = start_sandbox(time_scale=400.0, n_asins=60)
    ws = loadkit.workspace(sandbox, data_dir)
    with warehouse.opened(data_dir) as con:
        listings_pull.run(ws, con, "base", account="shop1")  # the world exists once asked
    shop1 = sandbox.state.apis["base"].shops["shop1"]
    item_id = sorted(shop1.items)[0]
    listing = next(x for x in sandbox.state.apis["ebay"].listings.values() if x.api == "inventory")
    with sandbox.state.lock:
        shop1.items[item_id].price = 9 * 10**18  # typed by hand into BASE's admin
        listing.price_cents = 9 * 10**18

    result = cli("--data-dir", str(data_dir), "sync", env=sandbox.env(), timeout=300)

    assert result.exit_code in (0, 3), result.output  # before: the transform overflowed
    with warehouse.opened(data_dir) as con:
        unmapped = con.execute(
            "select platform, listing_key, reason from listings_unmapped order by platform"
        ).fetchall()
    assert unmapped == [
        ("base", str(item_id), "out_of_range"),
        ("ebay", listing.sku, "out_of_range"),
    ]
