"""What-if benchmark: ``invsync whatif``'s replay of two rule sets over a month of history.

Stage: bench. :func:`generate` writes a synthetic history straight into the real layout
(not hundreds of real syncs): ``days`` × ``runs_per_day`` runs, each with its Amazon
snapshot (``snapshots/amazon/dt=…/run_id=…/part-0.parquet``, one row per ASIN, the
statuses of the transform bench), the listings as they stood at it
(``listings/run_id=…/platform=…/listings.parquet``: ``n_listings`` listings, 35 % shop1,
35 % shop2, 30 % eBay, first priced once by the transform's own SQL so the history starts in
steady state) and its row in ``exports/runs/runs.parquet`` (``priced_at``, ``fx_jpy_per_usd``,
``unique_asins``). At each run Amazon has moved 5 % of the prices by 3–8 % and 3 % of the
listings were edited by hand (price moved, stock 0–5) since the steady state — drawn afresh
per run, as if each load had put the rest back; a replay prices every listing of every run
all the same. Beside it,
the configuration in force (the demo defaults) and a candidate with a higher BASE markup.

Each measurement runs in a fresh subprocess (``python -m bench.whatif_bench DIR``), which
prints JSON: the wall time of :func:`pipeline.whatif.find_history` + :func:`replay` of
both rule sets (imports excluded) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.naive_baseline import peak_rss_kib
from bench.sandbox_process import child_env
from bench.transform_bench import asin_codes, listing_frames, snapshot_frame

IN_FORCE = "[sandbox]\nseed = 42\n"
CANDIDATE = (
    IN_FORCE
    + "\n[pricing.base]\nbands = [\n"
    + '  { up_to_jpy = 1000, multiplier = "1.5" },\n'
    + '  { up_to_jpy = 5000, multiplier = "1.4" },\n'
    + '  { multiplier = "1.3" },\n]\n'
)
FX = Decimal("150.2500")  # JPY per USD, every run
MOVED_SHARE = 0.03  # of the listings whose price and stock move between two runs (hand edits)
AMAZON_MOVED_SHARE = 0.05  # of the ASINs whose Amazon price moves between two runs


@dataclass(frozen=True)
class History:
    root: Path  # holds data/, invsync.toml, candidate.toml
    runs: int
    listings: int
    asins: int
    generate_seconds: float


def _history_frame(platform: str, table: pl.DataFrame) -> pl.DataFrame:
    """The listings of one platform as they stood, in the listing history's columns (the
    run's own decisions left empty: the replay does not read them)."""
    if platform == "base":
        frame = table.select(
            "account_id",
            pl.col("item_id").cast(pl.String).alias("listing_key"),
            "asin",
            "item_id",
            pl.lit(None, pl.String).alias("sku"),
            pl.lit(None, pl.String).alias("offer_id"),
            pl.lit(None, pl.String).alias("listing_id"),
            pl.lit("items/edit").alias("api"),
            pl.lit("JPY").alias("currency"),
            pl.col("price_jpy").alias("price_minor"),
            pl.col("stock").cast(pl.Int64).alias("quantity"),
            "visible",
        )
    else:
        frame = table.select(
            "account_id",
            pl.col("sku").alias("listing_key"),
            "asin",
            pl.lit(None, pl.Int64).alias("item_id"),
            "sku",
            "offer_id",
            "listing_id",
            "api",
            "currency",
            pl.col("price_cents").alias("price_minor"),
            pl.col("quantity").cast(pl.Int64).alias("quantity"),
            pl.lit(True).alias("visible"),  # eBay has no hidden state
        )
    empty = {
        "cost_jpy": pl.Int64, "source_status": pl.String, "source_says": pl.String,
        "source_run_id": pl.String, "current_profit_minor": pl.Int64,
        "change_kind": pl.String, "new_price_minor": pl.Int64, "new_quantity": pl.Int64,
        "new_visible": pl.Boolean, "held": pl.Boolean, "hold_reason": pl.String,
        "expected_profit_minor": pl.Int64, "change_id": pl.String,
    }  # fmt: skip
    return frame.with_columns(
        pl.lit(False).alias("drifted"), *(pl.lit(None, t).alias(n) for n, t in empty.items())
    )


def _move(frame: pl.DataFrame, price: str, stock: str, rng: np.random.Generator) -> pl.DataFrame:
    """``MOVED_SHARE`` of the listings with a price moved 3–8 % and a new stock of 0–5."""
    moved = rng.random(frame.height) < MOVED_SHARE
    factor = 1 + rng.uniform(0.03, 0.08, frame.height) * rng.choice([-1, 1], frame.height)
    prices = frame[price].to_numpy()
    new_prices = np.maximum((prices * factor).astype(np.int64), 99)
    stocks = frame[stock].to_numpy()
    new_stocks = rng.integers(0, 6, frame.height).astype(stocks.dtype)
    changed = frame.with_columns(
        pl.Series(price, np.where(moved, new_prices, prices)),
        pl.Series(stock, np.where(moved, new_stocks, stocks)),
    )
    if "visible" in frame.columns:
        changed = changed.with_columns((pl.col(stock) > 0).alias("visible"))
    return changed


def _settled(
    base: pl.DataFrame, ebay: pl.DataFrame, snapshot: pl.DataFrame, priced_at: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The listings after invsync priced them once against ``snapshot`` with the rules in
    force (the transform's own :func:`~pipeline.transform.compute_diffs`, in memory), so the
    history starts where a shop in steady state stands."""
    import duckdb

    from pipeline import pricing
    from pipeline.config import parse_settings
    from pipeline.transform import compute_diffs

    stored = pl.concat(
        [
            _history_frame("base", base).with_columns(pl.lit("base").alias("platform")),
            _history_frame("ebay", ebay).with_columns(pl.lit("ebay").alias("platform")),
        ]
    )
    con = duckdb.connect(":memory:")
    try:
        con.execute("create table runs (run_id varchar, unique_asins integer)")
        computed = compute_diffs(
            con,
            run_id="settle",
            snapshot=snapshot,
            settings=parse_settings({"sandbox": {"seed": 42}}),
            as_of=priced_at,
            fx=pricing.FxRate(FX, priced_at, "bench"),
            stored_listings=stored,
        )
    finally:
        con.close()
    pushed = {
        p: frame.select("account_id", "listing_key", "new_price_minor", "new_quantity")
        for p, frame in computed.frames.items()
    }
    base = (
        base.with_columns(pl.col("item_id").cast(pl.String).alias("listing_key"))
        .join(pushed["base"], on=["account_id", "listing_key"], how="left")
        .with_columns(
            pl.coalesce("new_price_minor", "price_jpy").alias("price_jpy"),
            pl.coalesce("new_quantity", "stock").cast(pl.Int32).alias("stock"),
        )
        .with_columns((pl.col("stock") > 0).alias("visible"))
        .drop("listing_key", "new_price_minor", "new_quantity")
    )
    ebay = (
        ebay.join(
            pushed["ebay"].rename({"listing_key": "sku"}), on=["account_id", "sku"], how="left"
        )
        .with_columns(
            pl.coalesce("new_price_minor", "price_cents").alias("price_cents"),
            pl.coalesce("new_quantity", "quantity").cast(pl.Int32).alias("quantity"),
        )
        .drop("new_price_minor", "new_quantity")
    )
    return base, ebay


def _amazon_moves(snapshot: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """``AMAZON_MOVED_SHARE`` of the ASINs with their landed price moved 3–8 %."""
    n = snapshot.height
    moved = pl.Series(rng.random(n) < AMAZON_MOVED_SHARE)
    factor = pl.Series(1 + rng.uniform(0.03, 0.08, n) * rng.choice([-1, 1], n))
    return snapshot.with_columns(
        pl.when(moved)
        .then((pl.col("price_jpy") * factor).round().cast(pl.Int64))
        .otherwise(pl.col("price_jpy"))
        .alias("price_jpy")
    )


def generate(
    root: Path, days: int, runs_per_day: int, n_listings: int, *, seed: int = 15
) -> History:
    """Write the synthetic history under ``root`` (module docstring)."""
    from pipeline import layout

    started = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    data = root / "data"
    root.mkdir(parents=True)
    (root / "invsync.toml").write_text(IN_FORCE, encoding="utf-8")
    (root / "candidate.toml").write_text(CANDIDATE, encoding="utf-8")
    rng = np.random.default_rng(seed)
    n_asins = max(1, n_listings // 2)
    asins = asin_codes(n_asins)
    tables = listing_frames(asins, n_listings, rng)
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
    amazon = snapshot_frame(asins, "settle", rng)
    base, ebay = _settled(tables["listings_base"], tables["listings_ebay"], amazon, first)
    runs = []
    for number in range(days * runs_per_day):
        priced_at = first + timedelta(hours=24 * number / runs_per_day)
        run_id = f"{priced_at:%Y%m%dT%H%M%SZ}-{number:06x}"
        snapshot = _amazon_moves(amazon, rng).with_columns(
            pl.lit(run_id).alias("run_id"),
            pl.when(pl.col("status") == "fallback")
            .then(pl.lit(priced_at) - pl.duration(seconds=pl.col("fallback_age_seconds")))
            .otherwise(pl.lit(priced_at) - pl.duration(minutes=10))
            .dt.cast_time_unit("us")
            .alias("fetched_at"),
        )
        path = layout.snapshot_path(data, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.drop("run_id").write_parquet(path)  # the run is in the path only
        stood = {
            "base": _move(base, "price_jpy", "stock", rng),
            "ebay": _move(ebay, "price_cents", "quantity", rng),
        }
        for platform, table in stood.items():
            target = layout.listing_history_path(data, run_id, platform)
            target.parent.mkdir(parents=True, exist_ok=True)
            _history_frame(platform, table).write_parquet(target)
        runs.append((run_id, priced_at, n_asins))
    _write_runs(data, runs)
    seconds = time.perf_counter() - started
    meta = {"runs": len(runs), "listings": n_listings, "asins": n_asins}
    (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return History(root, len(runs), n_listings, n_asins, seconds)


def _write_runs(data: Path, runs: list[tuple[str, datetime, int]]) -> None:
    from pipeline import layout

    frame = pl.DataFrame(
        {
            "run_id": [r for r, _, _ in runs],
            "command": "sync",
            "started_at": [t - timedelta(minutes=12) for _, t, _ in runs],
            "priced_at": [t for _, t, _ in runs],
            "transform_seconds": 1.0,
            "unique_asins": [n for _, _, n in runs],
            "fx_jpy_per_usd": [FX] * len(runs),
        },
        schema={
            "run_id": pl.String,
            "command": pl.String,
            "started_at": pl.Datetime("us", "UTC"),
            "priced_at": pl.Datetime("us", "UTC"),
            "transform_seconds": pl.Float64,
            "unique_asins": pl.Int32,
            "fx_jpy_per_usd": pl.Decimal(12, 4),
        },
    )
    target = layout.export_path(data, "runs")
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(target)


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatifRun:
    runs: int
    listings: int
    seconds: float  # find_history + replay of both rule sets
    peak_rss_mib: float
    detail: dict[str, Any]


def measure(history: History) -> WhatifRun:
    """Replay ``history`` with both rule sets in a fresh process."""
    answer = subprocess.run(
        [sys.executable, "-m", "bench.whatif_bench", str(history.root)],
        env=child_env(),
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    if answer.returncode != 0:
        raise RuntimeError(f"the what-if measurement failed:\n{answer.stderr[-3000:]}")
    figures = json.loads(answer.stdout.strip().splitlines()[-1])
    return WhatifRun(
        runs=history.runs,
        listings=history.listings,
        seconds=figures.pop("seconds"),
        peak_rss_mib=figures.pop("peak_rss_kib") / 1024,
        detail=figures,
    )


def run_whatif(root: Path) -> dict[str, Any]:
    """The measured part: find the history and replay both rule sets over all of it."""
    from pipeline import whatif
    from pipeline.config import load_settings

    in_force = whatif.RuleSet("in force", load_settings(root / "invsync.toml"), "invsync.toml")
    candidate = whatif.RuleSet(
        "candidate", load_settings(root / "candidate.toml"), "candidate.toml"
    )
    started, cpu = time.perf_counter(), time.process_time()
    history = whatif.find_history(root / "data", datetime(2000, 1, 1, tzinfo=UTC))
    result = whatif.replay(history, [in_force, candidate])
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu  # every thread of the process, user + system
    totals = result.accounts.group_by("rule_set").agg(
        pl.col("changes").sum(), pl.col("below_cost").sum(), pl.col("listings").sum()
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "replayed_runs": len(history.runs),
        "priced_rows": int(totals["listings"].sum()),
        "changes": {r["rule_set"]: int(r["changes"]) for r in totals.iter_rows(named=True)},
        "below_cost": {r["rule_set"]: int(r["below_cost"]) for r in totals.iter_rows(named=True)},
        "peak_rss_kib": peak_rss_kib(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.whatif_bench")
    parser.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(run_whatif(args.root)))


if __name__ == "__main__":
    main()
