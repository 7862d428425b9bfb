"""The many-sellers section of docs/benchmarks.md and its target rows (issue 17).

Stage: bench. Reads a :class:`bench.sellers_bench.SellersBench`; returns markdown lines and
(target, measured, met) rows. Writes nothing.
"""

from __future__ import annotations

from bench.sellers_bench import SellersBench

RATIO_TARGET = 1.3  # together / slowest alone (issue 17, done-when 2)


def target_rows(bench: SellersBench | None) -> list[tuple[str, str, bool]]:
    if bench is None or not bench.alone:
        return []
    steady = sum(r.throttled_steady for r in bench.together)
    return [
        (
            f"{bench.count} sellers through Dagster: wall ≤ {RATIO_TARGET} × the slowest alone",
            f"{bench.ratio:.3f} × ({bench.together_seconds:.0f} s / {bench.slowest_alone:.0f} s)",
            bench.ratio <= RATIO_TARGET,
        ),
        (
            f"{bench.count} sellers through Dagster: 0 steady-state 429s per seller",
            f"{steady} (all 429s, start-up included: {sum(r.throttled for r in bench.together)})",
            steady == 0,
        ),
    ]


def _row(label: str, r: object) -> str:
    from bench.sellers_bench import SellerResult

    assert isinstance(r, SellerResult)
    pace = r.fetch_seconds / r.floor_seconds if r.floor_seconds else 0.0
    return (
        f"| {label} | {r.seller} | {r.outcome or 'failed'} | {r.seconds:.1f} | "
        f"{r.fetch_seconds:.1f} | {r.floor_seconds:.1f} | {pace:.3f} | {r.calls:,} | "
        f"{r.throttled} / {r.throttled_steady} |"
    )


def section(bench: SellersBench | None) -> list[str]:
    if bench is None:
        return []
    lines = [
        "## Many sellers through Dagster (issue 17)",
        "",
        f"{bench.count} sandbox sellers of {bench.n_asins} catalogue ASINs each, each with its own "
        f"world, in-process sandbox and SP-API quotas at time scale {bench.time_scale:g} "
        "(getItemOffersBatch every "
        f"{10 / bench.time_scale:g} s, getItemOffers every {2 / bench.time_scale:g} s), its own "
        "data directory and prefix (`bench/sellers_bench.py`), each seller a Dagster run "
        "in a process of its own through `pipeline.orchestration.launch.materialize_sellers`, "
        f"executor `{bench.executor}` (the job has one step: docs/orchestration.md, "
        "\"Which executor\"), on this machine's cores. First every seller's catch-up (its "
        "first sync, which pushes nearly every listing: reported, not the target's measure), "
        "then every seller's next sync at once, as schedules firing on the same minute start "
        "them: **together**. **Alone**: the sellers with the largest quota floor, each from a "
        "copy of its data directory as it stood before that next sync, one at a time on an "
        "idle machine. Times are launch to end, process start and Dagster's own work "
        "included. 429s are read from each seller's own sandbox ledger; steady state is after "
        "the first minute of its fetch.",
        "",
        f"- **Together: {bench.together_seconds:.1f} s** for {bench.count} sellers; "
        f"**slowest alone: {bench.slowest_alone:.1f} s**; ratio **{bench.ratio:.3f} ×** "
        f"(target ≤ {RATIO_TARGET}).",
        f"- Catch-up (every seller's first sync, together): {bench.first_seconds:.1f} s.",
        "- Load average (1/5/15 min) at the end of the together run: "
        + " / ".join(f"{x:.2f}" for x in bench.load_together)
        + ".",
        "",
        "| run | seller | outcome | run s | fetch s (first to last call) | quota floor s | "
        "fetch / floor | SP-API calls | 429s (all / steady) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row("alone", r) for r in bench.alone]
    lines += [_row("together", r) for r in bench.together]
    lines.append("")
    return lines
