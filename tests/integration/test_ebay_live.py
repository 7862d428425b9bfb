"""Load and import against an eBay that behaves as live eBay does (issue 13): no listing is
ended unasked when out-of-stock control is off, Trading rows go by ItemID and are judged by
InventoryStatus, an expired IAF token is refreshed once, the published fixed-price offer is
the one revised, and a malformed SKU fails its own row only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import requests

from pipeline import journal, listings_pull, load, schemas, warehouse
from pipeline.clients import factory
from pipeline.load.plan import plan
from tests.integration import loadkit

REVIEW_COLUMNS = ("change_id", "title", "current_profit_minor", "protection", "protection_reason")


@pytest.fixture
def pulled(data_dir: Path) -> Iterator[Callable[..., tuple[Any, Any, str]]]:
    """``pulled(sandbox, toml="")`` → (workspace, connection, run_id) with eBay pulled and the
    sandbox ledger reset, so a test sees only the load's calls."""
    opened: list[Any] = []

    def make(sandbox: Any, toml: str = "") -> tuple[Any, Any, str]:
        con = warehouse.connect(data_dir)
        opened.append(con)
        ws, run_id = loadkit.pulled_run(sandbox, data_dir, con, ("ebay",), toml)
        return ws, con, run_id

    yield make
    for con in opened:
        con.close()


def _small(start_sandbox: Callable[..., Any], faults: str | None = None) -> Any:
    return start_sandbox(time_scale=100.0, n_asins=300, faults=faults)


def _out_of_stock(diff: pl.DataFrame) -> pl.DataFrame:
    """The diff's in-stock rows turned into out-of-stock rows (quantity 0)."""
    frame = diff.filter(pl.col("old_quantity") > 0).drop(*REVIEW_COLUMNS)
    frame = frame.with_columns(
        pl.lit(0, pl.Int64).alias("new_quantity"), pl.lit("out_of_stock").alias("change_kind")
    )
    return schemas.Diff.validate(loadkit.with_review_columns(frame), lazy=True)


def _world(sandbox: Any) -> dict[str, dict[str, Any]]:
    rows = requests.get(f"{sandbox.url}/_sandbox/ebay/listings", timeout=10).json()["listings"]
    return {row["sku"]: row for row in rows}


def _journal(con: Any, run_id: str) -> dict[str, dict[str, Any]]:
    cursor = con.execute("select * from push_journal where run_id = $r", {"r": run_id})
    names = [d[0] for d in cursor.description]
    return {
        row[names.index("listing_key")]: dict(zip(names, row, strict=True))
        for row in cursor.fetchall()
    }


def _calls(sandbox: Any, api: str, operation: str) -> list[dict[str, Any]]:
    return loadkit.calls_of(loadkit.ledger(sandbox.url), api, operation)


def _ended(sandbox: Any) -> list[str]:
    stats = loadkit.ledger(sandbox.url)
    return [c["key"] for c in stats["changes"] if c["changes"].get("ended")]


# --- 1. out-of-stock control ---------------------------------------------------------------


def test_quantity_zero_waits_while_out_of_stock_control_is_off(start_sandbox, pulled):
    sandbox = _small(start_sandbox, "ebay_oos_control_off")
    ws, con, run_id = pulled(sandbox)
    before = _world(sandbox)
    priced = loadkit.ebay_diff(con, run_id, 6, api="inventory")
    zero = pl.concat(
        [
            _out_of_stock(loadkit.ebay_diff(con, run_id, 20, api="inventory")).tail(3),
            _out_of_stock(loadkit.ebay_diff(con, run_id, 12, api="trading")).head(2),
        ]
    )
    zero = zero.filter(~pl.col("listing_key").is_in(priced["listing_key"].to_list()))
    assert zero.height == 5
    rows = pl.concat([priced, zero])

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", rows)

    assert (outcome.ok, outcome.skipped) == (6, 5)
    assert len(_calls(sandbox, "trading", "GetUserPreferences")) == 1
    assert _ended(sandbox) == []
    world = _world(sandbox)
    for sku in zero["listing_key"]:
        assert (
            world[sku]["status"] == "ACTIVE" and world[sku]["quantity"] == before[sku]["quantity"]
        )
    held = _journal(con, run_id)
    for sku in zero["listing_key"]:
        row = held[sku]
        assert (row["state"], row["error_code"]) == ("skipped", "oos_control_off")
        assert "Out-of-Stock Control preference is off" in row["error_message"]
        assert "Selling preferences" in row["error_message"]
        assert "end_listing" in row["error_message"]
    kept = con.execute(
        "select account_id, out_of_stock_control from ebay_run_preferences where run_id = $r",
        {"r": run_id},
    ).fetchall()
    assert kept == [("ebay-main", False)]

    # the dry run does not promise what the load would not send
    planned = plan(ws, con, run_id, "ebay", zero)[0].planned
    assert [c["operation"] for c in planned] == ["oauth/token", "GetUserPreferences"]

    # once the seller turns it on, the next load of the run sends them; the listings live on
    loadkit.set_faults(sandbox.url, "")
    (again,) = load.push_rows(ws, con, run_id, "ebay", rows)
    assert (again.ok, again.skipped) == (5, 0)
    assert len(_calls(sandbox, "trading", "GetUserPreferences")) == 2
    world = _world(sandbox)
    assert all(world[sku]["quantity"] == 0 for sku in zero["listing_key"])
    assert all(world[sku]["status"] == "ACTIVE" for sku in zero["listing_key"])
    assert _ended(sandbox) == []
    # found on, the run never asks again
    assert plan(ws, con, run_id, "ebay", zero) == []  # every row is ok: nothing planned
    more = _out_of_stock(loadkit.ebay_diff(con, run_id, 40, api="inventory")).tail(1)
    load.push_rows(ws, con, run_id, "ebay", more)
    assert len(_calls(sandbox, "trading", "GetUserPreferences")) == 2


def test_ending_a_listing_is_only_ever_an_explicit_choice(start_sandbox, pulled):
    sandbox = _small(start_sandbox, "ebay_oos_control_off")
    toml = '[pricing.ebay]\nout_of_stock_action = "end_listing"\n'
    ws, con, run_id = pulled(sandbox, toml)
    zero = _out_of_stock(loadkit.ebay_diff(con, run_id, 10, api="inventory")).head(2)

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", zero)

    assert outcome.ok == 2
    assert _calls(sandbox, "trading", "GetUserPreferences") == []
    assert sorted(_ended(sandbox)) == sorted(zero["listing_key"].to_list())
    # the next pull sees the ended listings as gone: no later run tries to restock them
    listings_pull.run(ws, con, "ebay")
    status = dict(
        con.execute(
            "select sku, status from listings_ebay where sku in (select unnest($skus))",
            {"skus": zero["listing_key"].to_list()},
        ).fetchall()
    )
    assert status == dict.fromkeys(zero["listing_key"].to_list(), "gone")


def test_the_demo_sync_ends_no_ebay_listing_with_out_of_stock_control_off(cli, start_sandbox):
    Path("invsync.toml").write_text("[sandbox]\nn_asins = 300\ntime_scale = 100\n")
    server = _small(start_sandbox, "ebay_oos_control_off")
    data = Path.cwd() / "data"

    result = cli("sync", env=dict(server.env()), timeout=300)

    assert result.exit_code in (0, 3), result.output  # 3: the gate held a few demo rows
    assert _ended(server) == []
    assert [r for r in _world(server).values() if r["status"] != "ACTIVE"] == []
    assert len(_calls(server, "trading", "GetUserPreferences")) == 1
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        held = con.execute(
            "select count(*), count(distinct error_message), min(error_message) from push_journal"
            " where platform = 'ebay' and new_quantity = 0 and state = 'skipped'"
            " and error_code = 'oos_control_off'"
        ).fetchall()[0]
        sent_zero = con.execute(
            "select count(*) from push_journal where platform = 'ebay' and new_quantity = 0"
            " and state not in ('skipped', 'void')"
        ).fetchall()[0][0]
        kept = con.execute("select out_of_stock_control from ebay_run_preferences").fetchall()
    finally:
        con.close()
    assert held[0] > 0 and held[1] == 1, held  # Amazon ran out of some eBay-listed items
    assert "Out-of-Stock Control preference is off" in held[2]
    assert sent_zero == 0
    assert kept == [(False,)]


# --- 2. Trading rows without an ItemID -----------------------------------------------------


def test_a_trading_row_without_item_id_is_never_sent_nor_read_back(start_sandbox, pulled):
    sandbox = _small(start_sandbox)
    ws, con, run_id = pulled(sandbox)
    listings = sandbox.state.apis["ebay"].listings
    diff = loadkit.ebay_diff(con, run_id, 12, api="trading")
    orphan = next(sku for sku in diff["listing_key"] if not listings[sku].sku_tracked)
    diff = diff.with_columns(
        pl.when(pl.col("listing_key") == orphan)
        .then(None)
        .otherwise(pl.col("listing_id"))
        .alias("listing_id")
    ).head(5)
    # as a crash would leave it: journaled and marked sent, answer never seen
    journal.record_pending(con, diff)
    journal.mark_sent(
        con, [r for r in journal.open_rows(con, run_id, "ebay") if r["listing_key"] == orphan], "x"
    )

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", diff)

    row = _journal(con, run_id)[orphan]
    assert (row["state"], row["error_code"]) == ("skipped", "no_item_id")
    assert "re-import the listing with its listing_id" in row["error_message"]
    assert outcome.ok == diff.height - 1
    assert (
        _calls(sandbox, "ebay", "getOffers") == [] and _calls(sandbox, "trading", "GetItem") == []
    )
    revised = [k for c in _calls(sandbox, "trading", "ReviseInventoryStatus") for k in c["items"]]
    assert orphan not in revised and listings[orphan].listing_id not in revised
    assert len(revised) == diff.height - 1


def test_listings_import_rejects_a_trading_row_without_its_listing_id(cli) -> None:
    header = "account_id,sku,offer_id,listing_id,asin,price,currency,quantity,api,status"
    rows = [
        "ebay-main,s-B0C1234567-1,9001,110001,B0C1234567,49.99,USD,2,inventory,listed",
        "ebay-main,s-B0C7654321-1,,,B0C7654321,5,USD,0,trading,listed",
    ]
    path = Path.cwd() / "trading.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    result = cli("listings", "import", str(path), "--platform", "ebay")

    assert result.exit_code == 2, result.output
    assert "row 2: listing_id is missing for a Trading listing" in result.stderr
    assert "nothing was written" in result.stderr


# --- 3. ReviseInventoryStatus judged by InventoryStatus --------------------------------------


@pytest.mark.parametrize("ack", ["Warning", "PartialFailure"])
def test_a_trading_item_is_ok_only_when_eBay_lists_it_revised(start_sandbox, pulled, ack):
    sandbox = _small(start_sandbox)
    ws, con, run_id = pulled(sandbox)
    listings = sandbox.state.apis["ebay"].listings
    diff = loadkit.ebay_diff(con, run_id, 4, api="trading")
    refused = diff["listing_key"][1]
    before = listings[refused].price_cents
    knobs = {"partial_failure_skus": [refused], "trading_unnamed_errors": True}
    if ack == "PartialFailure":
        knobs["trading_partial_failure_ack"] = True
    requests.post(f"{sandbox.url}/_sandbox/faults", json=knobs, timeout=10).raise_for_status()

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", diff)

    (call,) = _calls(sandbox, "trading", "ReviseInventoryStatus")
    assert call["outcome"] == "partial"
    states = {k: (r["state"], r["error_code"]) for k, r in _journal(con, run_id).items()}
    assert states.pop(refused) == ("failed", "10007")
    assert set(states.values()) == {("ok", None)}
    assert (outcome.ok, outcome.failed) == (3, 1)
    assert listings[refused].price_cents == before


# --- 4. an expired IAF token -------------------------------------------------------------


def test_an_expired_iaf_token_is_refreshed_once_and_the_call_repeated(start_sandbox, data_dir):
    sandbox = _small(start_sandbox)
    ws = loadkit.workspace(sandbox, data_dir)
    client = factory.ebay_client(ws, ws.settings.account("ebay-main"))
    trading = [x for x in sandbox.state.apis["ebay"].listings.values() if x.api == "trading"]
    client.refresh()
    requests.post(f"{sandbox.url}/_sandbox/advance", json={"seconds": 7300}, timeout=10)
    item = trading[0]
    target = [factory.ebay_api.PriceQuantity(item.sku, 4321, 2, listing_id=item.listing_id)]

    (result,) = client.revise_inventory_status(target)

    assert result.ok, result
    revise = _calls(sandbox, "trading", "ReviseInventoryStatus")
    assert [c["outcome"] for c in revise] == ["expired_token", "ok"]
    assert len(_calls(sandbox, "ebay", "oauth2/token")) == 2
    assert item.price_cents == 4321


# --- 5. several offers per SKU -------------------------------------------------------------


def test_the_published_fixed_price_offer_is_revised_never_simply_the_first(start_sandbox, pulled):
    sandbox = _small(start_sandbox)
    ws, con, run_id = pulled(sandbox)
    listings = sandbox.state.apis["ebay"].listings
    diff = loadkit.ebay_diff(con, run_id, 60, api="inventory", forget_offer_ids=True)
    diff = diff.filter(
        pl.col("listing_key").map_elements(
            lambda sku: listings[sku].draft_offer_id is not None, return_dtype=pl.Boolean
        )
    )
    assert diff.height >= 3

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", diff)

    assert outcome.ok == diff.height
    for sku, row in _journal(con, run_id).items():
        assert row["offer_id"] == listings[sku].offer_id != listings[sku].draft_offer_id
        assert listings[sku].price_cents == row["new_price_minor"]


def test_a_read_back_of_an_ended_listing_quarantines_the_row(start_sandbox, pulled):
    sandbox = _small(start_sandbox, "ebay_oos_control_off")
    ws, con, run_id = pulled(sandbox)
    listings = sandbox.state.apis["ebay"].listings
    diff = loadkit.ebay_diff(con, run_id, 3, api="inventory")
    gone = diff["listing_key"][0]
    # the listing ended on eBay (sold out by hand) after a crash left our row sent
    requests.post(
        f"{sandbox.url}/sell/inventory/v1/bulk_update_price_quantity",
        json={"requests": [{"sku": gone, "shipToLocationAvailability": {"quantity": 0}}]},
        headers={"Authorization": f"Bearer {_token(sandbox)}"},
        timeout=10,
    ).raise_for_status()
    assert listings[gone].status == "ENDED"
    journal.record_pending(con, diff)
    journal.mark_sent(
        con, [r for r in journal.open_rows(con, run_id, "ebay") if r["listing_key"] == gone], "x"
    )
    loadkit.set_faults(sandbox.url, "")

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", diff)

    row = _journal(con, run_id)[gone]
    assert (row["state"], row["error_code"]) == ("quarantined", "not_found")
    assert (outcome.ok, outcome.quarantined) == (2, 1)


def _token(sandbox: Any) -> str:
    from tests.sandbox.platform_clients import EbayClient

    client = EbayClient(sandbox.url)
    return str(client.refresh()["access_token"])


# --- 6. a malformed SKU --------------------------------------------------------------------


def test_a_malformed_sku_fails_its_row_only(start_sandbox, pulled):
    sandbox = _small(start_sandbox)
    ws, con, run_id = pulled(sandbox)
    diff = loadkit.ebay_diff(con, run_id, 5, api="inventory", forget_offer_ids=True)
    bad = "s-B0 bad sku!"
    diff = diff.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(bad))
        .otherwise(pl.col("listing_key"))
        .alias("listing_key")
    )

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", diff)

    row = _journal(con, run_id)[bad]
    assert (row["state"], row["http_status"], row["error_code"]) == ("failed", 400, "25707")
    assert "invalid value for a SKU" in row["error_message"]
    assert (outcome.ok, outcome.failed, outcome.stopped) == (4, 1, None)


def test_an_unreadable_preference_holds_only_the_quantity_zero_rows(start_sandbox, pulled):
    sandbox = _small(start_sandbox, "ebay_oos_control_off")
    ws, con, run_id = pulled(sandbox)
    requests.post(
        f"{sandbox.url}/_sandbox/ebay/limits", json={"trading_daily_call_limit": 0}, timeout=10
    ).raise_for_status()
    priced = loadkit.ebay_diff(con, run_id, 4, api="inventory")
    zero = _out_of_stock(loadkit.ebay_diff(con, run_id, 20, api="inventory")).tail(2)

    (outcome,) = load.push_rows(ws, con, run_id, "ebay", pl.concat([priced, zero]))

    assert (outcome.ok, outcome.pending, outcome.stopped) == (4, 2, None)
    rows = _journal(con, run_id)
    for sku in zero["listing_key"]:
        assert (rows[sku]["state"], rows[sku]["error_code"]) == ("pending", "518")
        assert "Out-of-Stock Control preference could not be read" in rows[sku]["error_message"]
    assert _ended(sandbox) == []
