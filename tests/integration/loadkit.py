"""Test support for load and pull: diff frames built from the listing tables, validated by
the one Diff model (with the run_id and platform a diff file's path gives), and sandbox
ledger readers. Not a test module."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import requests

from pipeline import schemas
from pipeline.config import Workspace, open_workspace
from pipeline.transform import diff_path
from pipeline.warehouse import write_parquet_atomic


def workspace(sandbox: Any, data_dir: Path, toml: str = "") -> Workspace:
    """A workspace on ``sandbox`` (its endpoints and demo credentials), with ``toml`` as
    ``invsync.toml`` beside the data folder when given."""
    config = None
    if toml:
        config = data_dir.parent / "invsync.toml"
        config.write_text(toml, encoding="utf-8")
    return open_workspace(config=config, data_dir=data_dir, environ=sandbox.env())


def pulled_run(
    sandbox: Any,
    data_dir: Path,
    con: duckdb.DuckDBPyConnection,
    platforms: tuple[str, ...],
    toml: str = "",
) -> tuple[Workspace, str]:
    """``platforms`` pulled from ``sandbox``, a load run started with ``toml`` as the
    configuration, and the sandbox ledger reset, so a test sees only the load's calls."""
    from pipeline import listings_pull, runs

    pulling = workspace(sandbox, data_dir)
    for platform in platforms:
        listings_pull.run(pulling, con, platform)
    ws = workspace(sandbox, data_dir, toml)  # the test's knobs for the load itself
    run_id = runs.start_run(con, ws, "load")
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10).raise_for_status()
    return ws, run_id


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    cursor = con.execute(sql, params or {})
    names = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=names, orient="row")


def base_diff(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    limit: int,
    *,
    account: str | None = None,
    offset: int = 0,
    price_step: int = 10,
) -> pl.DataFrame:
    """A Diff frame raising the price of ``limit`` BASE listings by ``price_step`` yen;
    an out-of-stock one is restocked to 2 and shown."""
    where = "where status = 'listed'" + (" and account_id = $account" if account else "")
    params = {"account": account} if account else {}
    rows = _fetch(
        con,
        f"select * from listings_base {where} order by account_id, item_id limit {int(limit)} "
        f"offset {int(offset)}",
        params,
    )
    frame = pl.DataFrame(
        {
            "run_id": run_id,
            "platform": "base",
            "account_id": rows["account_id"],
            "listing_key": rows["item_id"].cast(pl.String),
            "asin": rows["asin"],
            "change_kind": ["restock" if stock == 0 else "price_up" for stock in rows["stock"]],
            "source_run_id": run_id,
            "source_fetched_at": datetime.now(UTC),
            "source_status": "ok",
            "source_fallback_age_seconds": None,
            "cost_jpy": 100,
            "held": False,
            "hold_reason": None,
            "currency": "JPY",
            "old_price_minor": rows["price_jpy"],
            "new_price_minor": rows["price_jpy"] + price_step,
            "old_quantity": rows["stock"].cast(pl.Int64),
            "new_quantity": [2 if stock == 0 else stock for stock in rows["stock"]],
            "old_visible": rows["visible"],
            "new_visible": [
                True if stock == 0 else visible
                for stock, visible in zip(rows["stock"], rows["visible"], strict=True)
            ],
            "api": "items/edit",
            "offer_id": None,
            "listing_id": None,
            "expected_profit_minor": 50,
        },
        schema_overrides={
            "source_fetched_at": pl.Datetime("us", "UTC"),
            "source_fallback_age_seconds": pl.Float64,
            "cost_jpy": pl.Int64,
            "hold_reason": pl.String,
            "new_quantity": pl.Int64,
            "offer_id": pl.String,
            "listing_id": pl.String,
            "expected_profit_minor": pl.Int64,
        },
    )
    return schemas.Diff.validate(with_review_columns(frame), lazy=True)


def with_review_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns transform adds for review: a change id per row (a hash of its listing and
    values, as transform's), no title, no current profit, no protection."""
    values = frame.select(
        "platform", "account_id", "listing_key", "old_price_minor", "new_price_minor",
        "old_quantity", "new_quantity",
    ).rows()  # fmt: skip
    return frame.with_columns(
        pl.Series(
            "change_id",
            [hashlib.md5("|".join(map(str, v)).encode()).hexdigest() for v in values],
            pl.String,
        ),
        pl.lit(None, pl.String).alias("title"),
        pl.lit(None, pl.Int64).alias("current_profit_minor"),
        pl.lit(None, pl.String).alias("protection"),
        pl.lit(None, pl.String).alias("protection_reason"),
    )


def ebay_diff(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    limit: int,
    *,
    api: str | None = None,
    price_step: int = 100,
    forget_offer_ids: bool = False,
) -> pl.DataFrame:
    """A Diff frame raising ``limit`` eBay listings by ``price_step`` cents; quantity 0
    is restocked to 3."""
    where = "where status = 'listed'" + (" and api = $api" if api else "")
    params = {"api": api} if api else {}
    rows = _fetch(
        con, f"select * from listings_ebay {where} order by sku limit {int(limit)}", params
    )
    frame = pl.DataFrame(
        {
            "run_id": run_id,
            "platform": "ebay",
            "account_id": rows["account_id"],
            "listing_key": rows["sku"],
            "asin": rows["asin"],
            "change_kind": ["restock" if q == 0 else "price_up" for q in rows["quantity"]],
            "source_run_id": run_id,
            "source_fetched_at": datetime.now(UTC),
            "source_status": "ok",
            "source_fallback_age_seconds": None,
            "cost_jpy": 100,
            "held": False,
            "hold_reason": None,
            "offer_id": None if forget_offer_ids else rows["offer_id"],
            "listing_id": rows["listing_id"],
            "api": rows["api"],
            "currency": rows["currency"],
            "old_price_minor": rows["price_cents"],
            "new_price_minor": rows["price_cents"] + price_step,
            "old_quantity": rows["quantity"].cast(pl.Int64),
            "new_quantity": [3 if q == 0 else q for q in rows["quantity"]],
            "old_visible": None,
            "new_visible": None,
            "expected_profit_minor": 50,
        },
        schema_overrides={
            "source_fetched_at": pl.Datetime("us", "UTC"),
            "source_fallback_age_seconds": pl.Float64,
            "cost_jpy": pl.Int64,
            "hold_reason": pl.String,
            "offer_id": pl.String,
            "new_quantity": pl.Int64,
            "old_visible": pl.Boolean,
            "new_visible": pl.Boolean,
            "expected_profit_minor": pl.Int64,
        },
    )
    return schemas.Diff.validate(with_review_columns(frame), lazy=True)


def ledger(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()


def calls_of(stats: dict[str, Any], api: str, operation: str) -> list[dict[str, Any]]:
    return [c for c in stats["calls"] if c["api"] == api and c["operation"] == operation]


def changes_per_key(stats: dict[str, Any], platform: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in stats["changes"]:
        if change["platform"] == platform:
            key = f"{change['account']}:{change['key']}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def set_faults(url: str, spec: str) -> None:
    response = requests.post(f"{url}/_sandbox/faults", data=spec, timeout=10)
    response.raise_for_status()


def write_transform_output(
    con: duckdb.DuckDBPyConnection, data_dir: Path, diff: pl.DataFrame, platform: str
) -> Path:
    """What transform leaves for review and load: the priced diff file (the Diff columns
    plus the rule bounds, without the run_id and platform its path holds) and the run's
    platform counts, with nothing to trip the breaker."""
    run_id = str(diff["run_id"][0])
    priced = diff.drop("run_id", "platform").with_columns(
        pl.col("new_price_minor").alias("target_price_minor"),
        pl.lit(None, pl.Int64).alias("min_price_minor"),
        pl.lit(None, pl.Int64).alias("max_price_minor"),
        pl.lit(0, pl.Int64).alias("min_profit_minor"),
        pl.lit("150" if platform == "ebay" else None, pl.String).alias("fx_jpy_per_usd"),
        pl.lit("markup").alias("pricing_method"),
    )
    path = diff_path(data_dir, run_id, platform)
    write_parquet_atomic(priced, path, schemas.PricedDiff)
    n = len(diff)
    con.execute(
        "insert or replace into transform_platform_stats values "
        "($r, $p, $n, $n, 0, 0, 0, $n, null, $n, 0, now())",
        {"r": run_id, "p": platform, "n": n},
    )
    return path
