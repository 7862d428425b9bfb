"""The push journal: one row per intended change, written before any call is made.

Stage: load. Reads the approved diff rows (:class:`~pipeline.schemas.Diff`, whose columns
the journal keeps under the same names: prices in minor units of ``currency``). Reads and
writes ``push_journal`` and, on a confirmed push, ``listings_base`` / ``listings_ebay`` (all
in the warehouse). The call budget lives in :mod:`pipeline.load.budget`.

States (design §3)::

    pending ──► sent ──► ok            confirmed by the platform; never sent again
       │                               (pending or failed) ──► void: a later transform or
       │                               load replaced the change; never sent
                  │ ├──► failed        refused (error code kept) or no answer; retried
                  │ ├──► quarantined   the listing is gone on the platform; never retried
                  │ ├──► skipped       not sent: revision_limit (retried tomorrow),
                  │ │                  oos_control_off / no_item_id (eBay; retried by the
                  │ │                  next load) or drifted (changed by hand; the next
                  │ │                  pull/review decides)
                  │ └──► pending       refused before processing (quota, auth): sent again
                  └── (crash) stays sent: the next load reads the listing on the platform
                      first and records ok without a call when the change is already there

Every state change is its own committed statement or transaction, so a ``kill -9`` at
any instant leaves a journal from which the next load resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from pipeline.sql import run_sql
from pipeline.warehouse import transaction

STATES = ("pending", "sent", "ok", "failed", "quarantined", "skipped", "void")

DIFF_COLUMNS = (  # the columns of a Diff row (plus its path's run_id, platform) it keeps
    "run_id", "platform", "account_id", "listing_key", "change_id", "action", "reason",
    "asin", "currency",
    "old_price_minor", "new_price_minor", "old_quantity", "new_quantity",
    "old_visible", "new_visible", "api", "offer_id", "listing_id",
)  # fmt: skip


def record_pending(con: duckdb.DuckDBPyConnection, diff: pl.DataFrame) -> None:
    """Journal every diff row as ``pending`` (rows already journaled for the run keep their
    state). ``diff``: :class:`~pipeline.schemas.Diff` rows with the ``run_id`` and
    ``platform`` of their path; the journal stores them under the same names."""
    if diff.is_empty():
        return
    if "action" not in diff.columns:  # diff rows as transform wrote them: plain changes
        diff = diff.with_columns(
            pl.lit("change").alias("action"), pl.lit(None, pl.String).alias("reason")
        )
    incoming = diff.select(DIFF_COLUMNS).to_arrow()
    with transaction(con):
        con.register("incoming", incoming)
        try:
            # A listing's earlier change in this run that was never sent is replaced by the
            # one given now (a new transform, a decision, a protective pause): void, never sent.
            con.execute(
                "update push_journal as j set state = 'void', finished_at = now()"
                " where j.state in ('pending', 'failed') and exists (select 1 from incoming as i"
                " where i.run_id = j.run_id and i.platform = j.platform"
                " and i.account_id = j.account_id and i.listing_key = j.listing_key"
                " and i.change_id <> j.change_id)"
            )
            run_sql(con, "load/journal_insert_pending")
        finally:
            con.unregister("incoming")


PAUSE_SUFFIX = ":pause"


def pause_id(change_id: str) -> str:
    """The change id of the protective pause taken for a held change (its own journal row):
    the change's id with :data:`PAUSE_SUFFIX`, so the change it protects is read back off it."""
    return change_id + PAUSE_SUFFIX


def void_replaced(
    con: duckdb.DuckDBPyConnection, run_id: str, platform: str, change_ids: list[str]
) -> int:
    """Void the run's unsent journal rows on ``platform`` whose change (for a pause: the
    change it protects) is not among ``change_ids``, the run's new diff; the caller's
    transaction makes this atomic with the diff's record. Returns the rows voided."""
    kept = pl.DataFrame({"change_id": change_ids}, schema={"change_id": pl.String})
    con.register("kept_changes", kept.to_arrow())
    try:
        rows = con.execute(
            "update push_journal set state = 'void', finished_at = now()"
            " where run_id = $r and platform = $p and state in ('pending', 'failed')"
            " and regexp_replace(change_id, $suffix || '$', '')"
            " not in (select change_id from kept_changes)",
            {"r": run_id, "p": platform, "suffix": PAUSE_SUFFIX},
        ).fetchall()
    finally:
        con.unregister("kept_changes")
    return int(rows[0][0]) if rows else 0


def open_rows(con: duckdb.DuckDBPyConnection, run_id: str, platform: str) -> list[dict[str, Any]]:
    """The run's rows on ``platform`` that still need work, as dicts, by account and key."""
    cursor = run_sql(con, "load/journal_open_rows", {"run_id": run_id, "platform": platform})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def mark_sent(
    con: duckdb.DuckDBPyConnection, rows: Iterable[dict[str, Any]], batch_id: str
) -> None:
    """``sent`` before the call (one transaction for a batch)."""
    with transaction(con):
        _mark_sent(con, rows, batch_id)


def _mark_sent(
    con: duckdb.DuckDBPyConnection, rows: Iterable[dict[str, Any]], batch_id: str
) -> None:
    for row in rows:
        run_sql(
            con,
            "load/journal_mark_sent",
            {
                "run_id": row["run_id"],
                "platform": row["platform"],
                "account_id": row["account_id"],
                "listing_key": row["listing_key"],
                "change_id": row["change_id"],
                "batch_id": batch_id,
            },
        )


@dataclass(frozen=True)
class RowResult:
    """The outcome of one journal row, as recorded."""

    row: dict[str, Any]
    state: str
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    offer_id: str | None = None  # learned from getOffers on the way
    drifted: bool = False  # the listing was changed by hand (seen while resuming)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown journal state {self.state!r}")


def record_results(
    con: duckdb.DuckDBPyConnection,
    results: Iterable[RowResult],
    redact_text: Callable[[str], str] = lambda text: text,
    *,
    then_sent: list[dict[str, Any]] | None = None,
    batch_id: str = "",
) -> None:
    """Record outcomes and, for ``ok`` rows, the new local truth — one transaction.

    ``then_sent`` rows are marked ``sent`` in the same transaction (one commit per BASE
    call instead of two: the previous row's outcome and the next row's mark).
    """
    with transaction(con):
        if then_sent:
            _mark_sent(con, then_sent, batch_id)
        for result in results:
            row = result.row
            key = {
                "run_id": row["run_id"],
                "platform": row["platform"],
                "account_id": row["account_id"],
                "listing_key": row["listing_key"],
                "change_id": row["change_id"],
            }
            message = result.error_message
            run_sql(
                con,
                "load/journal_result",
                {
                    **key,
                    "state": result.state,
                    "http_status": result.http_status,
                    "error_code": result.error_code,
                    "error_message": redact_text(message)[:500] if message else None,
                    "offer_id": result.offer_id,
                },
            )
            base = row["platform"] == "base"
            listing = (
                {"account_id": row["account_id"], "item_id": int(row["listing_key"])}
                if base
                else {"account_id": row["account_id"], "sku": row["listing_key"]}
            )
            if result.state == "ok":
                if base:
                    run_sql(
                        con,
                        "load/listing_pushed_base",
                        {
                            **listing,
                            "price": row["new_price_minor"],
                            "quantity": row["new_quantity"],
                            "visible": row["new_visible"],
                            "protect": row.get("action") == "protect",
                        },
                    )
                else:
                    run_sql(
                        con,
                        "load/listing_pushed_ebay",
                        {
                            **listing,
                            "price": row["new_price_minor"],
                            "quantity": row["new_quantity"],
                            "offer_id": result.offer_id,
                            "protect": row.get("action") == "protect",
                        },
                    )
            elif result.state == "quarantined" or result.drifted:
                run_sql(
                    con,
                    "load/listing_status_base" if base else "load/listing_status_ebay",
                    {
                        **listing,
                        "status": "quarantined" if result.state == "quarantined" else None,
                        "drifted": result.drifted,
                    },
                )


def revisions_since(con: duckdb.DuckDBPyConnection, account_id: str, since: Any) -> dict[str, int]:
    """eBay revisions sent per SKU of an account since ``since`` (a timestamp)."""
    rows = run_sql(
        con, "load/revisions_since", {"account_id": account_id, "since": since}
    ).fetchall()
    return {str(key): int(count) for key, count in rows}


def summary(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """Rows per platform, account and state for a run."""
    cursor = run_sql(con, "load/journal_summary", {"run_id": run_id})
    names = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=names, orient="row")
