"""Load benchmark: calls per platform against the lower bound, and time at scaled limits.

Stage: bench. Each run starts a fresh sandbox (so every run finds the same differences),
pulls the demo shops' listings into a temp warehouse (``listings_pull.run``), fetches and
transforms them (``extract``/``fetch``/``transform``), approves every row (``review.decide``:
the load is measured on the whole diff, holds included), clears the sandbox's ledger and
runs ``load.run``. The calls come from the ledger; the changed rows from the run's diff
files. Lower bound: one ``items/edit`` per changed BASE row; ``ceil(n / 25)``
``bulk_update_price_quantity`` per eBay account for Inventory-API rows and
``ceil(n / 4)`` ``ReviseInventoryStatus`` for Trading rows.

Writes only under the temp work directory it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bench.fetch_bench import bench_workspace
from bench.sandbox_process import sandbox_process
from pipeline import extract, fetch, listings_pull, load, review, runs, transform, warehouse

EBAY_BATCH = 25  # SKUs per bulk_update_price_quantity
TRADING_BATCH = 4  # listings per ReviseInventoryStatus


@dataclass
class LoadRun:
    time_scale: float
    listings: int
    changed_base: int
    changed_ebay_inventory: int
    changed_ebay_trading: int
    lower_bound_base: int
    lower_bound_ebay: int  # bulk calls + Trading calls
    calls_base: int  # items/edit
    calls_ebay: int  # bulkUpdatePriceQuantity + ReviseInventoryStatus
    other_calls: dict[str, int] = field(default_factory=dict)  # reads and tokens
    base_by_account: dict[str, int] = field(default_factory=dict)  # changed BASE rows
    ok_rows: int = 0
    failed_rows: int = 0
    seconds: float = 0.0  # load.run wall time

    @property
    def changed(self) -> int:
        return self.changed_base + self.changed_ebay_inventory + self.changed_ebay_trading


def changed_rows(data_dir: Path, run_id: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Changed rows of the run's diffs: BASE per account; eBay per account and API."""
    base: dict[str, int] = {}
    ebay: dict[str, dict[str, int]] = {}
    base_path = transform.diff_path(data_dir, run_id, "base")
    if base_path.is_file():
        for account, n in pl.read_parquet(base_path).group_by("account_id").len().iter_rows():
            base[str(account)] = int(n)
    ebay_path = transform.diff_path(data_dir, run_id, "ebay")
    if ebay_path.is_file():
        grouped = pl.read_parquet(ebay_path).group_by("account_id", "api").len()
        for account, api, n in grouped.iter_rows():
            ebay.setdefault(str(account), {})[str(api)] = int(n)
    return base, ebay


def load_once(work: Path, n_asins: int, time_scale: float, index: int) -> LoadRun:
    with sandbox_process(time_scale, n_asins) as sandbox:
        ws = bench_workspace(sandbox, work / f"load-{index}")
        con = warehouse.connect(ws.data_dir)
        try:
            listings = sum(
                listings_pull.run(ws, con, platform).total("seen") for platform in ("base", "ebay")
            )
            run_id = runs.start_run(con, ws, "bench-load")
            extracted = extract.run(ws, con, run_id=run_id)
            fetch.run(ws, con, run_id, extracted.asins)
            transform.run(ws, con, run_id)
            review.decide(ws, run_id, "approve", held_only=False)
            base, ebay = changed_rows(ws.data_dir, run_id)
            sandbox.reset()
            result = load.run(ws, con, run_id, raise_on_failure=False)
            runs.finish_run(con, run_id, "ok", "bench")
        finally:
            con.close()
        per_op = {
            name: int(figures["calls"])
            for name, figures in sandbox.stats(calls=False)["per_operation"].items()
        }
    inventory = {a: apis.get("inventory", 0) for a, apis in ebay.items()}
    trading = {a: apis.get("trading", 0) for a, apis in ebay.items()}
    pushes = {"base.items/edit", "ebay.bulkUpdatePriceQuantity", "trading.ReviseInventoryStatus"}
    return LoadRun(
        time_scale=time_scale,
        listings=listings,
        changed_base=sum(base.values()),
        changed_ebay_inventory=sum(inventory.values()),
        changed_ebay_trading=sum(trading.values()),
        lower_bound_base=sum(base.values()),
        lower_bound_ebay=sum(math.ceil(n / EBAY_BATCH) for n in inventory.values())
        + sum(math.ceil(n / TRADING_BATCH) for n in trading.values()),
        calls_base=per_op.get("base.items/edit", 0),
        calls_ebay=per_op.get("ebay.bulkUpdatePriceQuantity", 0)
        + per_op.get("trading.ReviseInventoryStatus", 0),
        other_calls={k: v for k, v in per_op.items() if k not in pushes},
        ok_rows=sum(a.ok for a in result.accounts),
        failed_rows=sum(a.failed + a.quarantined for a in result.accounts),
        seconds=result.seconds,
        base_by_account=base,
    )


def measure_load(work: Path, n_asins: int, time_scale: float, runs_count: int) -> list[LoadRun]:
    return [load_once(work, n_asins, time_scale, i) for i in range(runs_count)]
