"""Live BASE behaviour, end to end against the sandbox: items with variations (BASE sets
their stock to the variations' sum), server_error on the token refresh (transient, never a
consent problem) and users/me."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests

from pipeline import listings_pull, load, runs, schemas, warehouse
from pipeline.clients import factory
from pipeline.errors import ApiAuthError, TransientApiError
from pipeline.tokens import RefreshTokenStore, store_path
from tests.integration import loadkit


@pytest.fixture
def sandbox(start_sandbox: Callable[..., Any]) -> Any:
    return start_sandbox(time_scale=100.0, n_asins=300)


@pytest.fixture
def con(data_dir: Path):
    connection = warehouse.connect(data_dir)
    yield connection
    connection.close()


def _world_items(sandbox: Any, account: str) -> dict[int, Any]:
    return sandbox.state.apis["base"].ensure_shops()[account].items


def _variation_ids(sandbox: Any, account: str) -> list[int]:
    return sorted(i for i, item in _world_items(sandbox, account).items() if item.variations)


def _rows(con: Any, run_id: str, item_ids: list[int], **changes: Callable[[Any], Any]) -> Any:
    """Diff rows for ``item_ids`` (from loadkit.base_diff), with columns replaced."""
    diff = loadkit.base_diff(con, run_id, 10_000, account="shop2")
    diff = diff.filter(pl.col("listing_key").is_in([str(i) for i in item_ids]))
    diff = diff.with_columns(**{name: make(diff) for name, make in changes.items()})
    return schemas.Diff.validate(
        loadkit.with_review_columns(diff.drop("change_id", "title", "current_profit_minor",
                                              "protection", "protection_reason")),
        lazy=True,
    )  # fmt: skip


def _journal(con: Any, run_id: str) -> dict[str, tuple[str, str | None]]:
    rows = con.execute(
        "select listing_key, state, error_code from push_journal where run_id = $r", {"r": run_id}
    ).fetchall()
    return {key: (state, code) for key, state, code in rows}


# --- items with variations ---------------------------------------------------------------


def test_the_pull_records_which_items_have_variations(sandbox, con, data_dir):
    ws = loadkit.workspace(sandbox, data_dir)

    listings_pull.run(ws, con, "base")

    flagged = con.execute(
        "select account_id, item_id from listings_base where has_variations order by 1, 2"
    ).fetchall()
    expected = [(a, i) for a in ("shop1", "shop2") for i in _variation_ids(sandbox, a)]
    assert flagged == expected and len(expected) >= 3
    stocks = dict(con.execute("select item_id, stock from listings_base").fetchall())
    for account in ("shop1", "shop2"):
        for item_id in _variation_ids(sandbox, account):
            item = _world_items(sandbox, account)[item_id]
            assert stocks[item_id] == sum(v["variation_stock"] for v in item.variations)


def test_items_with_variations_take_price_and_visibility_never_a_failing_stock(
    sandbox, con, data_dir
):
    ws = loadkit.workspace(sandbox, data_dir)
    listings_pull.run(ws, con, "base")
    world = _world_items(sandbox, "shop2")
    stocked = [i for i in _variation_ids(sandbox, "shop2") if world[i].stock > 0]
    assert len(stocked) >= 3
    raised, out, stock_only = stocked[0], stocked[1], stocked[2]
    run_id = runs.start_run(con, ws, "load")
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10).raise_for_status()
    rows = pl.concat(
        [
            # a price rise and a stock change together: the price goes, the stock is BASE's
            _rows(con, run_id, [raised], new_quantity=lambda d: d["old_quantity"] + 4),
            # Amazon cannot supply: quantity 0 → hidden, so nobody buys what we cannot source
            _rows(
                con, run_id, [out],
                new_price_minor=lambda d: d["old_price_minor"],
                new_quantity=lambda d: pl.Series([0] * d.height, dtype=pl.Int64),
                change_kind=lambda d: pl.Series(["out_of_stock"] * d.height),
            ),
            # a stock change alone: nothing BASE would take, so no call
            _rows(
                con, run_id, [stock_only],
                new_price_minor=lambda d: d["old_price_minor"],
                new_quantity=lambda d: d["old_quantity"] + 1,
                change_kind=lambda d: pl.Series(["restock"] * d.height),
            ),
        ]
    )  # fmt: skip
    sums = {i: world[i].stock for i in (raised, out, stock_only)}

    # the dry run plans what the load will do: no edit for the stock change alone
    (planned,) = load.push_rows(ws, con, run_id, "base", rows, dry_run=True)
    planned_edits = [c["keys"][0] for c in planned.planned if c["operation"] == "items/edit"]
    assert sorted(planned_edits) == sorted([str(raised), str(out)])

    outcome = load.push_rows(ws, con, run_id, "base", rows)[0]

    journal = _journal(con, run_id)
    assert journal[str(raised)] == ("ok", None)
    assert journal[str(out)] == ("ok", None)
    assert journal[str(stock_only)] == ("skipped", "base_variations")
    assert (outcome.ok, outcome.failed, outcome.skipped) == (2, 0, 1)
    stats = loadkit.ledger(sandbox.url)
    edits = loadkit.calls_of(stats, "base", "items/edit")
    assert sorted(c["items"][0] for c in edits) == sorted([str(raised), str(out)])
    changes = {c["key"]: c["changes"] for c in stats["changes"]}
    assert "stock" not in changes[str(raised)] and "stock" not in changes[str(out)]
    assert world[raised].price == int(rows.filter(pl.col("listing_key") == str(raised))[
        "new_price_minor"][0])  # fmt: skip
    assert (world[out].visible, world[raised].visible) == (0, 1)
    assert {i: world[i].stock for i in sums} == sums  # BASE's sums, untouched
    local = {
        item_id: (stock, visible)
        for item_id, stock, visible in con.execute(
            "select item_id, stock, visible from listings_base where account_id = 'shop2'"
        ).fetchall()
    }
    assert local[raised] == (sums[raised], True) and local[out] == (sums[out], False)

    # the next pull finds no drift in them, and loading again sends nothing
    again = listings_pull.run(ws, con, "base", account="shop2")
    assert again.accounts[0].drifted == 0
    before = loadkit.ledger(sandbox.url)["per_operation"].get("base.items/edit", {})
    load.push_rows(ws, con, run_id, "base", rows)
    after = loadkit.ledger(sandbox.url)["per_operation"].get("base.items/edit", {})
    assert after == before


def test_an_item_found_to_have_variations_in_the_answer_is_hidden_not_failed(
    sandbox, con, data_dir
):
    ws = loadkit.workspace(sandbox, data_dir)
    listings_pull.run(ws, con, "base")
    item_id = next(i for i in _variation_ids(sandbox, "shop2") if _world_items(
        sandbox, "shop2")[i].stock > 0)  # fmt: skip
    # as if imported from a file: invsync does not know it has variations
    con.execute("update listings_base set has_variations = false")
    run_id = runs.start_run(con, ws, "load")
    rows = _rows(
        con, run_id, [item_id],
        new_quantity=lambda d: pl.Series([0] * d.height, dtype=pl.Int64),
        change_kind=lambda d: pl.Series(["out_of_stock"] * d.height),
    )  # fmt: skip

    outcome = load.push_rows(ws, con, run_id, "base", rows)[0]

    assert (outcome.ok, outcome.failed) == (1, 0)
    item = _world_items(sandbox, "shop2")[item_id]
    assert item.visible == 0 and item.stock == sum(v["variation_stock"] for v in item.variations)


# --- server_error on the token refresh ---------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"base_token_server_error": 1.0},  # BASE's documented envelope: HTTP 400 server_error
        {"error_rate.oauth/token": 1.0},  # HTTP 500 server_error
        {"outage": "0-100000"},  # HTTP 503
    ],
)
def test_server_error_on_the_token_refresh_is_transient_never_consent(sandbox, data_dir, fault):
    ws = loadkit.workspace(sandbox, data_dir)
    client = factory.base_client(ws, ws.settings.account("shop1"))
    loadkit.set_faults(sandbox.url, "")
    requests.post(f"{sandbox.url}/_sandbox/faults", json=fault, timeout=5).raise_for_status()

    with pytest.raises(TransientApiError) as raised:
        client.refresh()

    assert not isinstance(raised.value, ApiAuthError)
    assert "BASE is unavailable" in raised.value.message
    assert "consent" not in raised.value.message
    tokens = loadkit.calls_of(loadkit.ledger(sandbox.url), "base", "oauth/token")
    assert len(tokens) == client.policy.max_attempts  # retried by the policy first
    loadkit.set_faults(sandbox.url, "")
    client.refresh()  # the refresh token was not used up


def test_a_passing_server_error_is_retried_and_the_refresh_succeeds(sandbox, data_dir):
    ws = loadkit.workspace(sandbox, data_dir)
    client = factory.base_client(ws, ws.settings.account("shop1"))
    loadkit.set_faults(sandbox.url, "base_token_server_error_calls=0-2")

    client.refresh()

    tokens = loadkit.calls_of(loadkit.ledger(sandbox.url), "base", "oauth/token")
    assert [c["status"] for c in tokens] == [400, 400, 200]
    assert client.me()["shop_id"]


def test_the_load_leaves_rows_pending_and_the_pull_exits_4_when_base_is_unavailable(
    sandbox, con, data_dir, cli
):
    ws = loadkit.workspace(sandbox, data_dir)
    listings_pull.run(ws, con, "base", account="shop1")
    run_id = runs.start_run(con, ws, "load")
    rows = loadkit.base_diff(con, run_id, 3, account="shop1")
    # as a new process would: no stored access token, so the load must refresh first
    store = RefreshTokenStore(store_path(data_dir))
    seed = sandbox.env()["BASE_SHOP1_REFRESH_TOKEN"]
    store.save("base:shop1", store.current("base:shop1", seed), seed)
    loadkit.set_faults(sandbox.url, "base_token_server_error=1")

    outcome = load.push_rows(ws, con, run_id, "base", rows)[0]

    assert outcome.stop_kind == "transient" and outcome.pending == 3
    assert "BASE is unavailable" in (outcome.stopped or "")
    assert set(_journal(con, run_id).values()) == {("pending", "no_answer")}
    assert loadkit.calls_of(loadkit.ledger(sandbox.url), "base", "items/edit") == []
    con.close()
    store.save("base:shop1", store.current("base:shop1", seed), seed)
    pulled = cli("--data-dir", str(data_dir), "listings", "pull", "--platform", "base",
                 env=sandbox.env())  # fmt: skip
    assert pulled.exit_code == 4, pulled.output
    assert "BASE is unavailable" in pulled.output and "consent" not in pulled.output


def test_me_reads_each_shop_once(sandbox, data_dir):
    ws = loadkit.workspace(sandbox, data_dir)

    users = {a: factory.base_client(ws, ws.settings.account(a)).me() for a in ("shop1", "shop2")}

    assert users["shop1"]["shop_id"] != users["shop2"]["shop_id"]
    counts = sandbox.call_counts("base.")
    assert counts["base.users/me"] == 2 and counts["base.oauth/token"] == 2


# --- the transform's view of a hidden item with variations --------------------------------


def _transform_row(tmp: Path, *, visible: bool, has_variations: bool, in_stock: bool):
    """The BASE diff row (or None) of one shop1 listing (stock 3, ¥5,000) under the default
    rules, with Amazon in stock at ¥1,000 or out of stock."""
    from datetime import UTC, datetime

    import duckdb

    from pipeline.config import parse_settings
    from pipeline.transform import compute_diffs
    from pipeline.warehouse import apply_migrations
    from tests.sql.frames import insert_base, insert_run, observation, write_snapshot

    as_of, run_id, asin = datetime(2025, 6, 1, tzinfo=UTC), "20250601T000000Z-601d3e", "B000VARIED"
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        apply_migrations(con)
        insert_run(con, run_id, None)
        insert_base(con, [{"account_id": "shop1", "item_id": 1, "asin": asin,
                           "price_jpy": 5000, "stock": 3, "visible": visible}])  # fmt: skip
        con.execute("update listings_base set has_variations = $v", {"v": has_variations})
        status = "ok" if in_stock else "no_offer"
        row = observation(asin, status, price_jpy=1000 if in_stock else None, fetched_at=as_of)
        snapshot = write_snapshot(tmp, run_id, [row], now=as_of)
        computed = compute_diffs(
            con, run_id=run_id, snapshot=snapshot, settings=parse_settings({}, "test"),
            as_of=as_of, fx=None, platforms=("base",),
        )  # fmt: skip
    finally:
        con.close()
    frame = computed.frames["base"]
    return frame.to_dicts()[0] if frame.height else None


def test_a_hidden_item_with_variations_is_out_of_stock_to_the_transform(tmp_path):
    # hidden (by an earlier out-of-stock push) and Amazon still cannot supply: no change again
    assert _transform_row(tmp_path, visible=False, has_variations=True, in_stock=False) is None
    # Amazon can supply again: a restock, which the push turns into showing it
    restock = _transform_row(tmp_path, visible=False, has_variations=True, in_stock=True)
    assert restock is not None and restock["change_kind"] == "restock"
    assert restock["old_quantity"] == 0
    # an item without variations is read as before: hidden with stock 3 goes out of stock
    plain = _transform_row(tmp_path, visible=False, has_variations=False, in_stock=False)
    assert plain is not None and plain["change_kind"] == "out_of_stock"


def test_a_restock_of_a_hidden_item_with_variations_shows_it(sandbox, con, data_dir):
    ws = loadkit.workspace(sandbox, data_dir)
    listings_pull.run(ws, con, "base")
    world = _world_items(sandbox, "shop2")
    item_id = next(i for i in _variation_ids(sandbox, "shop2") if world[i].stock > 0)
    with sandbox.state.lock:
        world[item_id].visible = 0  # hidden by an earlier push: the transform reads stock 0
    run_id = runs.start_run(con, ws, "load")
    false = lambda d: pl.Series([False] * d.height)  # noqa: E731
    rows = _rows(
        con, run_id, [item_id],
        new_price_minor=lambda d: d["old_price_minor"],
        old_quantity=lambda d: pl.Series([0] * d.height, dtype=pl.Int64),
        new_quantity=lambda d: pl.Series([2] * d.height, dtype=pl.Int64),
        old_visible=false, new_visible=false,  # out_of_stock_action "zero"
        change_kind=lambda d: pl.Series(["restock"] * d.height),
    )  # fmt: skip

    outcome = load.push_rows(ws, con, run_id, "base", rows)[0]

    assert (outcome.ok, outcome.failed, outcome.skipped) == (1, 0, 0)
    assert world[item_id].visible == 1
    local = con.execute(
        "select stock, visible from listings_base where item_id = $i", {"i": item_id}
    ).fetchall()
    assert local == [(world[item_id].stock, True)]
