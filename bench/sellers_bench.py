"""Many sellers through Dagster (issue 17): 20 small sandbox sellers materialised side by side
on this machine, against the slowest of them run alone.

Stage: bench. Writes a ``sellers.toml`` of ``count`` sandbox sellers (each its own seed, world,
in-process sandbox with its own quotas, data directory and prefix) under ``work``, then:

1. **Catch-up**: every seller's partition at once through
   :func:`pipeline.orchestration.launch.materialize_sellers` (one Dagster run per seller, each
   step in a process of its own: the multiprocess executor), into fresh data directories:
   each seller's first sync, which pushes nearly every listing. Timed and reported, not the
   target's measure: a seller catches up once.
2. **Together**: every seller's next sync at once, as their schedules fire on the same
   minute: the run the target is about.
3. **Alone**: the ``alone`` sellers with the most quota work (the largest quota floor), each
   from a copy of its data directory as it stood before step 2, one at a time with a Dagster
   instance of its own on an otherwise idle machine. The slowest is "the slowest single
   seller run alone".

The ratio is step 2's wall time over that slowest alone time (target ≤ 1.3 ×: the work is
bound by each seller's own SP-API quota, not by the two cores). Each seller's 429s come from
its own sandbox ledger (``<data_dir>/sandbox/ledger/<run>.json``), split into the first
minute (start-up, when twenty processes import at once) and after it (steady state).

``python -m bench.sellers_bench --work DIR`` runs it alone; ``make bench`` runs it as the
``sellers`` section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import load_average

COUNT = 20
# per seller: the pooled fetch answers 2.5 ASINs/s at the live quotas, so its fetch of
# about 1,000 ASINs takes some 6.5 minutes; small beside a real seller's 10,000 (66 minutes)
N_ASINS = 1000
TIME_SCALE = 1.0  # the live quotas: getItemOffersBatch every 10 s, getItemOffers every 2 s
ALONE = 2
# the job's default: each run's one step in a process of its own, as the five-seller test
# runs it (in_process would save that process: docs/orchestration.md, "Which executor")
EXECUTOR = "multiprocess"
STEADY_AFTER = 60.0  # seconds after a fetch's first call: start-up is over by then


@dataclass
class SellerResult:
    seller: str
    outcome: str | None
    seconds: float  # the Dagster run, launch to end
    fetch_seconds: float  # first to last SP-API call in its ledger
    floor_seconds: float  # its quota floor (runs.quota_floor_seconds)
    calls: int
    throttled: int
    throttled_steady: int  # 429s later than STEADY_AFTER after its first SP-API call


@dataclass
class SellersBench:
    count: int
    n_asins: int
    time_scale: float
    executor: str = EXECUTOR
    first_seconds: float = 0.0  # the catch-up: every seller's first sync, together
    first: list[SellerResult] = field(default_factory=list)
    together_seconds: float = 0.0  # every seller's next (scheduled) sync, together
    together: list[SellerResult] = field(default_factory=list)
    alone: list[SellerResult] = field(default_factory=list)
    load_together: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def slowest_alone(self) -> float:
        return max((r.seconds for r in self.alone), default=0.0)

    @property
    def ratio(self) -> float:
        return self.together_seconds / self.slowest_alone if self.slowest_alone else 0.0


def write_sellers(folder: Path, count: int, n_asins: int, time_scale: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(1, count + 1):
        lines += [
            f"[sellers.seller-{i:02d}]",
            f"[sellers.seller-{i:02d}.settings]",
            'mode = "sandbox"',
            f"sandbox = {{ seed = {1000 + i}, n_asins = {n_asins}, time_scale = {time_scale} }}",
            "",
        ]
    path = folder / "sellers.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _result(run: object, data_dir: Path) -> SellerResult:
    import duckdb

    from pipeline.orchestration.launch import LaunchedRun

    assert isinstance(run, LaunchedRun)
    calls: list[dict] = []
    floor = 0.0
    if run.invsync_run_id:
        book = json.loads(
            (data_dir / "sandbox" / "ledger" / f"{run.invsync_run_id}.json").read_text()
        )
        calls = [c for c in book["calls"] if c["api"] == "spapi"]
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        try:
            rows = con.execute(
                "select quota_floor_seconds from runs where run_id = $r",
                {"r": run.invsync_run_id},
            ).fetchall()
            floor = float(rows[0][0] or 0.0)
        finally:
            con.close()
    first = min((c["wall"] for c in calls), default=0.0)
    last = max((c["wall"] for c in calls), default=0.0)
    throttled = [c for c in calls if c["status"] == 429]
    return SellerResult(
        seller=run.seller,
        outcome=run.outcome,
        seconds=run.ended - run.started,
        fetch_seconds=last - first,
        floor_seconds=floor,
        calls=len(calls),
        throttled=len(throttled),
        throttled_steady=sum(1 for c in throttled if c["wall"] - first > STEADY_AFTER),
    )


def run(work: Path, count: int = COUNT, n_asins: int = N_ASINS, time_scale: float = TIME_SCALE,
        alone: int = ALONE) -> SellersBench:  # fmt: skip
    from pipeline.orchestration.launch import materialize_sellers
    from pipeline.orchestration.sellers import load_registry

    shutil.rmtree(work, ignore_errors=True)
    bench = SellersBench(count, n_asins, time_scale)
    together = work / "together"
    sellers_file = write_sellers(together, count, n_asins, time_scale)
    registry = load_registry(sellers_file)
    # the catch-up: every seller's first sync (listings all out of step), together
    started = time.monotonic()
    first = materialize_sellers(sellers_file, together / "dagster", registry.ids, executor=EXECUTOR)
    bench.first_seconds = time.monotonic() - started
    bench.first = [_result(r, registry.seller(r.seller).data_dir) for r in first]
    heaviest = sorted(bench.first, key=lambda r: (-r.floor_seconds, r.seller))[:alone]
    # each alone run starts from a copy of the same warm state as its together run
    for one in heaviest:
        folder = work / "alone" / one.seller
        write_sellers(folder, count, n_asins, time_scale)
        shutil.copytree(registry.seller(one.seller).data_dir, folder / one.seller / "data")
    time.sleep(5)  # let the machine settle
    # a scheduled run: every seller's next sync, together, timed
    started = time.monotonic()
    runs = materialize_sellers(sellers_file, together / "dagster", registry.ids, executor=EXECUTOR)
    bench.together_seconds = time.monotonic() - started
    bench.load_together = load_average()
    bench.together = [_result(r, registry.seller(r.seller).data_dir) for r in runs]
    for one in heaviest:
        folder = work / "alone" / one.seller
        alone_registry = load_registry(folder / "sellers.toml")
        time.sleep(5)
        began = time.monotonic()
        (alone_run,) = materialize_sellers(
            folder / "sellers.toml", folder / "dagster", [one.seller], executor=EXECUTOR
        )
        result = _result(alone_run, alone_registry.seller(one.seller).data_dir)
        result.seconds = time.monotonic() - began
        bench.alone.append(result)
    return bench


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sellers_bench")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--n-asins", type=int, default=N_ASINS)
    parser.add_argument("--time-scale", type=float, default=TIME_SCALE)
    parser.add_argument("--alone", type=int, default=ALONE)
    args = parser.parse_args()
    bench = run(args.work, args.count, args.n_asins, args.time_scale, args.alone)
    print(f"together {bench.together_seconds:.1f} s; slowest alone {bench.slowest_alone:.1f} s;"
          f" ratio {bench.ratio:.3f}")  # fmt: skip
    print(f"catch-up together {bench.first_seconds:.1f} s")
    for r in bench.together:
        print("together", r)
    for r in bench.alone:
        print("alone", r)


if __name__ == "__main__":
    main()
