"""What-if replay: a candidate configuration's pricing and guardrail rules over the stored
history, beside the rules in force (docs/whatif.md).

Stage: a read-side report (``invsync whatif``). Reads, for every run since a moment, its
Amazon snapshot ``snapshots/amazon/dt=*/run_id=<run>/part-0.parquet``, the listings as they
stood at the run ``listings/run_id=<run>/platform=<p>/listings.parquet`` and the run's
``priced_at``, ``fx_jpy_per_usd`` and ``unique_asins`` from ``exports/runs/runs.parquet``; and
two configurations. Writes nothing: it works in an in-memory DuckDB over those Parquet
files, never opens the warehouse and never calls an API (the command writes the report).

Nothing of the pricing is written twice: the transform's own SQL
(``sql/transform/observed_listings.sql``, ``priced_listings.sql``, ``platform_stats.sql``)
prices every run of the window at once, keyed by ``replay_run`` (the live transform keys
its one run as ``''``), over a ``run_listings`` view of the stored listings and the rule
frames :mod:`pipeline.pricing` compiles from each configuration at the run's own FX rate
and moment. The run breaker is :func:`pipeline.review.breaker_verdict`, what a load would
send is :func:`pipeline.decisions.next_action` (no person's decision), and the calls it
costs are :func:`pipeline.load.plan.push_calls`.

Each run is replayed over the listings that actually stood at it: the candidate's own
pushes are not carried into the next run, but a change the candidate already sent at the
listing's previous run is not counted again (:func:`_without_repeats`; docs/whatif.md,
"What it replays").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from pipeline import display, layout, pricing
from pipeline.config import Settings
from pipeline.decisions import next_action
from pipeline.errors import UsageError
from pipeline.load.plan import push_calls
from pipeline.platforms import CURRENCY, PLATFORMS
from pipeline.review import breaker_verdict
from pipeline.sql import load_sql, run_sql
from pipeline.warehouse import duckdb_file

IN_FORCE = "in force"  # the rule set whose pushes the history holds
SKIP_NO_LISTINGS = "no listings file (transformed before invsync kept the listings as they stood)"
SKIP_NO_SNAPSHOT = "no snapshot file"
# what one replayed row keeps (of sql/transform/priced_listings.sql's columns)
_KEPT = (
    "replay_run", "platform", "account_id", "listing_key", "api", "currency", "change_kind",
    "old_price", "new_price", "old_quantity", "new_quantity", "old_visible", "new_visible",
    "held", "protection", "protection_reason", "expected_profit",
    "current_profit", "cost_jpy",
)  # fmt: skip


@dataclass(frozen=True)
class RuleSet:
    """One configuration replayed: its name in the report and where it came from."""

    name: str  # "in force" | "candidate"
    settings: Settings
    source: str  # the configuration file, or "defaults"


@dataclass(frozen=True)
class StoredRun:
    """One run the replay prices: its moment, its FX rate and the files it reads."""

    run_id: str
    priced_at: datetime  # UTC: the transform's as_of
    fx_jpy_per_usd: Decimal | None  # the rate eBay was priced at; None without eBay
    platforms: tuple[str, ...]  # the platforms with a listings file


@dataclass
class History:
    """The runs of the window that can be replayed, and those that cannot (with why)."""

    data_dir: Path
    since: datetime  # UTC
    runs: list[StoredRun]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> runs

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass
class Replay:
    """What each rule set would have done, per run.

    ``accounts``: one row per rule set, run, platform and account — changes, row holds,
    the rows and calls a load would send, listings left buyable below cost and the expected
    margin (minor units of ``currency``) after the run. ``breakers``: one row per rule set,
    run and platform — whether the run breaker would hold the platform's load, and why.
    ``below_cost``: the listings each rule set would leave below cost, per run.
    """

    history: History
    rule_sets: list[RuleSet]
    accounts: pl.DataFrame
    breakers: pl.DataFrame
    below_cost: pl.DataFrame
    seconds: float = 0.0


# --- the history --------------------------------------------------------------------------


def parse_since(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """``7d`` / ``30d`` (days back from ``now``) or a date ``2026-11-01`` (its midnight in
    ``zone``), as a UTC moment; anything else is a usage error."""
    value = text.strip()
    try:
        if value.endswith("d") and value[:-1].isdigit():
            return now - timedelta(days=int(value[:-1]))
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        day = None
    if day is None:
        raise UsageError(
            f"--since {text!r} is neither a number of days (7d, 30d) nor a date (2026-11-01); "
            "give one of those."
        )
    return day.replace(tzinfo=zone).astimezone(UTC)


def display_zone(settings: Settings) -> ZoneInfo:
    """The zone days are counted in: ``[display] timezone`` (default Asia/Tokyo)."""
    return display.zone(settings.display.timezone)


def _runs_export(data_dir: Path) -> Path:
    """The warehouse's runs table as exported (``exports/runs/runs.parquet``; a data
    directory a sync has not upgraded yet keeps it at ``exports/runs.parquet``)."""
    export = layout.export_path(data_dir, "runs")
    legacy = layout.legacy_export_path(data_dir, "runs")
    return legacy if not export.is_file() and legacy.is_file() else export


def find_history(data_dir: Path, since: datetime) -> History:
    """The transformed runs priced at or after ``since`` (``exports/runs/runs.parquet``) whose
    snapshot and listings files are on disk; a usage error when there is none."""
    export = _runs_export(data_dir)
    if not export.is_file():
        raise UsageError(
            f"There is no run history in {data_dir} ({export} is missing); run "
            "`invsync sync` a few times first, then ask again."
        )
    runs = pl.read_parquet(export)
    if "priced_at" not in runs.columns:
        runs = runs.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("priced_at"))
    if "fx_jpy_per_usd" not in runs.columns:
        runs = runs.with_columns(pl.lit(None, pl.Decimal(12, 4)).alias("fx_jpy_per_usd"))
    moment = pl.coalesce("priced_at", "started_at")
    rows = runs.filter(
        moment.is_not_null() & (moment >= since) & pl.col("transform_seconds").is_not_null()
    ).sort(moment)
    history = History(data_dir=data_dir, since=since, runs=[])
    for row in rows.iter_rows(named=True):
        _add_run(history, row)
    if not history.runs:
        skipped = "; ".join(f"{n} with {why}" for why, n in history.skipped.items())
        raise UsageError(
            f"No run since {since:%Y-%m-%d %H:%M} UTC can be replayed"
            + (f" ({skipped})" if skipped else "")
            + "; run `invsync sync` first, or widen --since."
        )
    return history


def _add_run(history: History, row: dict[str, Any]) -> None:
    run_id = str(row["run_id"])
    if not layout.snapshot_path(history.data_dir, run_id).is_file():
        history.skipped[SKIP_NO_SNAPSHOT] = history.skipped.get(SKIP_NO_SNAPSHOT, 0) + 1
        return
    platforms = tuple(
        p for p in PLATFORMS if layout.listing_history_path(history.data_dir, run_id, p).is_file()
    )
    if not platforms or row["priced_at"] is None:
        history.skipped[SKIP_NO_LISTINGS] = history.skipped.get(SKIP_NO_LISTINGS, 0) + 1
        return
    fx = row["fx_jpy_per_usd"]
    history.runs.append(
        StoredRun(
            run_id=run_id,
            priced_at=row["priced_at"].astimezone(UTC),
            fx_jpy_per_usd=None if fx is None else Decimal(fx),
            platforms=platforms,
        )
    )


# --- the replay ---------------------------------------------------------------------------


def _files(paths: list[Path]) -> list[str]:
    """Paths as ``read_parquet`` must be given them to read exactly those files."""
    return [duckdb_file(p.resolve()) for p in paths]


def open_history(history: History) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the window's stored listings (as the ``run_listings``
    view the transform SQL reads), its snapshots (``run_snapshot``) and ``runs``, each row
    keyed by its ``replay_run``."""
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")  # as every invsync connection: timestamps are UTC
    data_dir = history.data_dir
    export = _runs_export(data_dir)
    con.execute("create temp table runs as select * from read_parquet($f)", {"f": _files([export])})
    listing_files = [
        layout.listing_history_path(data_dir, run.run_id, platform)
        for run in history.runs
        for platform in run.platforms
    ]
    run_sql(con, "whatif/replay_listings", {"files": _files(listing_files)})
    run_sql(con, "transform/run_listings_stored")
    snapshot_files = [layout.snapshot_path(data_dir, run.run_id) for run in history.runs]
    run_sql(con, "whatif/replay_snapshots", {"files": _files(snapshot_files)})
    return con


def _rules(rule_set: RuleSet, history: History) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``pricing_rules`` (one row per run and account, at the run's FX rate, with the
    staleness limit of its moment) and ``markup_bands`` (per account; bands are in yen, so
    no rate changes them)."""
    settings = rule_set.settings
    max_age = timedelta(microseconds=pricing.compile_guardrails(settings).max_source_age_us)
    frames = []
    for run in history.runs:
        rules = pricing.compile_rules(settings, "base", None) if "base" in run.platforms else []
        if "ebay" in run.platforms and run.fx_jpy_per_usd is not None:
            fx = pricing.FxRate(run.fx_jpy_per_usd, run.priced_at, f"run {run.run_id}")
            rules += pricing.compile_rules(settings, "ebay", fx)
        frames.append(
            pricing.rules_frame(rules).with_columns(
                pl.lit(run.run_id).alias("replay_run"),
                pl.lit(run.priced_at - max_age).dt.cast_time_unit("us").alias("stale_before"),
            )
        )
    demo = pricing.FxRate(pricing.SANDBOX_DEMO_RATE, datetime.now(UTC), "bands only")
    every = [r for p in PLATFORMS for r in pricing.compile_rules(settings, p, demo)]
    return pl.concat(frames), pricing.bands_frame(every)


def _priced(
    con: duckdb.DuckDBPyConnection, rule_set: RuleSet, history: History, *, change_ids: bool
) -> pl.DataFrame:
    """Every listing of every run of the window priced by ``rule_set`` (the transform's SQL,
    all rows), with the platform_stats counts registered for the breaker."""
    rules, bands = _rules(rule_set, history)
    guard = pricing.compile_guardrails(rule_set.settings)
    con.register("pricing_rules", rules.to_arrow())
    con.register("markup_bands", bands.to_arrow())
    run_sql(con, "transform/observed_listings")
    kept = ", ".join(_KEPT) + (", hold_reason, change_id" if change_ids else "")
    table = con.sql(
        f"select {kept} from ({load_sql('transform/priced_listings')})",
        params={
            "max_move_bp": guard.max_move_bp,
            "max_source_age_s": guard.max_source_age_us / 1_000_000,
            "changes_only": False,
        },
    ).to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _stats(con: duckdb.DuckDBPyConnection, priced: pl.DataFrame) -> pl.DataFrame:
    """Per run and platform: platform_stats' counts (what the breaker judges) of the rule
    set whose rules ``observed_listings`` reads now."""
    changed = priced.filter(pl.col("change_kind").is_not_null()).select(
        "replay_run", "platform", "held"
    )
    con.register("priced_changes", changed.to_arrow())
    try:
        return con.sql(
            load_sql("transform/platform_stats"), params={"run_id": "", "as_of": None}
        ).pl()
    finally:
        con.unregister("priced_changes")


def _breakers(stats: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Per run and platform: the review's breaker verdict over platform_stats' counts."""
    rows = []
    for row in stats.iter_rows(named=True):
        reasons = breaker_verdict(row, settings)
        rows.append(
            {
                "replay_run": row["run_id"],
                "platform": row["platform"],
                "holds_load": bool(reasons),
                "reasons": "; ".join(reasons) or None,
            }
        )
    schema = {"replay_run": pl.String, "platform": pl.String, "holds_load": pl.Boolean,
              "reasons": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _accounts_key(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The accounts a rule set prices: what platform_stats' counts depend on (the breaker's
    counts are of listings and observations, not of prices)."""
    return tuple(sorted((a.platform, a.id) for a in settings.accounts))


def _after(priced: pl.DataFrame, breakers: pl.DataFrame, fx: pl.DataFrame) -> pl.DataFrame:
    """Each listing after what a load would send: ``action`` (change, raise, pause or
    null), the price, quantity and visibility after it, whether it is left buyable below
    its cost, and its expected profit there."""
    rows = priced.join(
        breakers.select("replay_run", "platform", "holds_load"),
        on=["replay_run", "platform"],
        how="left",
    ).with_columns(pl.lit(None, pl.String).alias("decision"), pl.col("holds_load").fill_null(False))
    # a load sends only diff rows: a listing nothing changes has no action
    action = (
        pl.when(pl.col("change_kind").is_null())
        .then(pl.lit(None, pl.String))
        .when(pl.col("holds_load"))
        .then(next_action(holds_load=True))
        .otherwise(next_action(holds_load=False))
    )
    rows = rows.with_columns(action.alias("action"))
    applied = pl.col("action").is_in(["change", "raise"]).fill_null(False)
    paused = (pl.col("action") == "pause").fill_null(False)
    rows = rows.with_columns(
        pl.when(applied).then("new_price").otherwise("old_price").alias("price_after"),
        pl.when(applied)
        .then("new_quantity")
        .when(paused)
        .then(0)
        .otherwise("old_quantity")
        .alias("quantity_after"),
        pl.when(applied).then("new_visible").otherwise("old_visible").alias("visible_after"),
        pl.when(applied).then("expected_profit").otherwise("current_profit").alias("profit_after"),
    ).join(fx, on="replay_run", how="left")
    buyable = (pl.col("quantity_after") > 0) & pl.col("visible_after").fill_null(True)
    # below cost: BASE yen under the cost in yen; eBay cents × rate under cost × 100 (both
    # sides integers: the rate is kept × 10,000, so no rounding at all)
    under = (
        pl.when(pl.col("platform") == "base")
        .then(pl.col("price_after") < pl.col("cost_jpy"))
        .otherwise(
            pl.col("price_after") * pl.col("fx_scaled")
            < pl.col("cost_jpy") * pricing.CENTS_PER_USD * pricing.FX_SCALE
        )
    )
    return rows.with_columns(
        buyable.alias("buyable"),
        (buyable & under).fill_null(False).alias("below_cost"),
    )


_SENT = pl.col("action").is_in(["change", "raise", "pause"]).fill_null(False)
_KEY = ["platform", "account_id", "listing_key"]
_STATE_AFTER = ("price_after", "quantity_after", "visible_after")


def _sent_after(after: pl.DataFrame) -> pl.DataFrame:
    """Per run and listing, the state a rule set's sent rows would leave it in."""
    return after.filter(_SENT).select("replay_run", *_KEY, *_STATE_AFTER)


def _without_repeats(
    after: pl.DataFrame, moments: pl.DataFrame, in_force_sent: pl.DataFrame | None
) -> pl.DataFrame:
    """A candidate's rows less the changes it already sent at its previous replayed run.

    Each run is replayed over the listings that really stood, so a candidate that reprices a
    listing at 09:00 finds the old price again at 12:00 and decides the same change at every
    run: counted as such, one new markup would cost a change and a call per listing per
    run. Where the candidate sent a change at the listing's previous run that the rules in
    force did not (``in_force_sent``: else the history would hold it, and a change decided
    again means the platform did not take it, which counts), and sends one now that leaves
    the listing at the same price, stock and visibility, the listing would already stand
    there: that row is no change and no call (``action`` and ``change_kind`` null). The
    rules in force need no such correction: the history they replay holds their own pushes.
    """
    order = moments.sort("priced_at").with_row_index("run_no").select("replay_run", "run_no")
    sent = (
        after.filter(_SENT).select("replay_run", *_KEY, *_STATE_AFTER).join(order, on="replay_run")
    )
    if in_force_sent is not None:  # the changes the rules in force sent too are in the history
        sent = sent.join(
            in_force_sent, on=["replay_run", *_KEY, *_STATE_AFTER], how="anti", nulls_equal=True
        )
    # the previous run's own sends, moved to the run after it: a send there now is a repeat
    previous = sent.select(*_KEY, *_STATE_AFTER, (pl.col("run_no") + 1).alias("run_no"))
    now = (
        after.filter(_SENT).select("replay_run", *_KEY, *_STATE_AFTER).join(order, on="replay_run")
    )
    repeats = now.join(previous, on=[*_KEY, *_STATE_AFTER, "run_no"], nulls_equal=True).select(
        "replay_run", *_KEY, pl.lit(True).alias("_repeat")
    )
    marked = after.join(repeats, on=["replay_run", *_KEY], how="left")
    repeat = pl.col("_repeat").fill_null(False)
    return marked.with_columns(
        pl.when(repeat).then(None).otherwise("action").alias("action"),
        pl.when(repeat).then(None).otherwise("change_kind").alias("change_kind"),
    ).select(after.columns)


def _fx_frame(history: History) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "replay_run": [r.run_id for r in history.runs],
            "fx_scaled": [
                None if r.fx_jpy_per_usd is None else pricing.to_bp(r.fx_jpy_per_usd)
                for r in history.runs
            ],
        },
        schema={"replay_run": pl.String, "fx_scaled": pl.Int64},
    )


def _per_account(after: pl.DataFrame, rule_set: RuleSet) -> pl.DataFrame:
    """One row per run, platform and account: the counts, calls and margin."""
    knobs = rule_set.settings.load
    sent = (
        after.filter(pl.col("action").is_not_null())
        .group_by("replay_run", "platform", "account_id", "api")
        .len("rows")
    )
    calls = (
        sent.with_columns(
            pl.struct("platform", "api", "rows")
            .map_elements(
                lambda r: push_calls(r["platform"], r["api"], r["rows"], knobs),
                return_dtype=pl.Int64,
            )
            .alias("calls")
        )
        .group_by("replay_run", "platform", "account_id")
        .agg(pl.col("rows").sum().alias("sent"), pl.col("calls").sum())
    )
    counts = after.group_by("replay_run", "platform", "account_id").agg(
        # BASE rows carry no currency in the run_listings shape: yen, as the diff says
        pl.col("currency").fill_null(pl.col("platform").replace_strict(CURRENCY)).first(),
        pl.len().alias("listings"),
        pl.col("change_kind").is_not_null().sum().alias("changes"),
        pl.col("held").sum().alias("holds"),
        pl.col("below_cost").sum().alias("below_cost"),
        pl.col("profit_after").filter(pl.col("buyable")).sum().alias("margin_minor"),
    )
    return counts.join(calls, on=["replay_run", "platform", "account_id"], how="left").with_columns(
        pl.col("sent").fill_null(0).cast(pl.Int64),
        pl.col("calls").fill_null(0).cast(pl.Int64),
        pl.col("changes").cast(pl.Int64),
        pl.col("holds").cast(pl.Int64),
        pl.col("below_cost").cast(pl.Int64),
        pl.col("margin_minor").cast(pl.Int64),
    )


def replay(history: History, rule_sets: list[RuleSet]) -> Replay:
    """Replay every rule set over the history (module docstring)."""
    import time

    started = time.perf_counter()
    moments = pl.DataFrame(
        {
            "replay_run": [r.run_id for r in history.runs],
            "priced_at": [r.priced_at for r in history.runs],
        },
        schema={"replay_run": pl.String, "priced_at": pl.Datetime("us", "UTC")},
    )
    con = open_history(history)
    fx = _fx_frame(history)
    accounts, breakers, below = [], [], []
    in_force_sent: pl.DataFrame | None = None
    counted: dict[tuple[tuple[str, str], ...], pl.DataFrame] = {}
    try:
        for rule_set in rule_sets:
            priced = _priced(con, rule_set, history, change_ids=False)
            key = _accounts_key(rule_set.settings)
            if key not in counted:
                counted[key] = _stats(con, priced)
            verdicts = _breakers(counted[key], rule_set.settings)
            after = _after(priced, verdicts, fx)
            if rule_set.name == IN_FORCE:
                in_force_sent = _sent_after(after)
            else:
                after = _without_repeats(after, moments, in_force_sent)
            name = pl.lit(rule_set.name).alias("rule_set")
            accounts.append(_per_account(after, rule_set).with_columns(name))
            breakers.append(verdicts.with_columns(name))
            below.append(
                after.filter("below_cost")
                .select("replay_run", "platform", "account_id", "listing_key")
                .with_columns(name)
            )
    finally:
        con.close()
    return Replay(
        history=history,
        rule_sets=rule_sets,
        accounts=pl.concat(accounts)
        .join(moments, on="replay_run")
        .rename({"replay_run": "run_id"}),
        breakers=pl.concat(breakers)
        .join(moments, on="replay_run")
        .rename({"replay_run": "run_id"}),
        below_cost=pl.concat(below).join(moments, on="replay_run").rename({"replay_run": "run_id"}),
        seconds=time.perf_counter() - started,
    )


def replayed_changes(history: History, rule_set: RuleSet) -> pl.DataFrame:
    """The change set ``rule_set`` decides for every run of the history: one row per changed
    listing with ``run_id``, ``platform``, the diff's ``change_id``, ``change_kind``, new
    price and quantity, ``held`` and ``hold_reason`` (what docs/whatif.md compares with
    the stored diffs)."""
    con = open_history(history)
    try:
        priced = _priced(con, rule_set, history, change_ids=True)
    finally:
        con.close()
    return priced.filter(pl.col("change_kind").is_not_null()).select(
        pl.col("replay_run").alias("run_id"),
        "platform",
        "account_id",
        "listing_key",
        "change_id",
        "change_kind",
        pl.col("new_price").alias("new_price_minor"),
        "new_quantity",
        "held",
        "hold_reason",
    )


# --- per day ------------------------------------------------------------------------------


def daily(result: Replay, zone: ZoneInfo) -> pl.DataFrame:
    """One row per day (in ``zone``) and rule set: runs, changes, row holds, breaker holds
    (platform loads the breaker would hold), calls, distinct listings left below cost by at
    least one run of the day."""
    day = pl.col("priced_at").dt.convert_time_zone(str(zone)).dt.date().alias("day")
    counts = result.accounts.group_by(day, "rule_set").agg(
        pl.col("run_id").n_unique().alias("runs"),
        pl.col("changes").sum(),
        pl.col("holds").sum(),
        pl.col("sent").sum(),
        pl.col("calls").sum(),
    )
    tripped = result.breakers.filter("holds_load").group_by(day, "rule_set").len("breaker_holds")
    below = result.below_cost.group_by(day, "rule_set").agg(
        pl.struct("platform", "account_id", "listing_key").n_unique().alias("below_cost")
    )
    out = counts.join(tripped, on=["day", "rule_set"], how="left").join(
        below, on=["day", "rule_set"], how="left"
    )
    return out.with_columns(
        pl.col("breaker_holds").fill_null(0).cast(pl.Int64),
        pl.col("below_cost").fill_null(0).cast(pl.Int64),
        pl.col("runs").cast(pl.Int64),
    ).sort("day", "rule_set")


def daily_margin(result: Replay, zone: ZoneInfo) -> pl.DataFrame:
    """One row per day, rule set and account: the expected margin after the day's last run
    (minor units of ``currency``) — what the buyable listings would earn, one sale each."""
    day = pl.col("priced_at").dt.convert_time_zone(str(zone)).dt.date().alias("day")
    last = result.accounts.with_columns(day).filter(
        pl.col("priced_at") == pl.col("priced_at").max().over("day", "rule_set", "account_id")
    )
    return last.select(
        "day", "rule_set", "platform", "account_id", "currency", "margin_minor", "listings"
    ).sort("day", "rule_set", "account_id")
