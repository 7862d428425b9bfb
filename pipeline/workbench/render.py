"""The review page: its model, what the next load would send, and the one template that draws it.

Stage: review. Pure: takes the run's diff frames (as :func:`pipeline.review.read_diff`
returns them), the breaker verdicts, the decisions (``change_id -> decision``) and the Amazon
price history, and returns HTML text. Reads and writes no file and no database;
:mod:`pipeline.review` writes the static page, :mod:`pipeline.workbench.server` serves the
interactive one.

One template, ``templates/review.html.j2`` (Jinja2, autoescaped), draws both. The static page
carries every fact in its HTML and has no script (its Content-Security-Policy forbids
scripts); the interactive page adds filters, sorting, decision buttons and a small inline
script whose nonce is the only one its policy allows. Neither page requests anything from
outside: styles and sparklines are inline, and ``connect-src 'self'`` keeps the script on
the workbench's own origin.

Money is integer minor units of the row's ``currency`` (JPY: yen, USD: cents) and is always
shown with its unit (``¥1,680``, ``$139.99``); the Amazon cost is yen. Times are stored in
UTC and shown in the page's ``timezone`` (``[display] timezone``) with the zone named.

What the next load sends (:func:`next_load`), per platform:

* nothing while the platform's breaker is tripped and not released;
* nothing for a rejected row;
* the change for a row that is not held, or held and approved;
* the row's protective action (``raise``: the price only, ``pause``: stock to 0) for a held
  row that waits and has a ``protection``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2
import polars as pl
from markupsafe import Markup

from pipeline.decisions import next_action, waits_for_a_person
from pipeline.display import DEFAULT_TIMEZONE, local, short, zone_name
from pipeline.money import money
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS
from pipeline.schemas import CHANGE_KINDS

ROW_CAP = 1_000  # rows per platform drawn in a page; the CSV carries every row
PLAN_LISTED = 200  # rows per platform listed in the page's "next load" panel (all are counted)
BP = 10_000

# Columns of the diff the page uses that main's PricedDiff is gaining; a frame without them
# (an older run) gets them as nulls, so the page still draws (without decision buttons).
OPTIONAL_COLUMNS: dict[str, pl.DataType] = {
    "change_id": pl.String(),
    "title": pl.String(),
    "current_profit_minor": pl.Int64(),
    "protection": pl.String(),
    "sent": pl.Boolean(),  # this run's load already sent the row's change (or its pause)
    "protection_reason": pl.String(),
}
_UNITS = {"JPY": (0, "¥"), "USD": (2, "$")}  # digits after the point, symbol


@dataclass(frozen=True)
class BreakerView:
    """One platform's breaker as the page shows it."""

    tripped: bool
    reasons: list[str]
    released: bool = False

    @property
    def holds_load(self) -> bool:
        return self.tripped and not self.released


@dataclass(frozen=True)
class PlanSummary:
    """What the next load would send for one platform (:func:`next_load`), counted."""

    holds_load: bool
    changes: int  # full changes: not held, or held and approved
    raises: int  # protective price raises of held rows
    pauses: int  # protective pauses of held rows
    waiting: int  # held rows that wait for a person (decisions.waits_for_a_person)
    rejected: int
    listed: list[dict[str, Any]]  # the first PLAN_LISTED rows that go out

    @property
    def sends(self) -> int:
        return self.changes + self.raises + self.pauses


@dataclass
class PlatformSection:
    platform: str
    display_name: str
    breaker: BreakerView
    rows: list[dict[str, Any]]  # diff rows, held first, at most ROW_CAP; + decision, title
    history: dict[str, list[int]]  # ASIN -> landed Amazon price (JPY) per snapshot, oldest first
    total_rows: int = 0  # rows in the diff (rows beyond the cap are in the CSV)
    held_rows: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    plan: PlanSummary | None = None

    @property
    def more_rows(self) -> int:
        return max(self.total_rows - len(self.rows), 0)


@dataclass
class ReviewPage:
    run_id: str
    generated_at: datetime  # UTC
    platforms: list[PlatformSection]
    timezone: str = DEFAULT_TIMEZONE  # [display] timezone: the zone every time is shown in


# --- frames -> model ---------------------------------------------------------------------------


def with_optional_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every column of :data:`OPTIONAL_COLUMNS` (nulls where absent)."""
    missing = [
        pl.lit(None, dtype).alias(name)
        for name, dtype in OPTIONAL_COLUMNS.items()
        if name not in frame.columns
    ]
    return frame.with_columns(missing) if missing else frame


def _decision_column(decisions: Mapping[str, str]) -> pl.Expr:
    if not decisions:
        return pl.lit(None, pl.String).alias("decision")
    return (
        pl.col("change_id")
        .replace_strict(dict(decisions), default=None, return_dtype=pl.String)
        .alias("decision")
    )


def next_load(
    frame: pl.DataFrame, decisions: Mapping[str, str], breaker: BreakerView
) -> pl.DataFrame:
    """Every row of one platform's diff with its ``decision`` and the ``action`` the next load
    would take for it (``change``, ``raise``, ``pause``, or null: nothing) and ``why``."""
    frame = with_optional_columns(frame).with_columns(_decision_column(decisions))
    decision = pl.col("decision")
    # the load gate's own rule (pipeline.decisions.next_action); the load also sends a row
    # only while its listing shows the old values and its Amazon observation is fresh
    action = (
        pl.when(pl.col("sent").fill_null(False))
        .then(pl.lit(None, pl.String))  # already on the platform: nothing left to send
        .otherwise(next_action(holds_load=breaker.holds_load))
    )
    why = (
        pl.when(pl.col("action").is_null())
        .then(pl.lit(None, pl.String))
        .when(pl.col("action") != "change")
        .then(pl.lit("protection while held: ") + pl.col("protection_reason").fill_null("—"))
        .when(decision == "approve")
        .then(pl.lit("approved"))
        .otherwise(pl.lit("not held"))
    )
    return frame.with_columns(action.alias("action")).with_columns(why.alias("why"))


_PLAN_COLUMNS = ("change_id", "account_id", "listing_key", "asin", "change_kind", "action", "why")


def plan_summary(planned: pl.DataFrame, breaker: BreakerView, *, listed: int | None) -> PlanSummary:
    """Counts of :func:`next_load`'s frame, and its first ``listed`` rows that go out
    (``None``: all of them)."""
    action, decision = pl.col("action"), pl.col("decision")
    counts = planned.select(
        (action == "change").sum().alias("changes"),
        (action == "raise").sum().alias("raises"),
        (action == "pause").sum().alias("pauses"),
        waits_for_a_person().sum().alias("waiting"),
        (decision == "reject").sum().alias("rejected"),
    ).row(0, named=True)
    going = planned.filter(action.is_not_null()).select(_PLAN_COLUMNS)
    if listed is not None:
        going = going.head(listed)
    return PlanSummary(
        holds_load=breaker.holds_load,
        listed=going.to_dicts(),
        **{k: int(v or 0) for k, v in counts.items()},
    )


def _move_bp() -> pl.Expr:
    old, new = pl.col("old_price_minor"), pl.col("new_price_minor")
    return ((new - old).abs() * BP // old).alias("_move_bp")


def section_from_frame(
    platform: str,
    frame: pl.DataFrame,
    breaker: BreakerView,
    decisions: Mapping[str, str],
    history: Mapping[str, list[int]],
    *,
    cap: int = ROW_CAP,
    plan_listed: int = PLAN_LISTED,
) -> PlatformSection:
    """One platform's section: held rows first (largest moves first), at most ``cap``."""
    planned = next_load(frame, decisions, breaker)
    shown = (
        planned.with_columns(_move_bp())
        .sort(["held", "_move_bp"], descending=[True, True], nulls_last=True)
        .head(cap)
        .drop("_move_bp", "action", "why")
    )
    rows = shown.to_dicts()
    kinds = frame.select(
        (pl.col("change_kind") == kind).sum().alias(kind) for kind in CHANGE_KINDS
    ).row(0, named=True)
    return PlatformSection(
        platform=platform,
        display_name=DISPLAY_NAMES.get(platform, platform),
        breaker=breaker,
        rows=rows,
        history={r["asin"]: list(history[r["asin"]]) for r in rows if r["asin"] in history},
        total_rows=frame.height,
        held_rows=int(frame["held"].sum()) if frame.height else 0,
        kinds={k: int(v or 0) for k, v in kinds.items()},
        plan=plan_summary(planned, breaker, listed=plan_listed),
    )


def page_from_frames(
    run_id: str,
    diffs: Mapping[str, pl.DataFrame],
    breakers: Mapping[str, tuple[bool, Sequence[str], bool]],
    decisions: Mapping[str, str],
    history: Mapping[str, list[int]],
    *,
    generated_at: datetime | None = None,
    cap: int = ROW_CAP,
    timezone: str = DEFAULT_TIMEZONE,
) -> ReviewPage:
    """The page of one run from plain frames: ``diffs`` per platform (as
    :func:`pipeline.review.read_diff` returns them), ``breakers`` per platform as
    ``(tripped, reasons, released)`` (a platform without one: not tripped), ``decisions`` as
    ``change_id -> decision`` and ``history`` as ASIN -> landed Amazon prices in yen; the page
    shows its times in ``timezone`` (``[display] timezone``), named."""
    sections = []
    order = {p: i for i, p in enumerate(PLATFORMS)}
    for platform in sorted(diffs, key=lambda p: (order.get(p, len(order)), p)):
        tripped, reasons, released = breakers.get(platform, (False, [], False))
        breaker = BreakerView(bool(tripped), list(reasons), bool(released))
        sections.append(
            section_from_frame(platform, diffs[platform], breaker, decisions, history, cap=cap)
        )
    return ReviewPage(
        run_id=run_id,
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC),
        platforms=sections,
        timezone=timezone,
    )


# --- text for people -----------------------------------------------------------------------


def age_text(seconds: float | None) -> str:
    """A source age for people: ``2.1 h``, ``35 min``, ``3.0 d``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def sparkline_svg(prices: Sequence[int], width: int = 120, height: int = 28) -> Markup:
    """A small inline SVG polyline of ``prices`` (JPY); empty with no data. Numbers only, so
    the markup is safe to insert as is."""
    if not prices:
        return Markup("")
    count = len(prices)
    if count == 1:  # one observation: a flat line, so the cell still reads as a price
        prices = [prices[0], prices[0]]
    low, high = min(prices), max(prices)
    span = max(high - low, 1)
    step = width / max(len(prices) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (p - low) * (height - 4) / span:.1f}"
        for i, p in enumerate(prices)
    )
    last_x, last_y = points.split(" ")[-1].split(",")
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" data-points="{count}"><title>Amazon ¥{int(low):,}–¥{int(high):,} over '
        f"{count} snapshot{'s' if count != 1 else ''}</title>"
        f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{points}"/>'
        f'<circle cx="{last_x}" cy="{last_y}" r="2" fill="#36c"/></svg>'
    )


def _row_view(
    row: Mapping[str, Any], generated_at: datetime, history: Sequence[int], timezone: str
) -> dict:
    """What the template shows of one diff row: display text (times in ``timezone``, named)
    plus the values it sorts by."""
    currency = row["currency"]
    old, new = row["old_price_minor"], row["new_price_minor"]
    profit, current = row["expected_profit_minor"], row.get("current_profit_minor")
    fetched = row["source_fetched_at"]
    age = (generated_at - fetched).total_seconds() if fetched is not None else None
    margin_bp = profit * BP // new if profit is not None and new else None
    reasons = [r for r in (row["hold_reason"] or "").split(",") if r]
    title = row.get("title")
    source = row["source_status"]
    if row["source_fallback_age_seconds"] is not None:
        source += f" (fallback from run {row['source_run_id']})"
    return {
        **row,
        "title_text": title if title else f"{row['listing_key']} (no title)",
        "reasons": reasons,
        "price_text": f"{money(old, currency)} → {money(new, currency)}",
        "stock_text": f"{row['old_quantity']} → {row['new_quantity']}",
        "cost_text": money(row["cost_jpy"], "JPY"),
        "at_new_text": "–"
        if profit is None
        else f"{'–' if margin_bp is None else f'{margin_bp / 100:.1f} %'} · {money(profit, currency)}",
        "current_text": money(current, currency),
        # only a listing that can be bought loses money at its price
        "below_cost": current is not None
        and current < row["min_profit_minor"]
        and row["old_quantity"] > 0
        and row["old_visible"] is not False,
        "age_text": age_text(age),
        "fetched_text": "never fetched" if fetched is None else short(fetched, timezone),
        "fetched_full": "never" if fetched is None else local(fetched, timezone, seconds=True),
        "source_text": source,
        "spark": sparkline_svg(history, width=100),
        "history_text": (
            f"now ¥{history[-1]:,} · {len(history)} snapshot{'s' if len(history) != 1 else ''}"
            if history
            else ""
        ),
        "search": " ".join(
            str(v) for v in (title or "", row["listing_key"], row["asin"]) if v
        ).casefold(),
        "sort": {
            "title": (title or row["listing_key"]).casefold(),
            "account": row["account_id"],
            "kind": row["change_kind"],
            "price": new,
            "move": abs(new - old) * BP // old,
            "stock": row["new_quantity"],
            "cost": row["cost_jpy"],
            "margin": margin_bp,
            "profit": profit,
            "current": current,
            "age": None if age is None else int(age),
            "reason": row["hold_reason"] or "",
            "decision": row.get("decision") or "",
        },
    }


# --- the template ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.workbench", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    return env


def render_review(model: ReviewPage, *, interactive: bool, token: str | None = None) -> str:
    """The page as HTML text: static (``interactive=False``: no script, every fact in the
    HTML) or interactive (filters, sorting, decision buttons; ``token`` is sent back with every
    request the page makes)."""
    if interactive and not token:
        raise ValueError("the interactive page needs the server's token")
    sections = []
    accounts: set[str] = set()
    reasons: set[str] = set()
    for section in model.platforms:
        views = [
            _row_view(row, model.generated_at, section.history.get(row["asin"], []), model.timezone)
            for row in section.rows
        ]
        for view in views:
            accounts.add(view["account_id"])
            reasons.update(view["reasons"])
        sections.append(
            {
                "s": section,
                "held": [v for v in views if v["held"]],
                "rest": [v for v in views if not v["held"]],
            }
        )
    totals = {
        "rows": sum(s.total_rows for s in model.platforms),
        "held": sum(s.held_rows for s in model.platforms),
        "sends": sum(s.plan.sends for s in model.platforms if s.plan),
    }
    return (
        _environment()
        .get_template("review.html.j2")
        .render(
            page=model,
            sections=sections,
            accounts=sorted(accounts),
            reasons=sorted(reasons),
            totals=totals,
            interactive=interactive,
            token=token or "",
            nonce=secrets.token_urlsafe(16) if interactive else "",
            generated=local(model.generated_at, model.timezone),
            zone=zone_name(model.timezone, model.generated_at),
            kinds=CHANGE_KINDS,
            plan_listed=PLAN_LISTED,
        )
    )
