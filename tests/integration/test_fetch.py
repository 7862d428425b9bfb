"""Fetch against the loopback sandbox: one paced pass, exact call counts from its ledger."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import requests

from pipeline import extract, fetch, layout, runs, snapshots, warehouse
from pipeline.config import Workspace, open_workspace
from pipeline.schemas import Snapshot

OPERATION_IDS = {
    "item_offers": "getItemOffersBatch",
    "competitive_pricing": "getCompetitivePricing",
}


# --- helpers (also used by the other test_fetch_* modules) -----------------------------


def catalogue(server: Any) -> dict[str, Any]:
    return requests.get(f"{server.url}/_sandbox/catalogue", timeout=5).json()


def ledger(server: Any) -> dict[str, Any]:
    return requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()


def spapi_calls(stats: dict[str, Any], operation: str | None = None) -> list[dict[str, Any]]:
    return [
        c for c in stats["calls"]
        if c["api"] == "spapi" and (operation is None or c["operation"] == operation)
    ]  # fmt: skip


def set_faults(server: Any, spec: str | dict[str, Any]) -> None:
    body = spec if isinstance(spec, dict) else {"spec": spec}
    answer = requests.post(f"{server.url}/_sandbox/faults", json=body, timeout=5)
    assert answer.status_code == 200, answer.text


def seed_listings(
    con: duckdb.DuckDBPyConnection, asins: list[str], malformed: list[str] = ()
) -> int:
    """shop1 lists every ASIN, shop2 every second one, eBay every third (so they share);
    malformed codes go to eBay. Returns the number of listings."""
    base = [("shop1", i + 1, a) for i, a in enumerate(asins)]
    base += [("shop2", i + 1, a) for i, a in enumerate(asins[::2])]
    ebay = [("ebay-main", f"sku-{i}", a) for i, a in enumerate([*asins[::3], *malformed])]
    con.register(
        "seed_base",
        pl.DataFrame(base, schema=["account_id", "item_id", "asin"], orient="row").to_arrow(),
    )
    con.register(
        "seed_ebay",
        pl.DataFrame(ebay, schema=["account_id", "sku", "asin"], orient="row").to_arrow(),
    )
    con.execute(
        "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
        " status, source, updated_at)"
        " select account_id, item_id, asin, 1000, 1, true, 'listed', 'import', now() from seed_base"
    )
    con.execute(
        "insert into listings_ebay (account_id, sku, asin, price_cents, currency, quantity,"
        " api, status, source, updated_at) select account_id, sku, asin, 999, 'USD', 1,"
        " 'inventory', 'listed', 'import', now() from seed_ebay"
    )
    con.unregister("seed_base")
    con.unregister("seed_ebay")
    return len(base) + len(ebay)


def workspace(server: Any, data_dir: Path, **amazon: Any) -> Workspace:
    """A sandbox workspace aimed at ``server``; ``amazon`` keys go to [amazon]."""
    config = None
    if amazon:
        lines = ["[amazon]"]
        for key, value in amazon.items():
            if isinstance(value, bool):
                value = str(value).lower()  # TOML's booleans
            elif isinstance(value, str):
                value = repr(value)
            lines.append(f"{key} = {value}")
        config = data_dir.parent / "invsync.toml"
        config.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return open_workspace(config=config, data_dir=data_dir, environ=server.env())


def fetch_run(ws: Workspace, con: duckdb.DuckDBPyConnection, **kwargs: Any) -> fetch.FetchResult:
    run_id = runs.start_run(con, ws, "fetch")
    extracted = extract.run(ws, con, run_id=run_id)
    return fetch.run(ws, con, run_id, extracted.asins, **kwargs)


def run_row(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    cursor = con.execute("select * from runs where run_id = $r", {"r": run_id})
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchall()[0], strict=True))


def open_warehouse(data_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = warehouse.connect(data_dir)
    yield connection
    connection.close()


@pytest.fixture
def con(data_dir: Path):
    yield from open_warehouse(data_dir)


# --- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["item_offers", "competitive_pricing"])
def test_a_clean_run_makes_exactly_one_call_per_twenty_unique_asins(
    start_sandbox, con, data_dir: Path, cli, operation: str
) -> None:
    server = start_sandbox(time_scale=200.0)
    world = catalogue(server)
    asins = world["asins"][:147] + world["invalid_asins"][:3]
    listings = seed_listings(con, asins, malformed=["NOT-AN-ASIN"])
    # one operation's arithmetic: the pool (getItemOffers beside the batch) is off here;
    # tests/integration/test_fetch_pool.py covers the pooled pass
    ws = workspace(server, data_dir, operation=operation, pool=False)
    result = fetch_run(ws, con)

    stats = ledger(server)
    op = OPERATION_IDS[operation]
    calls = spapi_calls(stats)
    assert {c["operation"] for c in calls} == {op}  # no single-ASIN getItemOffers
    answered = [c for c in calls if c["status"] == 200]
    assert len(answered) == math.ceil(150 / 20) == 8
    sent = Counter(a for c in answered for a in c["items"])
    assert set(sent) == set(asins) and set(sent.values()) == {1}  # each ASIN once
    assert "NOT-AN-ASIN" not in {a for c in calls for a in c["items"]}
    assert len(calls) == 8 + result.counters.retries  # only 429s could add calls

    row = run_row(con, result.run_id)
    assert row["spapi_calls"] == len(calls)
    assert row["spapi_429s"] == sum(c["status"] == 429 for c in calls)
    assert (row["listings"], row["unique_asins"], row["invalid_asins"]) == (listings, 151, 4)
    assert row["operation"] == operation
    assert row["quota_floor_seconds"] > 0 and row["fetch_seconds"] > 0

    frame = snapshots.read_snapshot(data_dir, result.run_id)
    assert frame.height == 151
    statuses = dict(zip(frame["asin"], frame["status"], strict=True))
    assert statuses["NOT-AN-ASIN"] == "invalid_asin"
    assert {statuses[a] for a in world["invalid_asins"][:3]} == {"invalid_asin"}
    assert set(frame["status"]) <= {"ok", "no_offer", "filtered_out", "invalid_asin"}
    assert (
        result.snapshot
        == data_dir
        / "snapshots"
        / "amazon"
        / (f"dt={layout.run_date(result.run_id)}")
        / f"run_id={result.run_id}"
        / "part-0.parquet"
    )

    # Phase 2 and any other command add no SP-API call.
    con.close()  # the CLI opens the warehouse itself
    before = ledger(server)["per_operation"]
    env = {**server.env(), "INVSYNC_DATA_DIR": str(data_dir)}
    assert cli("extract", env=env).exit_code == 0
    cli("transform", env=env)
    after = ledger(server)["per_operation"]
    assert {k: v for k, v in after.items() if k.startswith("spapi")} == {
        k: v for k, v in before.items() if k.startswith("spapi")
    }


def test_snapshot_is_validated_on_read(start_sandbox, con, data_dir: Path) -> None:
    server = start_sandbox(time_scale=1000.0)
    seed_listings(con, catalogue(server)["asins"][:5])
    result = fetch_run(workspace(server, data_dir), con)
    frame = snapshots.read_snapshot(data_dir, result.run_id)
    broken = frame.with_columns(
        pl.when(pl.col("status") == "ok")
        .then(pl.lit("api_error"))
        .otherwise(pl.col("status"))
        .alias("status")
    )  # an api_error that carries a price
    broken.write_parquet(result.snapshot)
    from pipeline.errors import DataError

    with pytest.raises(DataError, match="failed validation"):
        snapshots.read_snapshot(data_dir, result.run_id)
    with pytest.raises(Exception):  # noqa: B017 - pandera's error type
        Snapshot.validate(broken, lazy=True)
