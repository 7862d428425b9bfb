"""The decisions store: what a person decided about a change, bound to that exact change.

Stage: review (written by ``invsync approve|reject|hold`` and the review workbench; read by
load). Reads and writes ``<data_dir>/decisions.sqlite`` only — never the warehouse — so a
person can decide at any moment of a sync, even while a stage writes ``warehouse.duckdb``. SQLite in WAL
mode lets one writer and many readers in different processes share the file; every write is
one short transaction and waits up to :data:`BUSY_SECONDS` for another writer.

A decision belongs to a listing's *change*, named by its ``change_id`` (a hash computed by
``sql/transform/priced_listings.sql`` over the listing, its old and new price, quantity and
visibility, and the Amazon cost and availability it was computed from). The same change seen
again by a later run has the same id, so a decision made on run A's row applies to run B's
row when B proposes exactly the same change from the same Amazon observation values, and to
nothing else. ``approve`` releases a held row, ``reject`` keeps a row (held or not) from
being pushed, ``hold`` keeps a held row waiting (it clears an earlier approve or reject).
A tripped breaker is released per run and platform (:meth:`DecisionStore.release_breaker`):
a breaker judges one run's data, so its release is bound to that run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.errors import DecisionsBusyError, UsageError

DECISIONS = ("approve", "reject", "hold")
STORE_NAME = "decisions.sqlite"
BUSY_SECONDS = 30.0

_SCHEMA = """
create table if not exists decisions (
    change_id    text primary key,   -- the change the decision is bound to
    platform     text not null,      -- base | ebay
    account_id   text not null,
    listing_key  text not null,      -- BASE item_id as text, eBay SKU
    asin         text not null,
    run_id       text not null,      -- the run whose review it was made in
    decision     text not null check (decision in ('approve', 'reject', 'hold')),
    decided_at   text not null,      -- ISO 8601, UTC
    decided_by   text not null,      -- cli | workbench | a name
    note         text
);
create index if not exists decisions_listing on decisions (platform, account_id, listing_key);
create table if not exists breaker_releases (
    run_id       text not null,
    platform     text not null,
    released_at  text not null,      -- ISO 8601, UTC
    released_by  text not null,
    primary key (run_id, platform)
);
"""

KEY_COLUMNS = ("change_id", "platform", "account_id", "listing_key", "asin", "run_id")


@dataclass(frozen=True)
class Decision:
    change_id: str
    platform: str
    account_id: str
    listing_key: str
    asin: str
    run_id: str
    decision: str
    decided_at: str
    decided_by: str
    note: str | None


def next_action(*, holds_load: bool) -> pl.Expr:
    """What a load does with each diff row, given its ``decision`` column: ``change`` (send
    the change), ``raise`` or ``pause`` (the protection of a held row that waits, or was
    rejected: a rejected raise pauses), or null (nothing). Under a tripped breaker, which
    distrusts the run's stock data, only the protections against a loss go out. The load
    gate (:func:`pipeline.review.load_gate`) and the workbench's plan both decide by this."""
    decision = pl.col("decision").fill_null("")
    waits = pl.col("held") & (decision != "approve")
    protection = pl.col("protection")
    protect = (
        pl.when(decision != "reject")
        .then(protection)
        .when(protection.is_not_null())
        .then(pl.lit("pause"))
    )
    if holds_load:
        return pl.when(waits & (pl.col("protection_reason") == "loss_at_current_price")).then(
            protect
        )
    return pl.when(waits).then(protect).when(decision != "reject").then(pl.lit("change"))


def waits_for_a_person() -> pl.Expr:
    """A held row (with its ``decision``) that no decision settled (approve or reject) and
    whose protective raise did not already send the change itself: what "held" counts."""
    settled = pl.col("decision").is_in(["approve", "reject"]).fill_null(False)
    raised = (pl.col("protection") == "raise").fill_null(False)
    return pl.col("held") & ~settled & ~raised


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_NAME


class DecisionStore:
    """One connection to ``decisions.sqlite``; cheap to open, safe to share across processes."""

    def __init__(self, data_dir: Path, *, busy_seconds: float = BUSY_SECONDS) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = store_path(data_dir)
        self._con = sqlite3.connect(self.path, timeout=busy_seconds, isolation_level=None)
        self._con.execute("pragma journal_mode = wal")
        self._con.execute("pragma synchronous = normal")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    # --- writing ----------------------------------------------------------------------

    def record(
        self,
        rows: Iterable[Mapping[str, Any]],
        decision: str,
        *,
        by: str = "cli",
        note: str | None = None,
    ) -> int:
        """Record ``decision`` for every row (diff rows with :data:`KEY_COLUMNS`), replacing
        an earlier decision on the same change; one transaction. Returns the rows recorded."""
        if decision not in DECISIONS:
            raise UsageError(f"Decision {decision!r} is not one of {', '.join(DECISIONS)}.")
        now = _now()
        records = [(*(str(row[c]) for c in KEY_COLUMNS), decision, now, by, note) for row in rows]
        if not records:
            return 0
        with self._transaction():
            self._con.executemany(
                "insert into decisions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " on conflict (change_id) do update set decision = excluded.decision,"
                " run_id = excluded.run_id, decided_at = excluded.decided_at,"
                " decided_by = excluded.decided_by, note = excluded.note",
                records,
            )
        return len(records)

    def release_breaker(self, run_id: str, platform: str, *, by: str = "cli") -> bool:
        """Release the tripped breaker of one run and platform; False when already released."""
        with self._transaction():
            cursor = self._con.execute(
                "insert into breaker_releases values (?, ?, ?, ?) on conflict do nothing",
                (run_id, platform, _now(), by),
            )
        return cursor.rowcount == 1

    # --- reading ----------------------------------------------------------------------

    def decisions(self, change_ids: Iterable[str]) -> dict[str, str]:
        """change_id -> decision, for the ids that have one."""
        ids = list(dict.fromkeys(change_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for change_id, decision in self._con.execute(
                f"select change_id, decision from decisions where change_id in ({marks})", chunk
            ):
                found[change_id] = decision
        return found

    def all(self) -> list[Decision]:
        """Every decision, newest first."""
        cursor = self._con.execute("select * from decisions order by decided_at desc, change_id")
        return [Decision(*row) for row in cursor.fetchall()]

    def breaker_released(self, run_id: str, platform: str) -> bool:
        rows = self._con.execute(
            "select 1 from breaker_releases where run_id = ? and platform = ?", (run_id, platform)
        ).fetchall()
        return bool(rows)

    def rows(self, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
        """Every row of one of the store's tables (for the analysts' exports)."""
        return self._con.execute(f"select {', '.join(columns)} from {table}").fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._con.execute("begin immediate")
        except sqlite3.OperationalError as exc:  # another writer kept it past BUSY_SECONDS
            raise DecisionsBusyError(
                f"The decisions store {self.path} is busy ({exc}); another invsync is "
                "recording decisions — try again in a moment."
            ) from None
        try:
            yield
        except BaseException:
            self._con.execute("rollback")
            raise
        self._con.execute("commit")


@contextmanager
def opened(data_dir: Path) -> Iterator[DecisionStore]:
    store = DecisionStore(data_dir)
    try:
        yield store
    finally:
        store.close()


# The store's two tables as the analysts' exports read them (pipeline.views): times as UTC.
EXPORT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "decisions": {
        "change_id": pl.String(),
        "platform": pl.String(),
        "account_id": pl.String(),
        "listing_key": pl.String(),
        "asin": pl.String(),
        "run_id": pl.String(),
        "decision": pl.String(),
        "decided_at": pl.Datetime("us", "UTC"),
        "decided_by": pl.String(),
        "note": pl.String(),
    },
    "breaker_releases": {
        "run_id": pl.String(),
        "platform": pl.String(),
        "released_at": pl.Datetime("us", "UTC"),
        "released_by": pl.String(),
    },
}


def export_frames(data_dir: Path) -> dict[str, pl.DataFrame]:
    """Both tables of the store, whole, with their ISO times as UTC timestamps (empty while
    no store exists): what the analysts' exports write beside the warehouse's."""
    frames = {name: pl.DataFrame(schema=schema) for name, schema in EXPORT_SCHEMAS.items()}
    if not store_path(data_dir).exists():
        return frames
    with opened(data_dir) as store:
        for name, schema in EXPORT_SCHEMAS.items():
            rows = store.rows(name, list(schema))
            text = pl.DataFrame(rows, schema=dict.fromkeys(schema, pl.String()), orient="row")
            frames[name] = text.with_columns(
                pl.col(c).str.to_datetime(time_unit="us", time_zone="UTC")
                for c, dtype in schema.items()
                if isinstance(dtype, pl.Datetime)
            )
    return frames


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
