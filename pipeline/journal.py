"""The push journal: one row per intended change, written before any call is made.

Stage: load. Reads and writes ``push_journal``, ``api_call_windows`` and, on a confirmed
push, ``listings_base`` / ``listings_ebay`` (all in the warehouse).

States (design §3)::

    pending ──► sent ──► ok            confirmed by the platform; never sent again
                  │ ├──► failed        refused (error code kept) or no answer; retried
                  │ ├──► quarantined   the listing is gone on the platform; never retried
                  │ ├──► skipped       not sent: revision_limit (retried tomorrow) or
                  │ │                  drifted (changed by hand; the next pull/review decides)
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

STATES = ("pending", "sent", "ok", "failed", "quarantined", "skipped")

JOURNAL_COLUMNS = {
    "run_id": pl.String,
    "platform": pl.String,
    "account_id": pl.String,
    "listing_key": pl.String,
    "asin": pl.String,
    "currency": pl.String,
    "old_price": pl.Int64,
    "new_price": pl.Int64,
    "old_quantity": pl.Int64,
    "new_quantity": pl.Int64,
    "old_visible": pl.Boolean,
    "new_visible": pl.Boolean,
    "api": pl.String,
    "offer_id": pl.String,
    "listing_id": pl.String,
}


def base_journal_rows(diff: pl.DataFrame) -> pl.DataFrame:
    """DiffBase rows → journal rows (yen, ``api = items/edit``)."""
    return diff.select(
        pl.col("run_id"),
        pl.lit("base").alias("platform"),
        pl.col("account_id"),
        pl.col("item_id").cast(pl.String).alias("listing_key"),
        pl.col("asin"),
        pl.lit("JPY").alias("currency"),
        pl.col("old_price_jpy").alias("old_price"),
        pl.col("new_price_jpy").alias("new_price"),
        pl.col("old_stock").alias("old_quantity"),
        pl.col("new_stock").alias("new_quantity"),
        pl.col("old_visible"),
        pl.col("new_visible"),
        pl.lit("items/edit").alias("api"),
        pl.lit(None, pl.String).alias("offer_id"),
        pl.lit(None, pl.String).alias("listing_id"),
    ).cast(JOURNAL_COLUMNS)  # type: ignore[arg-type]


def ebay_journal_rows(diff: pl.DataFrame) -> pl.DataFrame:
    """DiffEbay rows → journal rows (cents; ``api`` inventory | trading)."""
    return diff.select(
        pl.col("run_id"),
        pl.lit("ebay").alias("platform"),
        pl.col("account_id"),
        pl.col("sku").alias("listing_key"),
        pl.col("asin"),
        pl.col("currency"),
        pl.col("old_price_cents").alias("old_price"),
        pl.col("new_price_cents").alias("new_price"),
        pl.col("old_quantity"),
        pl.col("new_quantity"),
        pl.lit(None, pl.Boolean).alias("old_visible"),
        pl.lit(None, pl.Boolean).alias("new_visible"),
        pl.col("api"),
        pl.col("offer_id"),
        pl.col("listing_id"),
    ).cast(JOURNAL_COLUMNS)  # type: ignore[arg-type]


def record_pending(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> None:
    """Journal every row as ``pending`` (rows already journaled for the run keep their state)."""
    if rows.is_empty():
        return
    incoming = rows.select(list(JOURNAL_COLUMNS)).to_arrow()
    with transaction(con):
        con.register("incoming", incoming)
        try:
            run_sql(con, "load/journal_insert_pending")
        finally:
            con.unregister("incoming")


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
                            "price": row["new_price"],
                            "quantity": row["new_quantity"],
                            "visible": row["new_visible"],
                        },
                    )
                else:
                    run_sql(
                        con,
                        "load/listing_pushed_ebay",
                        {
                            **listing,
                            "price": row["new_price"],
                            "quantity": row["new_quantity"],
                            "offer_id": result.offer_id,
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


class BudgetSpent(Exception):
    """Our own call budget for a window is used up (raised before BASE would refuse)."""

    def __init__(self, window_kind: str, limit: int) -> None:
        super().__init__(window_kind)
        self.window_kind = window_kind
        self.limit = limit


@dataclass(frozen=True)
class Window:
    kind: str  # hour | day
    seconds: float  # length in platform seconds
    offset: float  # seconds east of UTC where the window turns (BASE's day: JST)
    limit: int  # calls allowed per window


class CallBudget:
    """Calls per platform account and window, kept in ``api_call_windows``.

    ``now`` gives platform time in seconds since the epoch (the sandbox's runs
    ``time_scale`` times faster). ``spend`` raises :class:`BudgetSpent` instead of
    counting once a window's limit is reached, so the shop stops before the platform
    refuses it — and a later run in the same window starts from the calls this one made.
    Counts are written every ``flush_every`` calls and by :meth:`flush` (a ``kill -9`` can
    lose at most that many; the default budget leaves 100 calls of BASE's 5,000 spare).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        platform: str,
        account_id: str,
        windows: list[Window],
        now: Callable[[], float],
        flush_every: int = 20,
    ) -> None:
        self._con = con
        self._platform = platform
        self._account_id = account_id
        self._windows = windows
        self._now = now
        self._flush_every = flush_every
        self._used: dict[tuple[str, int], int] = {}  # calls per (kind, window index)
        self._dirty: set[tuple[str, int]] = set()
        self._unflushed = 0

    def _params(self, kind: str, index: int) -> dict[str, Any]:
        return {
            "platform": self._platform,
            "account_id": self._account_id,
            "window_kind": kind,
            "window_index": index,
        }

    def _key(self, window: Window, now: float) -> tuple[str, int]:
        return window.kind, int((now + window.offset) // window.seconds)

    def used(self, kind: str) -> int:
        now = self._now()
        for window in self._windows:
            if window.kind == kind:
                return self._current(self._key(window, now))
        return 0

    def _current(self, key: tuple[str, int]) -> int:
        if key not in self._used:  # first call in this window: what earlier runs used
            rows = run_sql(self._con, "load/call_window_read", self._params(*key)).fetchall()
            self._used[key] = int(rows[0][0])
        return self._used[key]

    def spend(self, _operation: str = "") -> None:
        now = self._now()
        keys = [(w, self._key(w, now)) for w in self._windows]
        for window, key in keys:
            if self._current(key) >= window.limit:
                self.flush()
                raise BudgetSpent(window.kind, window.limit)
        for _window, key in keys:
            self._used[key] += 1
            self._dirty.add(key)
        self._unflushed += 1
        if self._unflushed >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the counts of the windows used since the last flush."""
        if not self._dirty:
            return
        with transaction(self._con):
            for key in sorted(self._dirty):
                run_sql(
                    self._con,
                    "load/call_window_write",
                    {**self._params(*key), "calls": self._used[key]},
                )
        self._dirty.clear()
        self._unflushed = 0
