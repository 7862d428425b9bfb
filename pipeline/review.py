"""Phase 2, review gate: row holds, the per-platform breaker, decisions, protection while
held, what a load may send, and the review report.

Reads the run's diffs (``<data_dir>/diffs/run_id=<id>/platform=<p>/diff.parquet``, one shape
for every platform with prices in minor units of ``currency``, held rows already marked by
transform; the run and platform come from the path), ``transform_platform_stats``, the
listing tables (what each listing shows now), the ``[guardrails]`` settings, the decisions
store (:mod:`pipeline.decisions`, never the warehouse) and every Amazon snapshot for the
price-history sparklines. Writes ``review_breakers`` and the run's ``review_seconds`` and
``holds`` (only when asked to record: a person just looking needs no write access), and
``<data_dir>/reviews/<run>/review.html`` with one CSV per platform diff.

Row holds (decided in ``sql/transform/priced_listings.sql``): a price move beyond
``max_price_change_pct``, profit under the rule's minimum, a rule price above ``max_price``, a
source older than ``max_source_age``, a listing that drifted on the platform. The breaker
holds a platform's whole load when Amazon calls too large a share of its listings out of
stock (``max_out_of_stock_ratio``) or doubtful (``max_api_error_ratio``: api_error + unknown),
or when the snapshot covers fewer ASINs than extract recorded.

A person decides per change (:mod:`pipeline.decisions`): ``approve`` releases a held row,
``reject`` keeps any row from being pushed, ``hold`` keeps it waiting; a tripped breaker is
released per run and platform. :func:`load_gate` is what a load may send now
(docs/review.md has the rules with worked examples):

* only the newest transformed run of a platform loads; an older run's rows are superseded;
* a row goes out while it is not held (and not rejected) or is approved, its listing still
  shows the old values it was decided on (or the pause protection set), and its Amazon
  observation is younger than ``max_source_age``; otherwise the next transform re-decides it;
* a held row that waits while its listing loses money or cannot be supplied gets its
  protective action at once (transform's ``protection``): the raise itself, or a pause
  (quantity 0). Under a tripped breaker only the loss protections go out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline import journal, layout
from pipeline.config import Settings, Workspace
from pipeline.decisions import DecisionStore, next_action, waits_for_a_person
from pipeline.decisions import opened as open_store
from pipeline.errors import DataError, UsageError
from pipeline.files import write_text_atomic
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS
from pipeline.pricing import BP, compile_guardrails
from pipeline.runs import resolve_run, update_run
from pipeline.schemas import CHANGE_KINDS, Diff, PricedDiff
from pipeline.snapshots import readable_snapshot_files
from pipeline.transform import diff_path, with_path_keys
from pipeline.warehouse import read_parquet_validated, read_skipping_damaged
from pipeline.workbench.exports import csv_safe
from pipeline.workbench.render import page_from_frames, render_review

PRICE_MINOR = ("old_price_minor", "new_price_minor")  # minor units of the row's currency
STOCK_COLUMNS = ("old_quantity", "new_quantity")
HTML_ROWS_PER_PLATFORM = 1_000  # the CSVs carry every row; the page stays light


@dataclass(frozen=True)
class Breaker:
    """The run-level verdict for one platform."""

    platform: str
    tripped: bool
    reasons: list[str]
    released: bool  # a person released it for this run

    @property
    def holds_load(self) -> bool:
        return self.tripped and not self.released


@dataclass
class PlatformReview:
    platform: str
    rows: int
    kinds: dict[str, int]
    held_rows: pl.DataFrame  # rows held by a row rule, with their ``decision`` (or null)
    largest_moves: pl.DataFrame
    breaker: Breaker
    protected: int = 0  # held rows whose protective action the next load takes

    @property
    def waiting(self) -> int:
        """Held rows still waiting for a person: no decision settled them (approve or
        reject) and no protective raise already sent the change itself."""
        return self.held_rows.filter(waits_for_a_person()).height

    @property
    def is_held(self) -> bool:
        return self.breaker.holds_load or self.waiting > 0


@dataclass
class ReviewResult:
    run_id: str
    platforms: dict[str, PlatformReview]
    report: Path
    csvs: list[Path] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # change ids this run's loads already sent
    diffs: dict[str, pl.DataFrame] = field(default_factory=dict)  # platform -> rows, with
    # their ``decision`` and ``sent``, as the report drew them

    @property
    def held(self) -> bool:
        return any(p.is_held for p in self.platforms.values())

    @property
    def waiting(self) -> int:
        return sum(p.waiting for p in self.platforms.values())

    def hold_message(self) -> str | None:
        """One sentence: what is held, why, and how to decide; None when nothing is."""
        held = [p for p in self.platforms.values() if p.is_held]
        if not held:
            return None
        parts = []
        for p in held:
            name = DISPLAY_NAMES[p.platform]
            if p.breaker.holds_load:
                parts.append(f"{name}'s whole load ({'; '.join(p.breaker.reasons)})")
            else:
                parts.append(f"{p.waiting} {name} row{'s' if p.waiting != 1 else ''}")
        commands = " or ".join(
            f"`invsync approve {self.run_id} --platform {p.platform}`" for p in held
        )
        return (
            f"Run {self.run_id} is held for review: {', and '.join(parts)}; decide row by row "
            f"with `invsync review --serve --run {self.run_id}` (or read {self.report}), or "
            f"release all with {commands}, then `invsync load`."
        )


# --- reading ----------------------------------------------------------------------------


def read_diff(ws: Workspace, run_id: str, platform: str) -> pl.DataFrame:
    """The run's validated diff for one platform, with the ``run_id`` and ``platform`` of its
    path; a clear error when transform has not run."""
    path = diff_path(ws.data_dir, run_id, platform)
    if not path.is_file():
        raise DataError(
            f"Run {run_id} has no {DISPLAY_NAMES.get(platform, platform)} diff at {path}; "
            f"run `invsync transform --run {run_id}` first."
        )
    recovery = f"write it again with `invsync transform --run {run_id}`"
    return with_path_keys(
        read_parquet_validated(path, PricedDiff, recovery=recovery), run_id, platform
    )


def diffed_platforms(ws: Workspace, run_id: str) -> list[str]:
    return [p for p in PLATFORMS if diff_path(ws.data_dir, run_id, p).is_file()]


def diffed_run(ws: Workspace, run_id: str | None) -> str:
    """``run_id`` when it has a diff, else (None or ``latest``) the newest run with one —
    read from the diff folders, so deciding never needs the warehouse."""
    if run_id not in (None, "latest"):
        assert run_id is not None
        if not diffed_platforms(ws, run_id):
            raise UsageError(
                f"Run {run_id} has no diff; see `invsync runs` for run ids, or run "
                f"`invsync transform --run {run_id}` first."
            )
        return run_id
    root = ws.data_dir / layout.DIFF_FILES[0]
    runs = sorted(
        (p.name.removeprefix("run_id=") for p in root.glob("run_id=*") if p.is_dir()),
        reverse=True,  # run ids start with their UTC start time
    )
    for candidate in runs:
        if diffed_platforms(ws, candidate):
            return candidate
    raise UsageError("There is no run with a diff yet; start one with `invsync sync`.")


def with_decisions(diff: pl.DataFrame, store: DecisionStore) -> pl.DataFrame:
    """``diff`` with a ``decision`` column: approve | reject | hold, or null (none yet)."""
    decided = store.decisions(diff["change_id"].to_list())
    return diff.with_columns(
        pl.col("change_id")
        .replace_strict(decided, default=None, return_dtype=pl.String)
        .alias("decision")
    )


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "0 %"


def breaker_verdict(stats: dict[str, int | None], settings: Settings) -> list[str]:
    """The reasons a platform's load must wait (empty: none). Ratios compared as integers."""
    guard = compile_guardrails(settings)
    g = settings.guardrails
    listings = int(stats["listings"] or 0)
    name = DISPLAY_NAMES[str(stats["platform"])]
    reasons = []
    out = int(stats["source_out_of_stock"] or 0)
    if listings and out * BP > guard.max_out_of_stock_bp * listings:
        reasons.append(
            f"Amazon calls {out} of {listings} {name} listings out of stock "
            f"({_percent(out, listings)}, above max_out_of_stock_ratio {g.max_out_of_stock_ratio})"
        )
    doubtful = int(stats["source_doubtful"] or 0)
    if listings and doubtful * BP > guard.max_api_error_bp * listings:
        reasons.append(
            f"{doubtful} of {listings} {name} listings have an api_error or unknown source "
            f"({_percent(doubtful, listings)}, above max_api_error_ratio {g.max_api_error_ratio})"
        )
    extracted, covered = stats["extracted_asins"], int(stats["snapshot_asins"] or 0)
    if extracted is not None and covered < int(extracted):
        reasons.append(f"the snapshot covers {covered} ASINs but extract listed {extracted}")
    return reasons


def breaker_for(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    store: DecisionStore,
    *,
    record: bool = True,
) -> Breaker:
    """Judge one platform of a run from transform's counts (and record the verdict when
    ``record``), with whether a person released it."""
    rows = con.execute(
        "select * from transform_platform_stats where run_id = $r and platform = $p",
        {"r": run_id, "p": platform},
    ).fetchall()
    if not rows:
        raise DataError(
            f"Run {run_id} has no transform record for {DISPLAY_NAMES.get(platform, platform)}; "
            f"run `invsync transform --run {run_id}` first."
        )
    names = [d[0] for d in con.execute(
        "select * from transform_platform_stats limit 0"
    ).description]  # fmt: skip
    stats = dict(zip(names, rows[0], strict=True))
    reasons = breaker_verdict(stats, ws.settings)
    if record:
        con.execute(
            "insert or replace into review_breakers values ($r, $p, $t, $why, now())",
            {"r": run_id, "p": platform, "t": bool(reasons), "why": "; ".join(reasons) or None},
        )
    return Breaker(platform, bool(reasons), reasons, store.breaker_released(run_id, platform))


# --- the interface load uses -------------------------------------------------------------

SKIP_REASONS = {  # why a row a load could have sent waits (docs/review.md)
    "waiting": "held, waiting for a decision",
    "rejected": "rejected",
    "superseded": "a newer run re-decided the listing",
    "stale_source": "its Amazon observation is older than max_source_age",
    "listing_changed": "the listing no longer shows the old values it was decided on",
}


@dataclass
class LoadGate:
    """What a load of one run and platform may send now, and why the rest waits."""

    platform: str
    rows: pl.DataFrame  # Diff rows (+ run_id, platform, action, reason) to journal and push
    held_reason: str | None = None  # the whole platform waits (a tripped breaker)
    newer_run: str | None = None  # the run that superseded this one, if any
    skipped: dict[str, int] = field(default_factory=dict)  # SKIP_REASONS key -> rows

    @property
    def protected(self) -> int:
        return int((self.rows["action"] == "protect").sum()) if self.rows.height else 0

    @property
    def paused(self) -> int:
        """Protections that pause (quantity 0, price kept); the rest raise the price."""
        return self.rows.filter(_is_pause()).height if self.rows.height else 0


def _is_pause() -> pl.Expr:
    """A row :func:`protective_rows` made a pause (quantity 0, price kept)."""
    return pl.col("change_id").str.ends_with(journal.PAUSE_SUFFIX)


def newest_transformed_run(con: duckdb.DuckDBPyConnection, platform: str) -> str | None:
    """The latest-started run with a transform record for ``platform``."""
    rows = con.execute(
        "select s.run_id from transform_platform_stats as s join runs as r using (run_id)"
        " where s.platform = $p order by r.started_at desc, s.run_id desc limit 1",
        {"p": platform},
    ).fetchall()
    return str(rows[0][0]) if rows else None


def protective_rows(protected: pl.DataFrame) -> pl.DataFrame:
    """The protective action of each row whose ``action`` is ``raise`` or ``pause``
    (:func:`pipeline.decisions.next_action`): a raise is the row itself; a pause keeps the
    price and sets quantity 0, under its own change id (:func:`pipeline.journal.pause_id`)."""
    pause = pl.col("action") == "pause"
    paused = {
        "new_price_minor": pl.col("old_price_minor"),
        "new_quantity": pl.lit(0, pl.Int64),
        "new_visible": pl.col("old_visible"),
        "change_kind": pl.lit("out_of_stock"),
        "change_id": pl.col("change_id") + journal.PAUSE_SUFFIX,
    }
    return protected.with_columns(
        *(
            pl.when(pause).then(value).otherwise(pl.col(name)).alias(name)
            for name, value in paused.items()
        ),
        pl.lit("protect").alias("action"),
        pl.col("protection_reason").alias("reason"),
    )


def _current_listings(con: duckdb.DuckDBPyConnection, platform: str) -> pl.DataFrame:
    if platform == "base":
        sql = (
            "select account_id, cast(item_id as varchar) as listing_key, price_jpy as cur_price,"
            " cast(stock as bigint) as cur_quantity, visible as cur_visible"
            " from listings_base where status = 'listed'"
        )
    else:
        sql = (
            "select account_id, sku as listing_key, price_cents as cur_price,"
            " cast(quantity as bigint) as cur_quantity, cast(null as boolean) as cur_visible"
            " from listings_ebay where status = 'listed'"
        )
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def load_gate(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    store: DecisionStore,
    *,
    now: datetime | None = None,
) -> LoadGate:
    """The rows of run/platform a load may send now (module docstring; docs/review.md)."""
    if platform not in PLATFORMS:
        raise UsageError(f"Platform {platform!r} is not one of {', '.join(PLATFORMS)}.")
    now = now or datetime.now(UTC)
    diff = with_decisions(read_diff(ws, run_id, platform), store)
    empty = (
        diff.clear()
        .with_columns(
            pl.lit(None, pl.String).alias("action"), pl.lit(None, pl.String).alias("reason")
        )
        .drop("decision")
    )
    newest = newest_transformed_run(con, platform)
    if newest is not None and newest != run_id:
        return LoadGate(platform, empty, newer_run=newest, skipped={"superseded": diff.height})
    breaker = breaker_for(ws, con, run_id, platform, store)
    decision = pl.col("decision").fill_null("")
    diff = diff.with_columns(next_action(holds_load=breaker.holds_load).alias("action"))
    skipped = {
        "waiting": diff.filter(waits_for_a_person()).height,
        "rejected": diff.filter(decision == "reject").height,
    }
    hold_reason = None
    if breaker.holds_load:
        hold_reason = (
            f"{DISPLAY_NAMES[platform]} load of run {run_id} is held: "
            f"{'; '.join(breaker.reasons)}; release it with "
            f"`invsync approve {run_id} --platform {platform}`."
        )
        skipped["waiting"] = diff.height - skipped["rejected"]
    changes = diff.filter(pl.col("action") == "change").with_columns(
        pl.lit(None, pl.String).alias("reason")
    )
    protect = protective_rows(diff.filter(pl.col("action").is_in(["raise", "pause"])))
    candidates = pl.concat([changes, protect.select(changes.columns)]).drop("decision")

    # fresh source: a raise or change from an observation older than max_source_age waits
    # (a pause never does: stopping a sale is always safe)
    max_age = timedelta(seconds=ws.settings.guardrails.max_source_age)
    fresh = (pl.col("source_fetched_at") >= now - max_age).fill_null(False)
    skipped["stale_source"] = candidates.filter(~fresh & ~_is_pause()).height
    candidates = candidates.filter(fresh | _is_pause())

    # a change this run already pushed (or the platform refused for good) is done
    candidates = candidates.filter(~pl.col("change_id").is_in(sent_changes(con, run_id)))

    # the listing still shows the old values (or, for an approved change, the pause set)
    current = _current_listings(con, platform)
    joined = candidates.join(current, on=["account_id", "listing_key"], how="left")
    same_visible = (pl.col("cur_visible") == pl.col("old_visible")).fill_null(
        pl.col("old_visible").is_null() & pl.col("cur_visible").is_null()
    )
    shows_old = (
        (pl.col("cur_price") == pl.col("old_price_minor"))
        & (pl.col("cur_quantity") == pl.col("old_quantity"))
        & same_visible
    ).fill_null(False)
    shows_pause = (
        (pl.col("action") == "change")
        & (pl.col("cur_price") == pl.col("old_price_minor"))
        & (pl.col("cur_quantity") == 0)
        & same_visible
    ).fill_null(False)
    ok = shows_old | shows_pause
    skipped["listing_changed"] = joined.filter(~ok).height
    rows = joined.filter(ok).drop("cur_price", "cur_quantity", "cur_visible")
    rows = Diff.validate(rows, lazy=True) if rows.height else rows
    return LoadGate(
        platform,
        rows,
        held_reason=hold_reason,
        skipped={k: v for k, v in skipped.items() if v},
    )


# --- decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionResult:
    platform: str
    decision: str
    rows: int  # rows recorded
    breaker_released: bool  # a tripped breaker was released now


def decide(
    ws: Workspace,
    run_id: str | None,
    decision: str,
    *,
    platform: str | None = None,
    accounts: list[str] | None = None,
    listing_keys: list[str] | None = None,
    reason: str | None = None,
    held_only: bool = True,
    by: str = "cli",
) -> tuple[str, list[DecisionResult]]:
    """Record ``decision`` on the run's rows that match every filter given (held rows only,
    unless ``held_only`` is False or rows are named by ``listing_keys``); approving a
    whole platform (no row filter) also releases its tripped breaker. Reads only the run's
    diff files and writes only the decisions store, so it works while a sync runs."""
    run_id = diffed_run(ws, run_id)
    diffed = diffed_platforms(ws, run_id)
    if platform is not None and platform not in PLATFORMS:
        raise UsageError(
            f"Platform {platform!r} is not one of {', '.join(PLATFORMS)}; "
            f"use `--platform base` or `--platform ebay`."
        )
    targets = [platform] if platform else diffed
    if platform and platform not in diffed:
        raise UsageError(
            f"Run {run_id} has no {DISPLAY_NAMES[platform]} diff to decide on; "
            f"run `invsync transform --run {run_id}` first."
        )
    whole_platform = not (accounts or listing_keys or reason)
    results = []
    with open_store(ws.data_dir) as store:
        for target in targets:
            diff = read_diff(ws, run_id, target)
            chosen = diff
            if held_only and not listing_keys:
                chosen = chosen.filter(pl.col("held"))
            if accounts:
                chosen = chosen.filter(pl.col("account_id").is_in(accounts))
            if listing_keys:
                chosen = chosen.filter(pl.col("listing_key").is_in(listing_keys))
            if reason:
                chosen = chosen.filter(
                    pl.col("hold_reason").fill_null("").str.contains(reason, literal=True)
                )
            if decision == "approve" and whole_platform:
                # "approve all" means the rows that wait: one a person rejected stays rejected
                chosen = with_decisions(chosen, store).filter(
                    pl.col("decision").fill_null("") != "reject"
                )
            recorded = store.record(chosen.to_dicts(), decision, by=by)
            released = False
            if decision == "approve" and whole_platform:
                released = store.release_breaker(run_id, target, by=by)
            results.append(DecisionResult(target, decision, recorded, released))
    if listing_keys:
        found = sum(r.rows for r in results)
        if not found:
            raise UsageError(
                f"No row of run {run_id} has the listing key(s) {', '.join(listing_keys)}; "
                f"see `invsync review --run {run_id}` for the rows."
            )
    return run_id, results


# --- review ------------------------------------------------------------------------------


def with_sent(diff: pl.DataFrame, sent: list[str]) -> pl.DataFrame:
    """``diff`` with a ``sent`` column: this run already sent the row's change or its pause."""
    change = pl.col("change_id")
    pause = change + journal.PAUSE_SUFFIX
    return diff.with_columns((change.is_in(sent) | pause.is_in(sent)).alias("sent"))


def sent_changes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """The change ids this run's loads have already put on the platforms (or that the
    platform refused for good): what the next load will not send again."""
    rows = con.execute(
        "select distinct change_id from push_journal where run_id = $r"
        " and state in ('ok', 'quarantined')",
        {"r": run_id},
    ).fetchall()
    return [c for (c,) in rows]


def _move_bp() -> pl.Expr:
    """The price move of a row in basis points of its old price (rounded down)."""
    old, new = PRICE_MINOR
    return ((pl.col(new) - pl.col(old)).abs() * BP // pl.col(old)).alias("move_bp")


def review_platform(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    store: DecisionStore,
    *,
    record: bool = True,
) -> tuple[PlatformReview, pl.DataFrame]:
    diff = with_decisions(read_diff(ws, run_id, platform), store)
    counts = dict(diff.group_by("change_kind").len().iter_rows())
    breaker = breaker_for(ws, con, run_id, platform, store, record=record)
    moves = diff.filter(pl.col("change_kind").is_in(["price_up", "price_down"])).with_columns(
        _move_bp()
    )
    held = diff.filter(pl.col("held"))
    review = PlatformReview(
        platform=platform,
        rows=diff.height,
        kinds={kind: int(counts.get(kind, 0)) for kind in CHANGE_KINDS},
        held_rows=held,
        largest_moves=moves.sort("move_bp", descending=True).head(5),
        breaker=breaker,
        protected=held.filter(
            pl.col("protection").is_not_null() & (pl.col("decision").fill_null("") != "approve")
        ).height,
    )
    return review, diff


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    *,
    record: bool = True,
) -> ReviewResult:
    """Judge every diffed platform of a run, write the report and CSVs; with ``record``,
    keep the verdicts and the run's holds in the warehouse (``con`` may be read-only
    otherwise)."""
    started = time.perf_counter()
    run_id = resolve_run(con, run_id)
    platforms = diffed_platforms(ws, run_id)
    if not platforms:
        raise DataError(
            f"Run {run_id} has no diffs yet; run `invsync transform --run {run_id}` first."
        )
    out_dir = layout.review_dir(ws.data_dir, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ReviewResult(run_id=run_id, platforms={}, report=out_dir / "review.html")
    diffs = result.diffs
    sent = result.sent = sent_changes(con, run_id)
    with open_store(ws.data_dir) as store:
        for platform in platforms:
            review, diff = review_platform(ws, con, run_id, platform, store, record=record)
            result.platforms[platform] = review
            diffs[platform] = with_sent(diff, sent)
            csv_path = out_dir / f"diff_{platform}.csv"
            write_text_atomic(csv_path, csv_safe(diff).write_csv())
            result.csvs.append(csv_path)
    decided = {  # the decisions already on the rows
        change: decision
        for d in diffs.values()
        for change, decision in d.select("change_id", "decision").drop_nulls().iter_rows()
    }
    history = price_history(ws.data_dir, diffs)
    page = page_from_frames(
        run_id,
        {p: d.drop("decision") for p, d in diffs.items()},
        {
            p: (r.breaker.tripped, r.breaker.reasons, r.breaker.released)
            for p, r in result.platforms.items()
        },
        decided,
        history,
        timezone=ws.settings.display.timezone,
    )
    write_text_atomic(result.report, render_review(page, interactive=False))
    if record:
        update_run(
            con,
            run_id,
            review_seconds=time.perf_counter() - started,
            holds=result.waiting,
        )
    return result


# --- the report's price history ---------------------------------------------------------


def price_history(data_dir: Path, diffs: dict[str, pl.DataFrame]) -> dict[str, list[int]]:
    """Landed Amazon price (JPY) per ASIN over every readable snapshot, oldest first (a
    damaged one is skipped with a warning naming it; the sparklines only show)."""
    asins = sorted({a for d in diffs.values() for a in d["asin"].to_list()})
    files = readable_snapshot_files(data_dir) if asins else []
    if not files:
        return {}
    frame = read_skipping_damaged(
        files, "snapshot", lambda kept: _prices(kept, asins), (pl.exceptions.PolarsError, OSError)
    )
    return {row[0]: list(row[1]) for row in frame.iter_rows()} if frame is not None else {}


def _prices(files: list[Path], asins: list[str]) -> pl.DataFrame:
    return (
        pl.scan_parquet(files, glob=False)  # a folder named x[1] is a name, not a pattern
        .select("asin", "fetched_at", "price_jpy")
        .filter(pl.col("asin").is_in(asins) & pl.col("price_jpy").is_not_null())
        .sort("asin", "fetched_at")
        .group_by("asin", maintain_order=True)
        .agg(pl.col("price_jpy"))
        .collect()
    )
