"""``make bench``: measure fetch, the pooled fetch, transform, load and the what-if replay, run
the chaos loop; write docs/benchmarks.md.

Stage: bench. Reads nothing but the code it measures; writes the document (``--out``) and,
while it runs, temp directories under ``--work`` (a fresh temp dir by default, removed at
the end). ``--quick`` measures tiny inputs in seconds (the smoke test); the real bench
takes about 32 minutes on 2 cores, 14 of them the 300 chaos rounds (``bench/chaos.py``) and 7
the pooled pass of 10,000 ASINs, plus up to 33 for the simulated day of issue 16 and 35 for
twenty sellers through Dagster (issue 17).
``--sections whatif`` measures the what-if replay alone (``bench/whatif_bench.py``);
``--sections freshness`` the simulated day alone (``bench/freshness_day.py``);
``--sections sellers`` twenty sellers through Dagster (``bench/sellers_bench.py``).

Each section (fetch, pool, transform, load, chaos, whatif, freshness, sellers) is measured on its own; one that fails
is written into the document as failed, the others still run, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench import (
    chaos,
    fetch_bench,
    freshness_day,
    load_bench,
    replaced_design,
    sellers_bench,
    transform_bench,
    whatif_bench,
)
from bench.machine import describe_machine, load_average
from bench.report import Results, Section, render
from bench.sandbox_process import sandbox_process

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("fetch", "pool", "transform", "load", "chaos", "whatif", "freshness", "sellers")
# The pooled pass at scale 10: getItemOffers every 200 ms and getItemOffersBatch every 1 s,
# 10,000 ASINs in about 400 s. At 20 (100 ms) one run on a loaded machine (load average
# 3 → 8) paced 1.10 × the pooled floor with one 429: as the fetch section found, intervals
# of 100 ms and less cannot hold 1.02 × on a busy machine, so the single lane gets the
# 200 ms that section measures at.
POOL_SCALE = 10.0


@dataclass(frozen=True)
class Plan:
    """Sizes and time scales. getItemOffersBatch (0.1 req/s) × 50 and getCompetitivePricing
    (0.5 req/s) × 10 both allow 5 requests/s (200 ms intervals, so the machine's
    millisecond jitter stays well under 2 % of one): 500 calls take 100 s, and the two
    operations are fetched at the same time to stay within the bench's 10 minutes. The
    smaller world runs at 25 requests/s (40 ms) to show how the excess depends on the
    interval."""

    fetch_asins: int  # catalogue ASINs; the demo listings add 8 invalid ones
    scale_item_offers: float
    scale_competitive: float
    scale_replaced: float
    pace_asins: int  # a smaller world fetched at another request rate (same operation)
    scale_pace: float
    transform_sizes: tuple[tuple[int, int], ...]  # (listings, ASINs)
    naive_size: int  # listings of the baseline (one of transform_sizes)
    changed_share: float
    load_asins: int
    scale_load: float
    chaos_rounds: int  # kill / hand-edit / fault rounds against one small sandbox world
    whatif_size: tuple[int, int, int]  # (days, runs per day, listings) of the replayed history


FULL = Plan(
    fetch_asins=9_992,  # + 8 invalid = 10,000 unique ASINs, 500 calls
    scale_item_offers=50.0,
    scale_competitive=10.0,
    scale_replaced=1000.0,
    pace_asins=1_992,  # + 8 invalid = 2,000 ASINs, 100 calls at 25 requests/s
    scale_pace=250.0,
    transform_sizes=((100_000, 50_000), (1_000_000, 500_000)),
    naive_size=100_000,
    changed_share=0.10,
    load_asins=1_000,
    scale_load=1000.0,
    chaos_rounds=300,
    whatif_size=(30, 8, 10_000),
)
QUICK = Plan(
    fetch_asins=192,  # + 8 invalid = 200 unique ASINs, 10 calls
    scale_item_offers=2000.0,
    scale_competitive=400.0,
    scale_replaced=4000.0,
    pace_asins=92,
    scale_pace=400.0,
    transform_sizes=((2_000, 1_000),),
    naive_size=2_000,
    changed_share=0.10,
    load_asins=60,
    scale_load=1000.0,
    chaos_rounds=3,
    whatif_size=(2, 2, 200),
)


def measure_fetch(results: Results, plan: Plan, work: Path, runs: int) -> None:
    scales = {"item_offers": plan.scale_item_offers, "competitive_pricing": plan.scale_competitive}
    results.fetch.update(fetch_bench.measure_invsync_together(scales, plan.fetch_asins, work, runs))
    with sandbox_process(plan.scale_pace, plan.pace_asins) as sandbox:
        results.fetch_low_rate = fetch_bench.measure_invsync(sandbox, work, "item_offers", runs)
    with sandbox_process(plan.scale_replaced, plan.fetch_asins) as sandbox:
        results.replaced["replaced"] = fetch_bench.measure_replaced(sandbox, work, runs)
        results.replaced["replaced-2.5s"] = fetch_bench.measure_replaced(
            sandbox, work, runs, batch_interval=2.5, label="replaced-2.5s"
        )
    results.settings["fetch_unique"] = results.fetch["item_offers"][0].unique_asins


def measure_pool(results: Results, plan: Plan, work: Path, runs: int) -> None:
    """One pooled full pass of the fetch world (``runs`` does not apply: 200 s each)."""
    with sandbox_process(POOL_SCALE, plan.fetch_asins) as sandbox:
        results.pool = fetch_bench.measure_pool(sandbox, work, 1)


def measure_transform(results: Results, plan: Plan, work: Path, runs: int) -> None:
    for listings, asins in plan.transform_sizes:
        template = transform_bench.generate(
            work / f"transform-{listings}",
            listings,
            asins,
            plan.changed_share,
            with_naive=listings == plan.naive_size,
        )
        results.transform_asins[listings] = asins
        scratch = work / "transform-scratch"
        results.transform[listings] = [
            transform_bench.measure(template, "invsync", scratch) for _ in range(runs)
        ]
        if listings == plan.naive_size:
            results.naive[listings] = [
                transform_bench.measure(template, "naive", scratch) for _ in range(runs)
            ]
        shutil.rmtree(template.root, ignore_errors=True)


def measure_load(results: Results, plan: Plan, work: Path, runs: int) -> None:
    results.load = load_bench.measure_load(work, plan.load_asins, plan.scale_load, runs)


def measure_chaos(results: Results, plan: Plan, work: Path, runs: int) -> None:
    """One seeded chaos loop (its rounds are its repetitions; ``runs`` does not apply)."""
    results.chaos = chaos.run(plan.chaos_rounds, seed=CHAOS_SEED, work=work)


def measure_whatif(results: Results, plan: Plan, work: Path, runs: int) -> None:
    """Both rule sets over a synthetic history of ``plan.whatif_size``, in fresh processes."""
    days, per_day, listings = plan.whatif_size
    history = whatif_bench.generate(work / "whatif", days, per_day, listings)
    results.whatif_size = plan.whatif_size
    results.whatif = [whatif_bench.measure(history) for _ in range(runs)]
    shutil.rmtree(history.root, ignore_errors=True)


def measure_freshness(results: Results, plan: Plan, work: Path, runs: int) -> None:
    """The simulated day, designs A, B and C at once (``runs`` does not apply: one day)."""
    day = freshness_day.QUICK_DAY if plan is QUICK else freshness_day.FULL_DAY
    results.freshness = freshness_day.run_day(day, work)


def measure_sellers(results: Results, plan: Plan, work: Path, runs: int) -> None:
    """Twenty sandbox sellers through Dagster side by side, against the slowest alone
    (``runs`` does not apply: one together run, then the heaviest sellers alone)."""
    if plan is QUICK:
        results.sellers = sellers_bench.run(work, count=2, n_asins=60, time_scale=50.0, alone=1)
    else:
        results.sellers = sellers_bench.run(work)


CHAOS_SEED = 14
MEASURES = {
    "fetch": measure_fetch,
    "pool": measure_pool,
    "transform": measure_transform,
    "load": measure_load,
    "chaos": measure_chaos,
    "whatif": measure_whatif,
    "freshness": measure_freshness,
    "sellers": measure_sellers,
}


def run_bench(
    out: Path, *, quick: bool = False, runs: int = 3, sections: tuple[str, ...] = SECTIONS,
    work: Path | None = None, echo: bool = True,
) -> Results:  # fmt: skip
    """Measure ``sections`` and write the document to ``out``; returns the results."""
    plan = QUICK if quick else FULL
    started = time.monotonic()
    results = Results(machine=describe_machine(REPO), quick=quick, runs=runs)
    results.settings.update(
        single_interval=replaced_design.SINGLE_INTERVAL,
        changed_share=plan.changed_share,
        load_asins=plan.load_asins,
        fetch_unique=plan.fetch_asins + 8,
        pace_unique=plan.pace_asins + 8,
    )
    own_work = work is None
    root = Path(tempfile.mkdtemp(prefix="invsync-bench-")) if work is None else work
    try:
        for name in sections:
            section = results.sections[name] = Section(name, load_before=load_average())
            began = time.monotonic()
            if echo:
                print(f"bench: {name} (load average {section.load_before[0]:.2f}) …", flush=True)
            try:
                MEASURES[name](results, plan, root / name, runs)
            except Exception as exc:  # one section failing must not hide the others
                section.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                if echo:
                    traceback.print_exc()
            section.seconds = time.monotonic() - began
            section.load_after = load_average()
            if echo:
                print(f"bench: {name} took {section.seconds:.0f} s", flush=True)
    finally:
        if own_work:
            shutil.rmtree(root, ignore_errors=True)
    results.total_seconds = time.monotonic() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(results)
    temp = out.with_name(f".{out.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(out)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Measure invsync; write docs/benchmarks.md."
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="tiny inputs (smoke test)")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma list of " + ",".join(SECTIONS)
    )
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or args.runs < 1:
        parser.error(f"--sections takes {', '.join(SECTIONS)} and --runs at least 1")
    results = run_bench(args.out, quick=args.quick, runs=args.runs, sections=sections)
    print(f"bench: wrote {args.out} in {results.total_seconds:.0f} s")
    if any(s.error for s in results.sections.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
