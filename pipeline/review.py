"""Phase 2, review gate: row holds, the per-platform breaker, approvals, and the review report.

Reads the run's diffs (``<data_dir>/diffs/run_id=<id>/platform=<p>/diff.parquet``, one shape
for every platform with prices in minor units of ``currency``, held rows already marked by
transform; the run and platform come from the path), ``transform_platform_stats``, ``review_approvals``, the
``[guardrails]`` settings, and every Amazon snapshot for the price-history sparklines.
Writes ``review_breakers``, ``review_approvals`` (via :func:`approve`), the run's
``review_seconds`` and ``holds``, and ``<data_dir>/reviews/<run>/review.html`` with one CSV
per platform diff.

Row holds (decided in ``sql/transform/priced_listings.sql``): a price move beyond
``max_price_change_pct``, profit under the rule's minimum, a rule price above ``max_price``, a
source older than ``max_source_age``, a listing that drifted on the platform. The breaker
holds a platform's whole load when Amazon calls too large a share of its listings out of
stock (``max_out_of_stock_ratio``) or doubtful (``max_api_error_ratio``: api_error + unknown),
or when the snapshot covers fewer ASINs than extract recorded. ``invsync approve RUN
--platform P`` releases both for that platform; a new transform of the run voids approvals.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline import layout
from pipeline.config import Settings, Workspace
from pipeline.errors import DataError, UsageError
from pipeline.files import write_text_atomic
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS
from pipeline.pricing import BP, compile_guardrails
from pipeline.runs import resolve_run, update_run
from pipeline.schemas import CHANGE_KINDS, Diff, PricedDiff
from pipeline.snapshots import snapshot_files
from pipeline.transform import diff_path, with_path_keys
from pipeline.warehouse import read_parquet_validated, transaction

PRICE_MINOR = ("old_price_minor", "new_price_minor")  # minor units of the row's currency
STOCK_COLUMNS = ("old_quantity", "new_quantity")
HTML_ROWS_PER_PLATFORM = 1_000  # the CSVs carry every row; the page stays light


@dataclass(frozen=True)
class Breaker:
    """The run-level verdict for one platform."""

    platform: str
    tripped: bool
    reasons: list[str]
    approved: bool

    @property
    def holds_load(self) -> bool:
        return self.tripped and not self.approved


@dataclass
class PlatformReview:
    platform: str
    rows: int
    kinds: dict[str, int]
    held_rows: pl.DataFrame  # rows held by a row rule (approved or not)
    largest_moves: pl.DataFrame
    breaker: Breaker
    approved: bool

    @property
    def waiting(self) -> int:
        """Held rows not yet released."""
        return 0 if self.approved else self.held_rows.height

    @property
    def is_held(self) -> bool:
        return self.breaker.holds_load or self.waiting > 0


@dataclass
class ReviewResult:
    run_id: str
    platforms: dict[str, PlatformReview]
    report: Path
    csvs: list[Path] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return any(p.is_held for p in self.platforms.values())

    def hold_message(self) -> str | None:
        """One sentence: what is held, why, and how to release it; None when nothing is."""
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
            f"Run {self.run_id} is held for review: {', and '.join(parts)}; check "
            f"{self.report} (or `invsync review --run {self.run_id}`) and release with {commands}."
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
    return with_path_keys(read_parquet_validated(path, PricedDiff), run_id, platform)


def _diffed_platforms(ws: Workspace, run_id: str) -> list[str]:
    return [p for p in PLATFORMS if diff_path(ws.data_dir, run_id, p).is_file()]


def _approved(con: duckdb.DuckDBPyConnection, run_id: str, platform: str) -> bool:
    rows = con.execute(
        "select count(*) from review_approvals where run_id = $r and platform = $p",
        {"r": run_id, "p": platform},
    ).fetchall()
    return bool(rows[0][0])


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
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, platform: str
) -> Breaker:
    """Judge one platform of a run from transform's counts, record the verdict, return it."""
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
    con.execute(
        "insert or replace into review_breakers values ($r, $p, $t, $why, now())",
        {"r": run_id, "p": platform, "t": bool(reasons), "why": "; ".join(reasons) or None},
    )
    return Breaker(platform, bool(reasons), reasons, _approved(con, run_id, platform))


# --- the interface load uses -------------------------------------------------------------


def loadable_rows(
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, platform: str
) -> tuple[pl.DataFrame, str | None]:
    """The diff rows of run/platform cleared for load (not held, or held and approved),
    validated by :class:`~pipeline.schemas.Diff` (with the run_id and platform of the file's
    path), and the reason the whole platform is held (breaker
    tripped and not approved) — then the frame is empty."""
    if platform not in PLATFORMS:
        raise UsageError(f"Platform {platform!r} is not one of {', '.join(PLATFORMS)}.")
    diff = read_diff(ws, run_id, platform)
    breaker = breaker_for(ws, con, run_id, platform)
    if breaker.holds_load:
        reason = (
            f"{DISPLAY_NAMES[platform]} load of run {run_id} is held: "
            f"{'; '.join(breaker.reasons)}; release it with "
            f"`invsync approve {run_id} --platform {platform}`."
        )
        return Diff.validate(diff.clear(), lazy=True), reason
    if not breaker.approved:
        diff = diff.filter(~pl.col("held"))
    return Diff.validate(diff, lazy=True), None


# --- approve -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    platform: str
    held_rows: int
    breaker: bool  # a tripped breaker was released
    already: bool  # it had been approved before


def approve(
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, platform: str | None = None
) -> list[Approval]:
    """Release a run's held rows and tripped breaker, for one platform or every diffed one."""
    run_id = resolve_run(con, run_id)
    diffed = _diffed_platforms(ws, run_id)
    if platform is not None and platform not in PLATFORMS:
        raise UsageError(
            f"Platform {platform!r} is not one of {', '.join(PLATFORMS)}; "
            f"use `invsync approve {run_id} --platform base` or `--platform ebay`."
        )
    targets = [platform] if platform else diffed
    if not targets or (platform and platform not in diffed):
        raise UsageError(
            f"Run {run_id} has no diff to approve{' for ' + platform if platform else ''}; "
            f"run `invsync transform --run {run_id}` first."
        )
    approvals = []
    with transaction(con):
        for target in targets:
            held = int(read_diff(ws, run_id, target)["held"].sum())
            breaker = breaker_for(ws, con, run_id, target)
            if breaker.approved:
                approvals.append(Approval(target, held, breaker.tripped, already=True))
                continue
            con.execute(
                "insert into review_approvals values ($r, $p, now(), $n, $b)",
                {"r": run_id, "p": target, "n": held, "b": breaker.tripped},
            )
            approvals.append(Approval(target, held, breaker.tripped, already=False))
    return approvals


# --- review ------------------------------------------------------------------------------


def _move_bp() -> pl.Expr:
    """The price move of a row in basis points of its old price (rounded down)."""
    old, new = PRICE_MINOR
    return ((pl.col(new) - pl.col(old)).abs() * BP // pl.col(old)).alias("move_bp")


def review_platform(
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, platform: str
) -> tuple[PlatformReview, pl.DataFrame]:
    diff = read_diff(ws, run_id, platform)
    counts = dict(diff.group_by("change_kind").len().iter_rows())
    breaker = breaker_for(ws, con, run_id, platform)
    moves = diff.filter(pl.col("change_kind").is_in(["price_up", "price_down"])).with_columns(
        _move_bp()
    )
    review = PlatformReview(
        platform=platform,
        rows=diff.height,
        kinds={kind: int(counts.get(kind, 0)) for kind in CHANGE_KINDS},
        held_rows=diff.filter(pl.col("held")),
        largest_moves=moves.sort("move_bp", descending=True).head(5),
        breaker=breaker,
        approved=breaker.approved,
    )
    return review, diff


def run(ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> ReviewResult:
    """Judge every diffed platform of a run, write the report and CSVs, record the holds."""
    started = time.perf_counter()
    run_id = resolve_run(con, run_id)
    platforms = _diffed_platforms(ws, run_id)
    if not platforms:
        raise DataError(
            f"Run {run_id} has no diffs yet; run `invsync transform --run {run_id}` first."
        )
    out_dir = layout.review_dir(ws.data_dir, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ReviewResult(run_id=run_id, platforms={}, report=out_dir / "review.html")
    diffs = {}
    for platform in platforms:
        review, diff = review_platform(ws, con, run_id, platform)
        result.platforms[platform] = review
        diffs[platform] = diff
        csv_path = out_dir / f"diff_{platform}.csv"
        write_text_atomic(csv_path, diff.write_csv())
        result.csvs.append(csv_path)
    history = price_history(ws.data_dir, diffs)
    write_text_atomic(result.report, render_report(result, diffs, history))
    update_run(
        con,
        run_id,
        review_seconds=time.perf_counter() - started,
        holds=sum(p.waiting for p in result.platforms.values()),
    )
    return result


# --- the HTML report ---------------------------------------------------------------------


def price_history(data_dir: Path, diffs: dict[str, pl.DataFrame]) -> dict[str, list[int]]:
    """Landed Amazon price (JPY) per ASIN over every snapshot, oldest first."""
    asins = sorted({a for d in diffs.values() for a in d["asin"].to_list()})
    files = snapshot_files(data_dir)
    if not asins or not files:
        return {}
    frame = (
        pl.scan_parquet(files)
        .select("asin", "fetched_at", "price_jpy")
        .filter(pl.col("asin").is_in(asins) & pl.col("price_jpy").is_not_null())
        .sort("asin", "fetched_at")
        .group_by("asin", maintain_order=True)
        .agg(pl.col("price_jpy"))
        .collect()
    )
    return {row[0]: list(row[1]) for row in frame.iter_rows()}


def sparkline_svg(prices: list[int], width: int = 120, height: int = 28) -> str:
    """A small inline SVG polyline of ``prices`` (JPY); an empty string with no data."""
    if not prices:
        return ""
    low, high = min(prices), max(prices)
    span = max(high - low, 1)
    step = width / max(len(prices) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (p - low) * (height - 4) / span:.1f}"
        for i, p in enumerate(prices)
    )
    last_x, last_y = points.split(" ")[-1].split(",")
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" data-points="{len(prices)}"><title>¥{low:,}–¥{high:,} over '
        f"{len(prices)} snapshots</title>"
        f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{points}"/>'
        f'<circle cx="{last_x}" cy="{last_y}" r="2" fill="#36c"/></svg>'
    )


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;vertical-align:middle}
th{background:#f3f3f3}
td.t{text-align:left}
tr.held td{background:#fff3e0}
.breaker.tripped{color:#b00;font-weight:600}
.breaker.ok{color:#070}
code{font-size:90%}
"""


def _money(value: int | None, currency: str) -> str:
    """An amount in minor units of ``currency`` (JPY: yen, USD: cents) as people write it."""
    if value is None:
        return ""
    if currency == "USD":
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value) // 100:,}.{abs(value) % 100:02d}"
    return f"¥{value:,}"


def _cell(value: object, cls: str = "") -> str:
    text = "" if value is None else html.escape(str(value))
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def _platform_section(
    review: PlatformReview, diff: pl.DataFrame, history: dict[str, list[int]]
) -> str:
    p = review.platform
    name = DISPLAY_NAMES[p]
    old_p, new_p = PRICE_MINOR
    old_s, new_s = STOCK_COLUMNS
    profit = "expected_profit_minor"
    b = review.breaker
    if b.tripped:
        state = "approved" if b.approved else "holds the whole load"
        breaker = (
            f'<p class="breaker tripped" data-tripped="true" data-approved="{str(b.approved).lower()}">'
            f"Breaker tripped ({state}): {html.escape('; '.join(b.reasons))}.</p>"
        )
    else:
        breaker = '<p class="breaker ok" data-tripped="false">Breaker: not tripped.</p>'
    counts = "".join(f'<td data-kind="{k}">{review.kinds[k]}</td>' for k in CHANGE_KINDS) + (
        f'<td data-kind="total">{review.rows}</td>'
        f'<td data-kind="held">{review.held_rows.height}</td>'
    )
    head = "".join(f"<th>{k}</th>" for k in [*CHANGE_KINDS, "total", "held"])
    shown = (
        diff.with_columns(_move_bp())
        .sort(["held", "move_bp"], descending=[True, True], nulls_last=True)
        .head(HTML_ROWS_PER_PLATFORM)
    )
    body = []
    for row in shown.iter_rows(named=True):
        fetched = row["source_fetched_at"]
        source = f"{row['source_status']} · run {row['source_run_id']}"
        if fetched is not None:
            source += f" · {fetched:%Y-%m-%d %H:%M} UTC"
        if row["source_fallback_age_seconds"] is not None:
            source += f" · fallback {row['source_fallback_age_seconds'] / 3600:.1f} h old"
        body.append(
            f'<tr class="{"held" if row["held"] else ""}" data-listing="{html.escape(row["listing_key"])}"'
            f' data-held="{str(row["held"]).lower()}">'
            + _cell(row["account_id"], "t")
            + _cell(row["listing_key"], "t")
            + _cell(row["asin"], "t")
            + _cell(row["change_kind"], "t")
            + _cell(
                f"{_money(row[old_p], row['currency'])} → {_money(row[new_p], row['currency'])}"
            )
            + _cell(f"{row[old_s]} → {row[new_s]}")
            + _cell(_money(row["cost_jpy"], "JPY"))
            + _cell(_money(row[profit], row["currency"]))
            + _cell(source, "t")
            + _cell(row["hold_reason"] or "", "t")
            + f"<td>{sparkline_svg(history.get(row['asin'], []))}</td></tr>"
        )
    more = (
        f"<p>{diff.height - shown.height} more rows are in diff_{p}.csv.</p>"
        if diff.height > shown.height
        else ""
    )
    columns = "".join(
        f"<th>{c}</th>"
        for c in [
            "account", "listing", "ASIN", "change", "price", "stock", "Amazon cost",
            "expected profit", "source", "held because", "Amazon price history",
        ]
    )  # fmt: skip
    return (
        f'<section class="platform" id="platform-{p}" data-platform="{p}">'
        f"<h2>{name}</h2>{breaker}"
        f'<table class="counts"><tr>{head}</tr><tr>{counts}</tr></table>'
        f'<table class="rows"><thead><tr>{columns}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f"{more}</section>"
    )


def render_report(
    result: ReviewResult, diffs: dict[str, pl.DataFrame], history: dict[str, list[int]]
) -> str:
    """review.html: self-contained (inline CSS and SVG, no scripts, no outside requests)."""
    total = sum(p.rows for p in result.platforms.values())
    held = sum(p.held_rows.height for p in result.platforms.values())
    sections = "".join(
        _platform_section(review, diffs[platform], history)
        for platform, review in result.platforms.items()
    )
    verdict = html.escape(result.hold_message() or "Nothing is held; the load may proceed.")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>invsync review — run {html.escape(result.run_id)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Review of run <code>{html.escape(result.run_id)}</code></h1>"
        f'<p id="summary" data-rows="{total}" data-held="{held}">{total} changes, {held} held '
        f"by a row rule. Generated {generated}.</p>"
        f'<p id="verdict" data-held="{str(result.held).lower()}">{verdict}</p>'
        f"{sections}</body></html>"
    )
