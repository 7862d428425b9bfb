"""The naive transform baseline: what the replaced system did, one listing at a time.

Stage: bench. ``python -m bench.naive_baseline DIR`` reads ``DIR/naive.sqlite`` (tables
``listings`` and ``amazon_cache``, written by :func:`bench.transform_bench.generate` from
the same rows invsync transforms) and, for each listing, reads its ASIN's cache row, prices
it in Python with the replaced system's tiered markup and, when price or stock moved,
updates that row and appends a change-log row, committing each listing. Prints JSON: the
loop's wall time and the process's peak RSS. Imports only the standard library, so the
RSS is the baseline's own.

SQLite runs in WAL mode with ``synchronous = normal`` (no fsync per commit) — kinder to the
baseline than Python's default rollback journal, which fsyncs every commit.
"""

from __future__ import annotations

import json
import resource
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The replaced system's markup: ≤1,000 ×1.4, ≤5,000 ×1.3, ≤10,000 ×1.25, above ×1.2 (issue 5),
# rounded up to 10 yen; eBay converted at 150 JPY/USD, rounded up to the cent.
_TIERS = ((1_000, 140), (5_000, 130), (10_000, 125))  # JPY, percent


def _naive_target(cost: int, platform: str) -> int:
    percent = next((p for limit, p in _TIERS if cost <= limit), 120)
    yen = -(-cost * percent // 100)  # ceiling, integer yen
    yen = -(-yen // 10) * 10  # up to 10 yen
    return yen if platform == "base" else -(-yen * 100 // 150)


def run_naive(root: Path) -> dict[str, Any]:
    """The replaced system's way: for each listing, read its ASIN's cache row, price it in
    Python, and update that one row (with its change log row), committing each listing."""
    lite = sqlite3.connect(root / "naive.sqlite")
    lite.execute("pragma synchronous = normal")  # WAL + NORMAL: no fsync per commit
    started = time.perf_counter()
    changed = 0
    rows = lite.execute("select id, platform, asin, price, stock from listings").fetchall()
    for listing_id, platform, asin, price, stock in rows:
        cached = lite.execute(
            "select price_jpy, in_stock, status from amazon_cache where asin = ?", (asin,)
        ).fetchone()
        if cached is None or cached[2] in ("unknown", "invalid_asin"):
            continue
        cost, in_stock, _ = cached
        new_price = _naive_target(cost, platform) if cost else price
        new_stock = (stock or 1) if in_stock else 0
        if (new_price, new_stock) != (price, stock):
            now = datetime.now(UTC).isoformat()
            lite.execute(
                "update listings set price = ?, stock = ?, updated_at = ? where id = ?",
                (new_price, new_stock, now, listing_id),
            )
            lite.execute(
                "insert into price_changes values (?, ?, ?, ?, ?, ?)",
                (listing_id, price, new_price, stock, new_stock, now),
            )
            changed += 1
        lite.commit()
    seconds = time.perf_counter() - started
    lite.close()
    return {
        "seconds": seconds,
        "listings": len(rows),
        "changed_rows": changed,
        "peak_rss_kib": peak_rss_kib(),
    }


def peak_rss_kib() -> int:
    """This process's high-water resident set size, KiB.

    Linux: ``VmHWM`` of /proc/self/status, the peak of this process image since exec.
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` would be wrong here: Linux carries the
    parent's peak across fork + exec into it (a child of a 500 MiB parent reports 500 MiB),
    so it is only the fallback where /proc is missing (macOS reports it in bytes)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


if __name__ == "__main__":
    print(json.dumps(run_naive(Path(sys.argv[1]))))
