"""Transform benchmark: extract + transform + validation on synthetic listings, beside a
naive row-by-row SQLite baseline.

Stage: bench. :func:`generate` writes a template data directory: a warehouse with
``n_listings`` listings (BASE shop1 and shop2, eBay ebay-main) over ``n_asins`` ASINs, a run
with its validated Amazon snapshot (one row per ASIN), and a SQLite copy of the same rows
for the baseline. It then runs invsync's transform once and writes the new prices back
into all but ``changed_share`` of the listings, so a measured run diffs a realistic share
(a sync where every listing changes is a first sync, not the steady state).

Each measurement copies the template and runs in a fresh subprocess
(``python -m bench.transform_bench invsync|naive DIR``) that prints JSON: the wall time
of the measured part and the process's peak RSS (``resource.getrusage``, the high-water
mark, imports and all).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.naive_baseline import peak_rss_kib
from bench.sandbox_process import child_env

ACCOUNT_SHARES = (("shop1", "base", 0.35), ("shop2", "base", 0.35), ("ebay-main", "ebay", 0.30))
STATUS_SHARES = (  # snapshot statuses, shares of ASINs (a run after fallback resolution)
    ("ok", 0.885),
    ("no_offer", 0.04),
    ("filtered_out", 0.03),
    ("fallback", 0.02),
    ("unknown", 0.015),
    ("invalid_asin", 0.01),
)
CONFIG = "[sandbox]\nseed = 42\n"
_ALNUM = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def asin_codes(n: int) -> list[str]:
    """``n`` distinct ASIN-shaped codes: ``B0`` + the index in base 36 (8 digits)."""
    index = np.arange(n, dtype=np.int64)
    digits = []
    for _ in range(8):
        index, digit = np.divmod(index, 36)
        digits.append(_ALNUM[digit])
    chars = np.stack(digits[::-1], axis=1)
    return ["B0" + "".join(row) for row in chars.tolist()]


# --- generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    root: Path  # holds data/, invsync.toml, naive.sqlite, meta.json
    run_id: str
    listings: int
    asins: int
    diff_rows_before: int  # rows of the first (everything-differs) transform
    generate_seconds: float

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "invsync.toml"

    @property
    def sqlite_path(self) -> Path:
        return self.root / "naive.sqlite"


def snapshot_frame(asins: list[str], run_id: str, rng: np.random.Generator) -> pl.DataFrame:
    """One snapshot row per ASIN with the statuses of STATUS_SHARES, valid by Snapshot."""
    from pipeline.snapshots import SNAPSHOT_SCHEMA

    n = len(asins)
    names = [s for s, _ in STATUS_SHARES]
    status = np.array(names)[rng.choice(len(names), size=n, p=[p for _, p in STATUS_SHARES])]
    priced = np.isin(status, ["ok", "fallback"])
    listing = (np.exp(rng.uniform(np.log(300), np.log(30_000), n)) // 10 * 10).astype(np.int64)
    shipping = np.where(rng.random(n) < 0.7, 0, rng.choice([350, 500, 640, 800], n))
    points = np.where(rng.random(n) < 0.3, listing * rng.choice([1, 2, 3, 5, 10], n) // 100, 0)
    now = datetime.now(UTC)
    raw = pl.DataFrame(
        {
            "asin": asins,
            "status": status,
            "priced": priced,
            "listing": listing,
            "shipping": shipping.astype(np.int64),
            "points": points.astype(np.int64),
            "offers": rng.integers(0, 21, n).astype(np.int32),
            "eligible": rng.integers(1, 6, n).astype(np.int32),
            "prime": rng.random(n) < 0.5,
            "fba": rng.random(n) < 0.5,
            "hours": rng.choice([0, 24, 48, 72], n).astype(np.int32),
            "age": rng.uniform(600, 20_000, n),
        }
    )
    priced_col, status_col = pl.col("priced"), pl.col("status")

    def when(condition: pl.Expr, value: pl.Expr | str) -> pl.Expr:
        return pl.when(condition).then(value if isinstance(value, pl.Expr) else pl.lit(value))

    frame = raw.select(
        pl.lit(run_id).alias("run_id"),
        "asin",
        pl.lit(now).dt.cast_time_unit("us").alias("fetched_at"),
        pl.lit("item_offers").alias("operation"),
        "status",
        when(priced_col, pl.col("listing") + pl.col("shipping") - pl.col("points")).alias(
            "price_jpy"
        ),
        when(priced_col, pl.col("listing")).alias("listing_price_jpy"),
        when(priced_col, pl.col("shipping")).alias("shipping_jpy"),
        when(priced_col, pl.col("points")).alias("points_jpy"),
        pl.when(priced_col)
        .then(True)
        .when(status_col.is_in(["no_offer", "filtered_out"]))
        .then(False)
        .alias("in_stock"),
        when(status_col != "unknown", pl.col("offers")).alias("offer_count"),
        when(priced_col, pl.col("eligible")).alias("eligible_offer_count"),
        when(priced_col, "A1BENCHSELLER0").alias("seller_id"),
        when(priced_col, pl.col("prime")).alias("is_prime"),
        when(priced_col, pl.col("fba")).alias("is_fba"),
        when(priced_col, "NOW").alias("availability_type"),
        when(priced_col, pl.col("hours")).alias("max_shipping_hours"),
        when(status_col.is_in(["fallback", "unknown", "invalid_asin"]), "InternalFailure").alias(
            "error_code"
        ),
        when(status_col == "fallback", "20200101T000000Z-000000").alias("fallback_from_run"),
        when(status_col == "fallback", pl.col("age")).alias("fallback_age_seconds"),
    ).cast(pl.Schema(SNAPSHOT_SCHEMA))
    # a fallback observation carries the time of the run it falls back to
    return frame.with_columns(
        pl.when(pl.col("status") == "fallback")
        .then(pl.col("fetched_at") - pl.duration(seconds=pl.col("fallback_age_seconds")))
        .otherwise(pl.col("fetched_at"))
        .dt.cast_time_unit("us")
        .alias("fetched_at")
    ).sort("asin")


def listing_frames(
    asins: list[str], n_listings: int, rng: np.random.Generator
) -> dict[str, pl.DataFrame]:
    """Listings per table: every ASIN listed at least once, the rest drawn at random."""
    n_asins = len(asins)
    pick = np.concatenate(
        [rng.permutation(n_asins), rng.integers(0, n_asins, max(0, n_listings - n_asins))]
    )[:n_listings]
    rng.shuffle(pick)
    codes = np.array(asins)[pick]
    counts = [int(n_listings * share) for _, _, share in ACCOUNT_SHARES]
    counts[-1] = n_listings - sum(counts[:-1])
    now = datetime.now(UTC) - timedelta(days=1)
    base_parts, start = [], 0
    ebay: pl.DataFrame | None = None
    for (account, platform, _), count in zip(ACCOUNT_SHARES, counts, strict=True):
        part = codes[start : start + count]
        start += count
        price = (np.exp(rng.uniform(np.log(500), np.log(45_000), count)) // 10 * 10).astype(
            np.int64
        )
        stock = rng.integers(0, 6, count)
        if platform == "base":
            base_parts.append(
                pl.DataFrame({
                    "account_id": account,
                    "item_id": np.arange(70_000_001, 70_000_001 + count, dtype=np.int64),
                    "asin": part, "price_jpy": price, "stock": stock.astype(np.int32),
                    "visible": stock > 0, "status": "listed", "source": "import", "updated_at": now,
                })
            )  # fmt: skip
        else:
            ebay = pl.DataFrame({
                "account_id": account,
                "sku": [f"s-{a}-{i}" for i, a in enumerate(part.tolist())],
                "offer_id": [str(9_000_000_000 + i) for i in range(count)],
                "listing_id": [str(3_000_000_000 + i) for i in range(count)],
                "asin": part, "price_cents": np.maximum(99, price * 100 // 150),
                "currency": "USD", "quantity": stock.astype(np.int32), "api": "inventory",
                "status": "listed", "source": "import", "updated_at": now,
            })  # fmt: skip
    assert ebay is not None
    return {"listings_base": pl.concat(base_parts), "listings_ebay": ebay}


def _insert(con: Any, table: str, frame: pl.DataFrame) -> None:
    con.register("bench_rows", frame.to_arrow())
    try:
        columns = ", ".join(frame.columns)
        con.execute(f"insert into {table} ({columns}) select {columns} from bench_rows")
    finally:
        con.unregister("bench_rows")


def settle_listings(con: Any, data_dir: Path, run_id: str) -> int:
    """Write the first transform's new values into every listing it diffed, then forget
    that transform: the listings now stand where invsync would put them. Returns the number
    of rows the first transform diffed."""
    from pipeline.transform import diff_path

    total = 0
    for platform, table, key in (
        ("base", "listings_base", "item_id"),
        ("ebay", "listings_ebay", "sku"),
    ):
        diff = pl.read_parquet(diff_path(data_dir, run_id, platform))
        total += diff.height
        if platform == "base":
            values = diff.select(
                "account_id", pl.col("listing_key").cast(pl.Int64).alias("item_id"),
                price="new_price_minor", stock="new_quantity", visible="new_visible",
            )  # fmt: skip
            assignments = "price_jpy = s.price, stock = s.stock, visible = s.visible"
        else:
            values = diff.select(
                "account_id", sku="listing_key", price="new_price_minor", quantity="new_quantity"
            )
            assignments = "price_cents = s.price, quantity = s.quantity"
        _update(con, table, key, assignments, values)
        diff_path(data_dir, run_id, platform).unlink()
    for table in ("diff_history", "transform_platform_stats"):
        con.execute(f"delete from {table} where run_id = $r", {"r": run_id})
    return total


def drift_listings(con: Any, share: float, rng: np.random.Generator) -> None:
    """Move the price of ``share`` of the listings by 3–8 % up or down, as a day of Amazon
    price drift does to the targets: the next transform diffs about that share, with the
    small moves a steady-state sync sees (rounded half up to 10 yen or to the cent)."""
    for table, key, column, unit in (
        ("listings_base", "item_id", "price_jpy", 10),
        ("listings_ebay", "sku", "price_cents", 1),
    ):
        rows = con.sql(f"select account_id, {key}, {column} as price from {table}").pl()
        picked = rows.sample(fraction=share, seed=int(rng.integers(1 << 31)))
        factor = rng.uniform(0.03, 0.08, picked.height) * rng.choice([-1, 1], picked.height)
        moved = ((picked["price"].to_numpy() * (1 + factor)) / unit + 0.5).astype(np.int64) * unit
        values = picked.with_columns(price=pl.Series(np.maximum(moved, 99)))
        _update(con, table, key, f"{column} = s.price", values)


def _update(con: Any, table: str, key: str, assignments: str, values: pl.DataFrame) -> None:
    con.register("settled", values.to_arrow())
    try:
        con.execute(
            f"update {table} set {assignments} from settled s "
            f"where {table}.account_id = s.account_id and {table}.{key} = s.{key}"
        )
    finally:
        con.unregister("settled")


def naive_sqlite(path: Path, con: Any) -> None:
    """The same listings and the snapshot as the replaced system kept them: SQLite tables
    ``listings`` and ``amazon_cache``."""
    listings = con.execute(
        "select 'base', account_id, cast(item_id as varchar), asin, price_jpy, stock"
        " from listings_base union all"
        " select 'ebay', account_id, sku, asin, price_cents, quantity from listings_ebay"
    ).fetchall()
    path.unlink(missing_ok=True)
    lite = sqlite3.connect(path)
    try:
        lite.executescript(
            "pragma journal_mode = wal;"
            "create table listings (id integer primary key, platform text, account_id text,"
            " listing_key text, asin text, price integer, stock integer, updated_at text);"
            "create table amazon_cache (asin text primary key, price_jpy integer,"
            " in_stock integer, status text);"
            "create table price_changes (listing_id integer, old_price integer,"
            " new_price integer, old_stock integer, new_stock integer, at text);"
        )
        lite.executemany(
            "insert into listings (platform, account_id, listing_key, asin, price, stock)"
            " values (?, ?, ?, ?, ?, ?)",
            listings,
        )
        lite.commit()
    finally:
        lite.close()


def naive_cache_rows(snapshot: pl.DataFrame) -> list[tuple[Any, ...]]:
    return [
        (a, p, None if s is None else int(s), st)
        for a, p, s, st in snapshot.select("asin", "price_jpy", "in_stock", "status").iter_rows()
    ]


def generate(
    root: Path,
    n_listings: int,
    n_asins: int,
    changed_share: float,
    *,
    with_naive: bool = True,
    seed: int = 42,
) -> Template:
    """Write the template data directory under ``root`` (see the module docstring)."""
    from pipeline import extract, runs, snapshots, transform, warehouse
    from pipeline.config import open_workspace

    started = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "invsync.toml").write_text(CONFIG, encoding="utf-8")
    rng = np.random.default_rng(seed)
    ws = open_workspace(config=root / "invsync.toml", data_dir=root / "data", environ={})
    con = warehouse.connect(ws.data_dir)
    try:
        asins = asin_codes(n_asins)
        for table, frame in listing_frames(asins, n_listings, rng).items():
            _insert(con, table, frame)
        run_id = runs.start_run(con, ws, "bench-transform")
        snapshot = snapshot_frame(asins, run_id, rng)
        snapshots.write_snapshot(ws.data_dir, run_id, snapshot)
        extract.run(ws, con, run_id=run_id)
        transform.run(ws, con, run_id)
        first = settle_listings(con, ws.data_dir, run_id)
        drift_listings(con, changed_share, rng)
        if with_naive:
            naive_sqlite(root / "naive.sqlite", con)
            lite = sqlite3.connect(root / "naive.sqlite")
            try:
                lite.executemany(
                    "insert into amazon_cache values (?, ?, ?, ?)", naive_cache_rows(snapshot)
                )
                lite.commit()
            finally:
                lite.close()
        con.execute("checkpoint")
    finally:
        con.close()
    template = Template(root, run_id, n_listings, n_asins, first, time.perf_counter() - started)
    (root / "meta.json").write_text(
        json.dumps({"run_id": run_id, "listings": n_listings, "asins": n_asins}), encoding="utf-8"
    )
    return template


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    kind: str  # invsync | naive
    listings: int
    seconds: float  # the measured part
    peak_rss_mib: float  # the subprocess's high-water RSS
    detail: dict[str, Any]


def measure(template: Template, kind: str, scratch: Path) -> Measurement:
    """Copy the template to ``scratch`` and measure ``kind`` there in a fresh process."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(template.root, scratch)
    module = "bench.transform_bench" if kind == "invsync" else "bench.naive_baseline"
    answer = subprocess.run(
        [sys.executable, "-m", module, str(scratch)],
        env=child_env(),
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if answer.returncode != 0:
        raise RuntimeError(f"the {kind} transform measurement failed:\n{answer.stderr[-3000:]}")
    figures = json.loads(answer.stdout.strip().splitlines()[-1])
    shutil.rmtree(scratch, ignore_errors=True)
    return Measurement(
        kind=kind,
        listings=template.listings,
        seconds=figures.pop("seconds"),
        peak_rss_mib=figures.pop("peak_rss_kib") / 1024,
        detail=figures,
    )


def run_invsync(root: Path) -> dict[str, Any]:
    """The measured part: extract + transform (+ every validation they do) of the run."""
    from pipeline import extract, transform, warehouse
    from pipeline.config import open_workspace

    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    ws = open_workspace(config=root / "invsync.toml", data_dir=root / "data", environ={})
    opened = time.perf_counter()
    con = warehouse.connect(ws.data_dir)
    started = time.perf_counter()
    extracted = extract.run(ws, con, run_id=meta["run_id"])
    transformed = transform.run(ws, con, meta["run_id"])
    seconds = time.perf_counter() - started
    con.close()
    return {
        "seconds": seconds,
        "connect_seconds": started - opened,
        "extract_seconds": extracted.seconds,
        "transform_seconds": transformed.seconds,
        "unique_asins": extracted.unique_asins,
        "diff_rows": transformed.rows,
        "held_rows": transformed.held,
        "peak_rss_kib": peak_rss_kib(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transform_bench")
    parser.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    import pipeline.transform  # noqa: F401 - imports are not part of the measured time

    print(json.dumps(run_invsync(args.root)))


if __name__ == "__main__":
    main()
