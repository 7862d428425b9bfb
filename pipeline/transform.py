"""Phase 2, transform: the run's Amazon snapshot + the listings + the pricing rules → diffs.

Reads the snapshot ``<data_dir>/snapshots/amazon/dt=*/run_id=<id>/part-0.parquet``
(validated with :class:`~pipeline.schemas.Snapshot`), ``listings_base``, ``listings_ebay``,
``runs.unique_asins`` and the ``[pricing]``, ``[fx]`` and ``[guardrails]`` settings.
Writes ``<data_dir>/diffs/run_id=<id>/platform=<p>/diff.parquet`` (atomic, validated with
:class:`~pipeline.schemas.PricedDiff`: the same columns on every platform, prices in minor
units of the row's ``currency``, no ``run_id`` or ``platform`` column since the path holds
both), the listings as they stood at the run with its decision for each
(``<data_dir>/listings/run_id=<id>/platform=<p>/listings.parquet``, every listing priced:
:class:`~pipeline.schemas.ListingHistory`, read by the analysts' views and ``invsync whatif``),
the warehouse history (``diff_history``, ``transform_platform_stats``) and the run's
``transform_seconds``, ``diffs``, ``holds``, ``priced_at`` (the as_of) and ``fx_jpy_per_usd``.

All pricing happens set-based in DuckDB (``sql/transform/*.sql``); Python only wires.
Phase 2 never calls SP-API. A stale or missing FX rate stops eBay pricing — BASE is still
written, then the error is raised — and the eBay diff of the run is removed, so a stale
conversion can never be loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import journal, layout, pricing
from pipeline.config import Settings, Workspace
from pipeline.errors import ConfigError, InvsyncError
from pipeline.files import atomic_target
from pipeline.platforms import PLATFORMS
from pipeline.runs import resolve_run, update_run
from pipeline.schemas import CHANGE_KINDS, ListingHistory, PricedDiff, validated
from pipeline.snapshots import conform, last_good_observations, read_snapshot
from pipeline.sql import load_sql, run_sql
from pipeline.warehouse import transaction, write_parquet_atomic


def diff_path(data_dir: Path, run_id: str, platform: str) -> Path:
    """Where one platform's diff of a run lives; the path's Hive keys are its run and platform."""
    return layout.diff_path(data_dir, run_id, platform)


def with_path_keys(diff: pl.DataFrame, run_id: str, platform: str) -> pl.DataFrame:
    """``diff`` (as read from :func:`diff_path`) with the ``run_id`` and ``platform`` its
    path holds, as the first two columns."""
    return diff.select(
        pl.lit(run_id, pl.String).alias("run_id"),
        pl.lit(platform, pl.String).alias("platform"),
        pl.all(),
    )


@dataclass
class PlatformDiff:
    """One platform's diff of one run, in counts."""

    platform: str
    listings: int
    rows: int
    held: int
    kinds: dict[str, int]
    path: Path | None


@dataclass
class TransformResult:
    run_id: str
    platforms: dict[str, PlatformDiff]
    seconds: float
    fx: pricing.FxRate | None = None
    stopped: dict[str, str] = field(default_factory=dict)  # platform → why it was not priced

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.platforms.values())

    @property
    def held(self) -> int:
        return sum(p.held for p in self.platforms.values())


@dataclass
class ComputedDiffs:
    frames: dict[str, pl.DataFrame]  # platform → validated diff (no run_id/platform column)
    stats: pl.DataFrame  # transform_platform_stats rows


def _frame(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> pl.DataFrame:
    """``sql/<name>.sql`` as a polars frame (through Arrow, no copy per row)."""
    table = con.sql(load_sql(name), params=params).to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _arrow_view(frame: pl.DataFrame) -> Any:
    """``frame`` as an Arrow table for ``con.register`` without copying its strings (Arrow
    string views, which DuckDB reads; the default conversion copies every string)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def _validated(frame: pl.DataFrame, platform: str) -> pl.DataFrame:
    return validated(
        frame,
        PricedDiff,
        lambda problems: InvsyncError(
            f"The {platform} diff failed its own validation: {problems}; nothing was written — "
            "this is a bug in invsync's pricing SQL, please report it with the run id."
        ),
    )


def compute_diffs(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    snapshot: Path | pl.DataFrame,
    settings: Settings,
    as_of: datetime,
    fx: pricing.FxRate | None,
    platforms: tuple[str, ...] = PLATFORMS,
    stored_listings: pl.DataFrame | None = None,
    history_paths: dict[str, Path] | None = None,
) -> ComputedDiffs:
    """Price every listing of ``platforms`` against ``snapshot`` and return validated diffs.

    ``snapshot`` is the run's snapshot frame (as :func:`run` validated it) or its Parquet
    file. Reads the listing tables through ``con`` — or, for a replay, ``stored_listings``:
    the listings as they stood at a past run (its ``listings/`` files with a ``platform``
    column). Writes each platform's listing history (every listing priced, the changed ones
    being the diff) to ``history_paths[platform]`` when given (atomically; transform's run
    does); otherwise writes nothing but temp tables and views, dropped again. eBay is priced only
    when ``fx`` is given.
    """
    snapshot_frame = (
        snapshot
        if isinstance(snapshot, pl.DataFrame)  # a file holds the run id in its path only
        else pl.read_parquet(snapshot, glob=False).with_columns(run_id=pl.lit(run_id))
    )
    rules: list[pricing.AccountRule] = []
    for platform in platforms:
        rules += pricing.compile_rules(settings, platform, fx if platform == "ebay" else None)
    guard = pricing.compile_guardrails(settings)
    con.execute("set TimeZone = 'UTC'")  # as every invsync connection: timestamps are UTC
    # the SQL is keyed by replay_run (one run here: ''); the rules hold the run's staleness
    # limit: as_of less max_source_age
    one_run = pl.lit("").alias("replay_run")
    stale_before = as_of - timedelta(microseconds=guard.max_source_age_us)
    con.register("run_snapshot", _arrow_view(snapshot_frame.with_columns(one_run)))
    con.register(
        "pricing_rules",
        pricing.rules_frame(rules).with_columns(
            one_run, pl.lit(stale_before).dt.cast_time_unit("us").alias("stale_before")
        ),
    )
    con.register("markup_bands", pricing.bands_frame(rules))
    if stored_listings is not None:
        con.register("stored_listings", _arrow_view(stored_listings.with_columns(one_run)))
    try:
        run_sql(
            con,
            "transform/run_listings"
            if stored_listings is None
            else "transform/run_listings_stored",
        )
        run_sql(con, "transform/observed_listings")
        # Every listing priced, into a temp table: DuckDB writes the listing history from it
        # in parallel, and the diff and stats queries read its changed rows as
        # priced_changes (through Arrow every listing would cost a second per million).
        con.execute(
            "create or replace temp table priced_all as " + load_sql("transform/priced_listings"),
            {
                "max_move_bp": guard.max_move_bp,
                "max_source_age_s": guard.max_source_age_us / 1_000_000,
                "changes_only": False,
            },
        )
        con.execute(
            "create or replace temp view priced_changes as"
            " select * from priced_all where change_kind is not null"
        )
        frames = {
            platform: _validated(_frame(con, "transform/diff", {"platform": platform}), platform)
            for platform in platforms
        }
        for platform, path in (history_paths or {}).items():
            _write_history(con, platform, path)
        stats = _frame(con, "transform/platform_stats", {"run_id": run_id, "as_of": as_of})
    finally:
        con.execute("drop view if exists priced_changes")
        con.execute("drop view if exists observed_listings")
        con.execute("drop view if exists run_listings")
        con.execute("drop table if exists priced_all")
        for frame in ("run_snapshot", "pricing_rules", "markup_bands"):
            con.unregister(frame)
        if stored_listings is not None:
            con.unregister("stored_listings")
    return ComputedDiffs(frames=frames, stats=stats)


def _write_history(con: duckdb.DuckDBPyConnection, platform: str, path: Path) -> None:
    """One platform's listing history (``sql/transform/listing_history.sql`` over
    ``priced_all``) to ``path``, atomically, its columns and types checked against
    :class:`ListingHistory` before it takes the name (a lazy frame: the schema only — its
    values come from the same priced rows as the diff, whose changed rows are checked in full,
    and checking every value of every listing would double the transform at a million)."""
    query = con.sql(load_sql("transform/listing_history"), params={"platform": platform})
    with atomic_target(path) as temporary:
        # the file needs no row order, so DuckDB may write it from every thread at once
        con.execute("set preserve_insertion_order = false")
        try:
            query.write_parquet(str(temporary))
        finally:
            con.execute("reset preserve_insertion_order")
        ListingHistory.validate(pl.scan_parquet(temporary, glob=False))


CARRY_HORIZON_SECONDS = 366 * 86400.0  # the oldest observation a budgeted run carries


def with_carried(
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, snapshot: pl.DataFrame,
    as_of: datetime,
) -> pl.DataFrame:  # fmt: skip
    """The run's snapshot, and for a budgeted run (``runs.fetch_budget_seconds`` set) every
    listed ASIN it did not observe carried from its last fact observation (ok, no_offer,
    filtered_out) in an earlier run — with that run's id and ``fetched_at``, so its listings
    keep their last decision (no diff), a listing changed locally is decided from it, and
    ``max_source_age`` holds a change decided from an old one (``source_stale``). A full
    pass carries nothing."""
    rows = con.execute(
        "select fetch_budget_seconds from runs where run_id = $r", {"r": run_id}
    ).fetchall()
    if not rows or rows[0][0] is None:
        return snapshot
    listed = con.execute(
        "select asin from listings_base where status = 'listed'"
        " union select asin from listings_ebay where status = 'listed'"
    ).fetchall()
    have = set(snapshot["asin"].to_list())
    missing = sorted({a for (a,) in listed if a is not None} - have)
    if not missing:
        return snapshot
    carried = last_good_observations(
        ws.data_dir, missing, now=as_of, max_age_seconds=CARRY_HORIZON_SECONDS,
        exclude_run=run_id,
    )  # fmt: skip
    if carried.is_empty():
        return snapshot
    return pl.concat([snapshot, conform(carried.drop("age_seconds"))]).sort("asin")


def _has_listed(con: duckdb.DuckDBPyConnection, platform: str) -> bool:
    table = "listings_base" if platform == "base" else "listings_ebay"
    # The table name comes from the fixed pair above, never from input.
    rows = con.execute(f"select count(*) from {table} where status = 'listed'").fetchall()
    return bool(rows[0][0])


def _store(
    con: duckdb.DuckDBPyConnection, run_id: str, computed: ComputedDiffs, dropped: list[str]
) -> None:
    """Replace the run's history rows of the priced and ``dropped`` platforms, its stats and
    (now stale) review verdicts in one go."""
    with transaction(con):
        for platform in [*computed.frames, *dropped]:
            con.execute(
                "delete from diff_history where run_id = $r and platform = $p",
                {"r": run_id, "p": platform},
            )
        for platform, frame in computed.frames.items():
            con.register("new_diff", _arrow_view(frame))
            con.execute(
                "insert into diff_history by name"
                " select $r as run_id, $p as platform, * from new_diff",
                {"r": run_id, "p": platform},
            )
            con.unregister("new_diff")
        con.execute("delete from transform_platform_stats where run_id = $r", {"r": run_id})
        con.register("new_stats", _arrow_view(computed.stats))
        con.execute("insert into transform_platform_stats by name select * from new_stats")
        con.unregister("new_stats")
        # A new diff voids earlier verdicts, and the run's unsent journal rows of changes it
        # no longer has (decisions need nothing: each binds to its exact change_id).
        con.execute("delete from review_breakers where run_id = $r", {"r": run_id})
        for platform, frame in computed.frames.items():
            journal.void_replaced(con, run_id, platform, frame["change_id"].to_list())
        for platform in dropped:
            journal.void_replaced(con, run_id, platform, [])


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    *,
    as_of: datetime | None = None,
) -> TransformResult:
    """Transform one run (default: the latest): price, diff, validate, write, record."""
    started = time.perf_counter()
    run_id = resolve_run(con, run_id)
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    snapshot = with_carried(ws, con, run_id, read_snapshot(ws.data_dir, run_id), as_of)

    platforms = [p for p in PLATFORMS if ws.settings.accounts_on(p)]
    stopped: dict[str, str] = {}
    fx: pricing.FxRate | None = None
    if "ebay" in platforms and _has_listed(con, "ebay"):
        config_dir = ws.config_path.parent if ws.config_path else None
        try:
            fx = pricing.resolve_fx(ws.settings, as_of, config_dir)
        except ConfigError as exc:
            stopped["ebay"] = exc.message
            platforms.remove("ebay")
    elif "ebay" in platforms:
        fx = pricing.FxRate(pricing.SANDBOX_DEMO_RATE, as_of, "unused: no eBay listings")

    computed = compute_diffs(
        con,
        run_id=run_id,
        snapshot=snapshot,
        settings=ws.settings,
        as_of=as_of,
        fx=fx,
        platforms=tuple(platforms),
        history_paths={p: layout.listing_history_path(ws.data_dir, run_id, p) for p in platforms},
    )
    for platform, frame in computed.frames.items():
        write_parquet_atomic(frame, diff_path(ws.data_dir, run_id, platform))
    for platform in stopped:
        diff_path(ws.data_dir, run_id, platform).unlink(missing_ok=True)
        layout.listing_history_path(ws.data_dir, run_id, platform).unlink(missing_ok=True)
    _store(con, run_id, computed, list(stopped))

    stats = {row["platform"]: row for row in computed.stats.to_dicts()}
    result = TransformResult(run_id=run_id, platforms={}, seconds=0.0, fx=fx, stopped=stopped)
    for platform, frame in computed.frames.items():
        kinds = dict(frame.group_by("change_kind").len().iter_rows())
        result.platforms[platform] = PlatformDiff(
            platform=platform,
            listings=int(stats[platform]["listings"]),
            rows=frame.height,
            held=int(frame["held"].sum()),
            kinds={kind: int(kinds.get(kind, 0)) for kind in CHANGE_KINDS},
            path=diff_path(ws.data_dir, run_id, platform),
        )
    result.seconds = time.perf_counter() - started
    update_run(
        con,
        run_id,
        transform_seconds=result.seconds,
        diffs=result.rows,
        holds=result.held,
        priced_at=as_of,
        fx_jpy_per_usd=fx.jpy_per_usd if fx is not None and "ebay" in computed.frames else None,
    )
    if stopped:
        raise ConfigError(
            stopped["ebay"].rstrip(".")
            + f" (the BASE diff of run {run_id} was written; eBay has none)."
        )
    return result
