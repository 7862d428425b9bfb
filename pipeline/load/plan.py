"""The dry-run plan: the calls a load would make now, none made and nothing journaled.

Stage: load (``invsync load --dry-run``). Reads the run's approved diff rows (given), its
``push_journal`` rows (a resumed load reads back and resends what a crash left) and the eBay
Out-of-Stock Control preference a load of the run already read (``ebay_run_preferences``):
found off, the quantity-0 rows it would not send are left out of the calls; not read yet,
the plan shows the ``GetUserPreferences`` call that decides. Trading rows without an ItemID
are never planned, nor is a stock change alone to a BASE item with variations (the load
skips it without a call). Writes nothing itself; :func:`pipeline.load.run` writes :func:`plan_frame` to
``loads/run_id=…/dry_run.parquet`` (:func:`plan_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import journal, layout
from pipeline.config import LoadSettings, Workspace
from pipeline.load.base_push import variation_edit_changes_anything, variation_row
from pipeline.load.ebay_push import reads_back, unread_listings
from pipeline.load.outcome import AccountLoad
from pipeline.load.readback import needs_reading_back
from pipeline.sql import run_sql


def plan(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    wanted: pl.DataFrame,
) -> list[AccountLoad]:
    """The calls a real load would make now for ``wanted`` (Diff rows with their run_id and
    platform), without making or journaling any: one :class:`AccountLoad` per account,
    its ``planned`` the calls in order."""
    journaled = {
        (r["account_id"], r["listing_key"], r["change_id"]): r
        for r in journal.open_rows(con, run_id, platform)
    }
    done = {
        (a, k, c)
        for a, k, c in con.execute(
            "select account_id, listing_key, change_id from push_journal"
            " where run_id = $r and platform = $p",
            {"r": run_id, "p": platform},
        ).fetchall()
    } - set(journaled)
    knobs = ws.settings.load
    outcomes: dict[str, AccountLoad] = {}
    for row in wanted.iter_rows(named=True):
        key = (row["account_id"], row["listing_key"], row["change_id"])
        if key in done:
            continue  # ok, quarantined or drifted already: a load would not touch it
        row = journaled.get(key, {**row, "state": "pending", "http_status": None})
        outcome = outcomes.setdefault(row["account_id"], AccountLoad(platform, row["account_id"]))
        outcome.rows += 1
        outcome.planned.append(row)
    for outcome in outcomes.values():
        rows, outcome.planned = outcome.planned, []
        calls: list[dict[str, Any]] = [{"operation": "oauth/token", "keys": []}]
        if platform == "base":
            with_variations = _variation_items(con, outcome.account_id)
            for row in rows:
                if needs_reading_back(row):
                    calls.append({"operation": "items/detail", "keys": [row["listing_key"]]})
                elif int(row["listing_key"]) in with_variations and not (
                    variation_edit_changes_anything(variation_row(row))
                ):
                    continue  # a stock change alone to an item with variations: no call
                calls.append({"operation": "items/edit", "keys": [row["listing_key"]], "row": row})
        else:
            rows, preference = _ebay_sendable(ws, con, run_id, outcome.account_id, rows)
            if preference:
                calls.append({"operation": "GetUserPreferences", "keys": []})
            unread = unread_listings(con, run_id, outcome.account_id)
            for row in rows:
                if reads_back(row, unread):
                    read = "GetItem" if row["api"] == "trading" else "getOffers"
                    calls.append({"operation": read, "keys": [row["listing_key"]]})
                elif row["api"] == "inventory" and not row["offer_id"]:
                    calls.append({"operation": "getOffers", "keys": [row["listing_key"]]})
            for api, size, operation in ebay_batches(knobs):
                group = [r for r in rows if r["api"] == api]
                for i in range(0, len(group), size):
                    chunk = group[i : i + size]
                    calls.append(
                        {
                            "operation": operation,
                            "keys": [r["listing_key"] for r in chunk],
                            "rows": chunk,
                        }
                    )
        outcome.planned = calls
        outcome.calls = len(calls)
    return list(outcomes.values())


def ebay_batches(knobs: LoadSettings) -> tuple[tuple[str, int, str], ...]:
    """eBay's two ways of sending rows: (api, rows per call, operation)."""
    return (
        ("inventory", knobs.ebay_batch_size, "bulk_update_price_quantity"),
        ("trading", knobs.trading_batch_size, "ReviseInventoryStatus"),
    )


def push_calls(platform: str, api: str | None, rows: int, knobs: LoadSettings) -> int:
    """The push calls ``rows`` sent rows of one account and api cost, as :func:`plan` counts
    them (without read-backs and tokens): one ``items/edit`` per BASE row; eBay rows in
    batches of the api's size (rounded up)."""
    if platform == "base" or rows == 0:
        return rows
    size = next(size for name, size, _ in ebay_batches(knobs) if name == api)
    return (rows + size - 1) // size


def _variation_items(con: duckdb.DuckDBPyConnection, account_id: str) -> set[int]:
    """The shop's items with variations (``listings_base.has_variations``)."""
    found = run_sql(con, "listings/base_variation_items", {"account_id": account_id})
    return {int(r[0]) for r in found.fetchall()}


def _ebay_sendable(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    account_id: str,
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], bool]:
    """The eBay rows a load would send (as :mod:`pipeline.load.ebay_push` decides before any
    revision), and whether it would first ask for the Out-of-Stock Control preference."""
    rows = [r for r in rows if r["api"] != "trading" or r["listing_id"]]
    zero = [r for r in rows if int(r["new_quantity"]) == 0]
    action = ws.settings.pricing.rule_for(ws.settings.account(account_id)).out_of_stock_action
    if not zero or action == "end_listing":
        return rows, False
    known = run_sql(
        con, "load/ebay_preference_read", {"run_id": run_id, "account_id": account_id}
    ).fetchall()
    if known and bool(known[0][0]):
        return rows, False
    if known:  # off when last read: a load asks again, and sends these only if it is on now
        return [r for r in rows if int(r["new_quantity"]) != 0], True
    return rows, True


def plan_frame(accounts: list[AccountLoad]) -> pl.DataFrame:
    """The planned calls as rows of ``dry_run.parquet``: one per call, in order (the run id
    is in the file's path, ``loads/run_id=…/``, only)."""
    records = []
    for outcome in accounts:
        for n, call in enumerate(outcome.planned, start=1):
            records.append(
                {
                    "platform": outcome.platform,
                    "account_id": outcome.account_id,
                    "call_no": n,
                    "operation": call["operation"],
                    "listing_keys": ",".join(call["keys"]),
                    "items": len(call["keys"]),
                }
            )
    schema = {
        "platform": pl.String,
        "account_id": pl.String,
        "call_no": pl.Int64,
        "operation": pl.String,
        "listing_keys": pl.String,
        "items": pl.Int64,
    }
    return pl.DataFrame(records, schema=schema)


def plan_path(data_dir: Path, run_id: str) -> Path:
    """Where a dry run of ``run_id`` writes its plan."""
    return layout.dry_run_plan_path(data_dir, run_id)
