"""Builders for the transform and review tests: snapshot frames (validated with the Snapshot
model) written where fetch writes them, listing rows inserted into the real tables, and the
runs row they hang on. No pricing logic lives here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import snapshots
from pipeline.schemas import Snapshot
from pipeline.snapshots import SNAPSHOT_SCHEMA

DOUBTFUL = ("api_error", "unknown", "invalid_asin")


def asin(n: int) -> str:
    return f"B{n:09d}"


def observation(
    asin_: str,
    status: str = "ok",
    price_jpy: int | None = None,
    in_stock: bool | None = None,
    fetched_at: datetime | None = None,
    fallback_age_seconds: float | None = None,
    fallback_from_run: str | None = None,
) -> dict[str, Any]:
    """One snapshot row with the fields a status implies filled in sensibly."""
    if status in DOUBTFUL:
        price_jpy, in_stock = None, None
    elif in_stock is None:
        in_stock = status in ("ok", "fallback") and price_jpy is not None
    if status == "fallback":
        fallback_from_run = fallback_from_run or "20250101T000000Z-aaaaaa"
        fallback_age_seconds = 3600.0 if fallback_age_seconds is None else fallback_age_seconds
    return {
        "asin": asin_,
        "status": status,
        "price_jpy": price_jpy,
        "in_stock": in_stock,
        "fetched_at": fetched_at,
        "fallback_age_seconds": fallback_age_seconds,
        "fallback_from_run": fallback_from_run,
        "error_code": "QuotaExceeded" if status == "api_error" else None,
    }


def snapshot_frame(run_id: str, rows: list[dict[str, Any]], now: datetime) -> pl.DataFrame:
    full = []
    for row in rows:
        out = dict.fromkeys(SNAPSHOT_SCHEMA)
        out.update(row)
        out["run_id"] = run_id
        out["operation"] = out["operation"] or "item_offers"
        if out["fetched_at"] is None and out["status"] not in ("unknown",):
            out["fetched_at"] = now
        if out["price_jpy"] is not None:
            out["listing_price_jpy"] = out["price_jpy"]
            out["shipping_jpy"] = 0
            out["points_jpy"] = 0
        full.append(out)
    return Snapshot.validate(pl.DataFrame(full, schema=SNAPSHOT_SCHEMA))


def write_snapshot(
    data_dir: Path, run_id: str, rows: list[dict[str, Any]], now: datetime | None = None
) -> Path:
    now = now or datetime.now(UTC)
    return snapshots.write_snapshot(data_dir, run_id, snapshot_frame(run_id, rows, now))


def insert_run(con: duckdb.DuckDBPyConnection, run_id: str, unique_asins: int | None) -> None:
    con.execute(
        "insert into runs (run_id, command, mode, started_at, outcome, unique_asins)"
        " values ($r, 'fetch', 'sandbox', now(), 'ok', $n)",
        {"r": run_id, "n": unique_asins},
    )


def insert_base(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """rows: account_id, item_id, asin, price_jpy, stock, visible[, status, drift]."""
    for row in rows:
        con.execute(
            "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
            " status, source, updated_at, drift_detected_at)"
            " values ($account_id, $item_id, $asin, $price_jpy, $stock, $visible, $status,"
            " 'import', now(), $drift)",
            {
                "status": "listed",
                "visible": True,
                "stock": 1,
                "drift": None,
                **row,
            },
        )


def insert_ebay(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """rows: account_id, sku, asin, price_cents, quantity[, status, api, drift]."""
    for row in rows:
        con.execute(
            "insert into listings_ebay (account_id, sku, offer_id, listing_id, asin,"
            " price_cents, currency, quantity, api, status, source, updated_at,"
            " drift_detected_at)"
            " values ($account_id, $sku, $offer_id, $listing_id, $asin, $price_cents, 'USD',"
            " $quantity, $api, $status, 'import', now(), $drift)",
            {
                "status": "listed",
                "api": "inventory",
                "quantity": 1,
                "drift": None,
                "offer_id": None,
                "listing_id": None,
                **row,
            },
        )


def seed_run(
    data_dir: Path,
    run_id: str,
    *,
    base: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ebay: list[dict[str, Any]] = (),  # type: ignore[assignment]
    snapshot: list[dict[str, Any]],
    unique_asins: int | None = None,
    now: datetime | None = None,
) -> Path:
    """A warehouse with one fetched run: its runs row, listings and snapshot file."""
    from pipeline.warehouse import opened

    with opened(data_dir) as con:
        insert_run(con, run_id, unique_asins)
        insert_base(con, list(base))
        insert_ebay(con, list(ebay))
    return write_snapshot(data_dir, run_id, snapshot, now=now)
