"""What-if report: the replay's per-day figures side by side, as rows for the terminal and
JSON, and as one HTML page with inline SVG charts (docs/whatif.md, "The report").

Stage: a read-side report (``invsync whatif``). Reads a :class:`pipeline.whatif.Replay`;
writes nothing (the command writes the page drawn by
:func:`pipeline.workbench.render.render_page` from ``templates/whatif.html.j2``).
Days are calendar days in the display zone (``[display] timezone``, default Asia/Tokyo);
every time shown names its zone. Money stays integer minor units with its currency until
:func:`pipeline.money.money` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from markupsafe import Markup, escape

from pipeline import display
from pipeline.money import money
from pipeline.whatif import Replay, daily, daily_margin

# (key, heading, what it counts) — the per-day figures, in the order shown
METRICS = (
    ("changes", "changes", "listings whose price or stock the rules change, summed over runs"),
    ("holds", "row holds", "changed rows a row guardrail holds for a person, summed over runs"),
    ("breaker_holds", "breaker holds", "platform loads the run breaker holds whole"),
    ("calls", "API calls", "push calls the loads would cost (BASE items/edit, eBay bulk)"),
    ("below_cost", "below cost", "listings left buyable below their Amazon cost by a run"),
)
SERIES_COLOURS = ("#4a5d7e", "#c2571a")  # in force, candidate
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 560, 160, 34


@dataclass
class WhatifReport:
    """What the terminal, JSON and HTML show: one row per day, both rule sets."""

    generated_at: datetime  # UTC
    zone: str  # the zone days are counted in, e.g. Asia/Tokyo
    zone_label: str  # e.g. JST
    since: datetime  # UTC
    rule_sets: list[tuple[str, str]]  # (name, source)
    runs: int
    skipped: dict[str, int]
    days: list[dict[str, Any]]  # day, then "<metric>" -> {rule_set: value}, runs
    margins: list[dict[str, Any]]  # day, account_id, currency, {rule_set: minor}
    totals: dict[str, dict[str, int]]  # metric -> rule_set -> sum over the window
    seconds: float
    charts: list[dict[str, Any]] = field(default_factory=list)


def zone_label(zone: ZoneInfo, moment: datetime) -> str:
    """The zone's abbreviation at ``moment`` (JST, UTC), as every seller-facing time says it."""
    return display.label(display.in_zone(moment, str(zone)))


def build(result: Replay, zone: ZoneInfo, now: datetime) -> WhatifReport:
    """The report of ``result`` with days counted in ``zone``."""
    names = [r.name for r in result.rule_sets]
    per_day = daily(result, zone)
    days: dict[date, dict[str, Any]] = {}
    for row in per_day.iter_rows(named=True):
        entry = days.setdefault(row["day"], {"day": row["day"], "runs": row["runs"]})
        for key, _, _ in METRICS:
            entry.setdefault(key, dict.fromkeys(names, 0))[row["rule_set"]] = int(row[key])
    margins: dict[tuple[date, str], dict[str, Any]] = {}
    for row in daily_margin(result, zone).iter_rows(named=True):
        entry = margins.setdefault(
            (row["day"], row["account_id"]),
            {"day": row["day"], "account_id": row["account_id"], "currency": row["currency"],
             "minor": dict.fromkeys(names)},
        )  # fmt: skip
        entry["minor"][row["rule_set"]] = row["margin_minor"]
    totals = {
        key: {name: int(per_day.filter(pl.col("rule_set") == name)[key].sum()) for name in names}
        for key, _, _ in METRICS
        if key != "below_cost"
    }
    report = WhatifReport(
        generated_at=now,
        zone=str(zone),
        zone_label=zone_label(zone, now),
        since=result.history.since,
        rule_sets=[(r.name, r.source) for r in result.rule_sets],
        runs=len(result.history.runs),
        skipped=dict(result.history.skipped),
        days=[days[d] for d in sorted(days)],
        margins=[margins[k] for k in sorted(margins)],
        totals=totals,
        seconds=result.seconds,
    )
    report.charts = charts(report)
    return report


def as_json(report: WhatifReport) -> dict[str, Any]:
    """The report as JSON-ready data (days as ISO dates, times in UTC with their zone)."""
    return {
        "generated_at": report.generated_at.isoformat(),
        "since": report.since.isoformat(),
        "day_zone": report.zone,
        "rule_sets": {name: source for name, source in report.rule_sets},
        "runs_replayed": report.runs,
        "runs_skipped": report.skipped,
        "days": [
            {"day": d["day"].isoformat(), "runs": d["runs"], **{k: d[k] for k, _, _ in METRICS}}
            for d in report.days
        ],
        "margin_after_last_run": [
            {
                "day": m["day"].isoformat(),
                "account_id": m["account_id"],
                "currency": m["currency"],
                "margin_minor": m["minor"],
            }
            for m in report.margins
        ],
        "totals": report.totals,
        "seconds": round(report.seconds, 3),
    }


# --- charts -----------------------------------------------------------------------------


def charts(report: WhatifReport) -> list[dict[str, Any]]:
    """One line chart per metric and one per account's margin: both rule sets over the days."""
    names = [name for name, _ in report.rule_sets]
    labels = [d["day"] for d in report.days]
    out = []
    for key, heading, meaning in METRICS:
        series = {name: [d[key][name] for d in report.days] for name in names}
        out.append(
            {"title": f"{heading} per day", "meaning": meaning,
             "svg": line_chart_svg(labels, series, zone=report.zone_label)}
        )  # fmt: skip
    accounts = sorted({(m["account_id"], m["currency"]) for m in report.margins})
    for account, currency in accounts:
        rows = {m["day"]: m["minor"] for m in report.margins if m["account_id"] == account}
        series = {name: [(rows.get(day) or {}).get(name) for day in labels] for name in names}
        out.append(
            {
                "title": f"expected margin of {account} after the day's last run ({currency})",
                "meaning": "what the buyable listings would earn, one sale each",
                "svg": line_chart_svg(labels, series, zone=report.zone_label, currency=currency),
            }
        )
    return out


def line_chart_svg(
    days: list[date],
    series: dict[str, list[int | None]],
    *,
    zone: str,
    currency: str | None = None,
) -> Markup:
    """An inline SVG line chart: one line per rule set over the days, the first and last
    day and the zone on the time axis, the largest value (with its unit) on the value
    axis. A missing value breaks the line."""
    width, height, pad = CHART_WIDTH, CHART_HEIGHT, CHART_PAD
    values = [v for points in series.values() for v in points if v is not None]
    low, high = min([0, *values]), max([1, *values])
    span = max(high - low, 1)
    steps = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * i / steps

    def y(v: int) -> float:
        return height - pad - (height - 2 * pad) * (v - low) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
    ]
    top = money(high, currency) if currency else f"{high:,}"
    parts.append(f'<text x="2" y="{pad - 6}" font-size="10">{escape(top)}</text>')
    bottom = money(low, currency) if currency else f"{low:,}"
    parts.append(f'<text x="2" y="{height - pad + 4}" font-size="10">{escape(bottom)}</text>')
    if days:
        first, last = days[0].isoformat(), days[-1].isoformat()
        parts.append(
            f'<text x="{pad}" y="{height - 8}" font-size="10">{escape(first)}</text>'
            f'<text x="{width - pad}" y="{height - 8}" font-size="10" text-anchor="end">'
            f"{escape(last)} ({escape(zone)})</text>"
        )
    for colour, (name, points) in zip(SERIES_COLOURS, series.items(), strict=False):
        path, pen_down = [], False
        for i, value in enumerate(points):
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(i):.1f},{y(value):.1f}")
            pen_down = True
        if path:
            parts.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2">'
                f"<title>{escape(name)}</title></path>"
            )
        for i, value in enumerate(points):
            if value is not None and len(points) == 1:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
