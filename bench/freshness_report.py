"""The freshness section of docs/benchmarks.md and its target rows.

Stage: bench. Reads a :class:`bench.freshness_day.FreshnessDay`; returns markdown lines and
(target, measured, met) rows. Writes nothing.
"""

from __future__ import annotations

import math

from bench.freshness_day import DesignResult, FreshnessDay
from bench.freshness_metrics import NO_SUPPLY_CAUSES, Reactions

LATENCY_RATIO_TARGET = 0.25  # C p50 / B p50 (issue 16, done-when 1)
EXPOSURE_RATIO_TARGET = 0.25  # C loss exposure / B
HEADLINE = ("price", "stockout")  # the changes the issue names


def headline(result: DesignResult) -> Reactions:
    """Price changes and stock-outs together."""
    merged = Reactions()
    for kind in HEADLINE:
        found = result.reactions.get(kind)
        if found is None:
            continue
        merged.latencies += found.latencies
        merged.superseded += found.superseded
        merged.unobserved += found.unobserved
        merged.not_pushed += found.not_pushed
    return merged


def _m(seconds: float) -> str:
    return "–" if math.isnan(seconds) else f"{seconds / 60:,.1f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _per_minute(result: DesignResult) -> float:
    """ASINs a design observed per sandbox minute: per run over its mean period."""
    runs = [r for r in result.runs if r.asins]
    if not runs or not result.period:
        return math.nan
    return sum(r.asins for r in runs) / len(runs) / (result.period / 60)


def ratios(day: FreshnessDay) -> dict[str, float]:
    b, c = day.designs.get("B"), day.designs.get("C")
    if b is None or c is None or b.error or c.error:
        return {}
    return {
        "p50": _ratio(headline(c).quantile(0.5), headline(b).quantile(0.5)),
        "exposure": _ratio(c.exposure_minutes, b.exposure_minutes),
        "exposure_yen": _ratio(c.exposure_yen_minutes, b.exposure_yen_minutes),
    }


def target_rows(day: FreshnessDay) -> list[tuple[str, str, bool]]:
    c = day.designs.get("C")
    found = ratios(day)
    if c is None or c.error or not found:
        return [("freshness: the simulated day", "no figures (a design failed)", False)]
    age_limit = day.plan.max_source_age
    return [
        (
            f"freshness: C p50 reaction latency ≤ {LATENCY_RATIO_TARGET:g} × B's",
            f"{found['p50']:.3f} ×",
            found["p50"] <= LATENCY_RATIO_TARGET,
        ),
        (
            f"freshness: C loss exposure ≤ {EXPOSURE_RATIO_TARGET:g} × B's",
            f"{found['exposure']:.3f} ×",
            found["exposure"] <= EXPOSURE_RATIO_TARGET,
        ),
        (
            "freshness: C 0 steady-state 429s",
            f"{c.steady_throttled} (all 429s: {sum(c.throttled.values())})",
            c.steady_throttled == 0,
        ),
        (
            f"freshness: no listed ASIN observed later than max_source_age "
            f"({age_limit / 3600:g} h) in C",
            f"largest age {c.max_age / 3600:.2f} h; {c.asins_over_age} ASINs over",
            c.asins_over_age == 0,
        ),
    ]


def summary_lines(day: FreshnessDay) -> list[str]:
    """The per-design table (also what ``python -m bench.freshness_day`` prints)."""
    lines = [
        "| design | runs (mean period, sandbox min) | overhead per run: wall s (sandbox min) | "
        "price p50 / p95 / max (min) | stock-out p50 / p95 / max (min) | "
        "loss exposure: below cost + no supply = listing-minutes | largest observation age (h) | "
        "SP-API calls | 429s (steady) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(day.designs.items()):
        if r.error:
            lines.append(f"| {name} {r.label} | failed: {r.error} |||||||| ")
            continue
        cells = []
        for kind in HEADLINE:
            found = r.reactions.get(kind) or Reactions()
            cells.append(" / ".join(_m(found.quantile(q)) for q in (0.5, 0.95, 1.0)))
        calls = ", ".join(
            f"{op} {n:,} ({r.throttled.get(op, 0)} × 429)" for op, n in sorted(r.calls.items())
        )
        overhead = r.overhead_wall
        lines.append(
            f"| {name}: {r.label} | {len(r.runs)} ({_m(r.period)}) | "
            f"{'–' if name == 'A' else f'{overhead:.1f} ({_m(overhead * day.plan.time_scale)})'}"
            f" | {cells[0]} | {cells[1]} | "
            f"{r.below_cost_minutes:,.0f} + {r.no_supply_minutes:,.0f} = "
            f"{r.exposure_minutes:,.0f} | {r.max_age / 3600:.2f} ({r.asins_over_age} over) | "
            f"{calls} | {sum(r.throttled.values())} ({r.steady_throttled}) |"
        )
    lines += ["", "| design | kind | reflected | superseded before observed | "
              "observed, no push | never observed in the day |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in sorted(day.designs.items()):
        for kind, found in sorted(r.reactions.items()):
            lines.append(
                f"| {name} | {kind} | {len(found.latencies):,} | {found.superseded:,} | "
                f"{found.not_pushed:,} | {found.unobserved:,} |"
            )
    lines += ["", "| design | no supply (listing-minutes): never supplied all day | supply lost, "
              "not yet observed | observed, listing still buyable | exposure weighed by value "
              "(million yen-minutes) | observations per listed ASIN in the day, by change class |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    classes = day.plan.process.classes
    for name, r in sorted(day.designs.items()):
        if r.error:
            continue
        found = [r.no_supply_by_cause.get(cause, 0.0) for cause in NO_SUPPLY_CAUSES]
        seen = ", ".join(
            f"every {classes[k][1] / 3600:g} h: {mean:.1f}"
            for k, mean in r.observations_by_class.items()
            if k < len(classes)
        )
        lines.append(
            f"| {name} | " + " | ".join(f"{m:,.0f}" for m in found)
            + f" | {r.exposure_yen_minutes / 1e6:,.1f} | {seen} |"
        )  # fmt: skip
    measured = ratios(day)
    if measured:
        lines += [
            "",
            f"C / B: p50 reaction latency (price changes and stock-outs) "
            f"**{measured['p50']:.3f} ×** (target ≤ {LATENCY_RATIO_TARGET:g}); loss exposure "
            f"**{measured['exposure']:.3f} ×** (target ≤ {EXPOSURE_RATIO_TARGET:g}); weighed "
            f"by value (what the urgency order weighs) {measured['exposure_yen']:.3f} ×.",
        ]
    return lines


def section(day: FreshnessDay | None) -> list[str]:
    """## Freshness on a simulated day: method, figures, the overhead's bias."""
    if day is None:
        return []
    plan = day.plan
    spec = plan.process
    classes = ", ".join(f"{share:.0%} every {mean / 3600:g} h" for share, mean in spec.classes)
    changes = ", ".join(f"{kind} {n:,}" for kind, n in sorted(day.changes.items()))
    b, c = day.designs.get("B"), day.designs.get("C")
    lines = [
        "## Freshness on a simulated day (issue 16)",
        "",
        f"`bench/freshness_day.py`: {plan.n_asins:,} catalogue ASINs (the demo listings on "
        f"shop1, shop2 and ebay-main), one day of sandbox time ({plan.day_seconds / 3600:g} h) "
        f"at time scale {plan.time_scale:g} ({plan.wall_day / 60:.1f} wall minutes), the three "
        f"designs at once, each against a sandbox process of its own with the same catalogue "
        f"seed ({plan.seed}) and the same change process (seed {spec.seed}: {classes}; "
        f"{spec.stockout_share:.0%} of changes stock-outs, outages of mean "
        f"{spec.mean_outage_seconds / 3600:g} h, price moves "
        f"{spec.price_move[0]:.0%}–{spec.price_move[1]:.0%}). The day's changes: {changes} "
        f"(replayed standalone in {day.replay_seconds:.1f} s; the replay "
        f"{'matches' if day.replay_agrees() else '**does not match**'} every sandbox's "
        "ledger, change for change). invsync's designs start in step "
        f"(an untimed full sync); `guardrails.max_source_age` "
        f"{plan.max_source_age / 3600:g} h and C's budget {plan.budget_seconds / 60:g} min "
        f"are written into their configs divided by the time scale. Section: "
        f"{day.seconds / 60:.1f} min.",
        "",
        "* **A** the replaced design, its SP-API calls made for real (12 s per batch, "
        "getItemOffers per eBay cache miss, a 429 ends the pass). Its pushes are **modelled**: "
        "at the end of each completed pass every listing of each ASIN the pass observed takes "
        "the tiered markup of the lowest any-offer price it read (buyable while it read one); a "
        "pass ended by a 429 pushes nothing. It reads any offer, so it also keeps selling ASINs "
        "whose offers all fail the default offer policy (shipping time, availability): "
        "those listings count as having no supply.",
        '* **B** `invsync daemon --continuous`, `pool = false`, `budget = "all"`.',
        f"* **C** `invsync daemon --continuous`, `pool = true`, `budget` "
        f"{plan.budget_seconds / 60:g} sandbox minutes.",
        "",
        "**Reaction latency**: from an Amazon change (the process ledger) to the first push to "
        "a listing of its ASIN (the sandbox's platform ledger, BASE or eBay) after the first "
        "SP-API observation of the ASIN at or after the change, and before the next observation "
        "of it. Changes superseded by another change of the ASIN before they were observed, "
        "observed without a push following (nothing to change, or held), and never observed in "
        "the day are counted apart. **Loss exposure**: listing-minutes in which a buyable "
        "listing (stock > 0 and shown on BASE, quantity > 0 on eBay) was priced below the true "
        "Amazon cost (the landed price the default offer policy picks, from the standalone "
        "replay through `observation_from_offers`; eBay at "
        f"{plan.fx_jpy_per_usd} JPY/USD) or had no Amazon supply. **Observation age**: the "
        "largest gap between observations of a listed ASIN (from the SP-API ledger), the "
        "time before its first observation of the day and after its last included. 429s are "
        "the day's; steady ones come after a run's first accepted call of that operation.",
        "",
        *summary_lines(day),
        "",
    ]
    if b and c and not b.error and not c.error:
        scale = plan.time_scale
        lines += [
            "**The overhead's bias.** invsync's clock is the wall clock, so every second a run "
            "spends outside its fetch (the BASE pull, the eBay pull — offers of the observed "
            "ASINs only in C —, extract, the urgency order, transform, review, load) costs "
            f"{scale:g} × that in sandbox time: B {b.overhead_wall:.1f} wall s a run "
            f"= {_m(b.overhead_wall * scale)} sandbox minutes, C {c.overhead_wall:.1f} wall s "
            f"= {_m(c.overhead_wall * scale)} sandbox minutes. The platform calls in it stand "
            f"for real time (a loopback round trip of 2–3 ms is {2 * scale:g}–"
            f"{3 * scale:g} ms of sandbox time here, about a live one); the CPU work "
            "(Python, DuckDB, polars) takes the same seconds live, not "
            f"{scale:g} × them. B pays it once per full pass ({_m(b.period)} min between "
            f"starts), C once per budgeted run ({_m(c.period)} min between starts against a "
            f"{plan.budget_seconds / 60:g}-minute budget), so it weighs far more on C: live, "
            f"C's runs would follow each other about every {plan.budget_seconds / 60:g} "
            "minutes plus its platform calls. ASINs observed per sandbox minute: C "
            f"{_per_minute(c):,.0f}, B {_per_minute(b):,.0f} (2.5 and 2.0 a second at the "
            "quota: 150 and 120 a minute).",
            "",
        ]
    return lines
