"""Read-side reports: the run table (``invsync runs``) and one ASIN's price history
(``invsync history``).

Reads the warehouse (read-only) when no other process holds it, else the analysts' copy
(``analytics.duckdb``, see :mod:`pipeline.views`), else waits for the warehouse as every
command does (:func:`pipeline.warehouse.connect`); writes nothing but an optional PNG.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from pipeline import views, warehouse
from pipeline.errors import DataError, UsageError, WarehouseBusyError
from pipeline.schemas import ASIN_PATTERN
from pipeline.sql import query_frame

SPARK_LEVELS = "▁▂▃▄▅▆▇█"


@contextmanager
def reading(data_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection with the analysts' views: the warehouse itself, or, while
    another process holds it, the analysts' copy beside it; with no copy (or the copy being
    rewritten) it waits for the warehouse, then says who holds it
    (:class:`~pipeline.errors.WarehouseBusyError`)."""
    try:
        con = warehouse.connect(data_dir, read_only=True, wait=0)
        source = warehouse.warehouse_path(data_dir)
    except (WarehouseBusyError, duckdb.IOException):
        copy = _analysts_copy(data_dir)
        source = data_dir / views.ANALYTICS_NAME if copy else warehouse.warehouse_path(data_dir)
        con = copy or warehouse.connect(data_dir, read_only=True)
    try:
        with _naming_damage(data_dir, source):
            has_views = con.execute(
                "select count(*) from information_schema.tables where table_name = 'price_history'"
            ).fetchall()[0][0]
            if not has_views:
                raise UsageError(
                    f"The warehouse in {data_dir} has no runs yet; run `invsync sync` first."
                )
            yield con
    finally:
        con.close()


@contextmanager
def _naming_damage(data_dir: Path, source: Path) -> Iterator[None]:
    """A damaged block of the database read is a sentence naming it: the warehouse (rebuild
    it) or the analysts' copy (the next sync builds it anew)."""
    if source == warehouse.warehouse_path(data_dir):
        with warehouse.naming_damage(data_dir):
            yield
        return
    try:
        yield
    except duckdb.Error as exc:
        if warehouse.is_damage(source, exc):
            raise DataError(
                f"The analysts' database {source} is damaged; it holds only views, so delete "
                "it and run the command again (the next sync builds it anew)."
            ) from None
        raise


def _analysts_copy(data_dir: Path) -> duckdb.DuckDBPyConnection | None:
    """``analytics.duckdb`` read-only, or None when there is none, a sync is rewriting it
    or it is damaged (then the warehouse is waited for)."""
    path = data_dir / views.ANALYTICS_NAME
    if not path.exists():
        return None
    try:
        return views.open_for_reading(data_dir)
    except duckdb.Error as exc:
        if warehouse.is_lock_conflict(exc) or warehouse.is_damage(path, exc):
            return None
        raise


def recent_runs(con: duckdb.DuckDBPyConnection, last: int) -> pl.DataFrame:
    """The ``last`` newest runs with the figures an operator checks first."""
    return query_frame(con, "reports/recent_runs", {"last": last})


def asin_history(con: duckdb.DuckDBPyConnection, asin: str) -> pl.DataFrame:
    """Every observation of one ASIN, oldest first (facts and failures, with status)."""
    import re

    if not re.match(ASIN_PATTERN, asin):
        raise UsageError(f"{asin!r} is not an ASIN (10 letters or digits such as B0C1234567).")
    return query_frame(con, "reports/asin_history", {"asin": asin})


def sparkline(values: Sequence[int | None]) -> str:
    """One character per value, scaled between the smallest and the largest; a gap
    (no price: out of stock or a failed fetch) is a space."""
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    span = high - low
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif span == 0:
            out.append(SPARK_LEVELS[len(SPARK_LEVELS) // 2])
        else:
            # integer arithmetic: level = floor((value - low) * 7 / span)
            out.append(SPARK_LEVELS[(value - low) * (len(SPARK_LEVELS) - 1) // span])
    return "".join(out)


def plot_history(frame: pl.DataFrame, asin: str, path: Path) -> Path:
    """Write a PNG chart of price (yen) and stock over time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "Plotting needs matplotlib; install it with `pip install 'invsync[plot]'` "
            "(make setup includes it)."
        ) from None
    figure, axis = plt.subplots(figsize=(8, 3.5), dpi=100)
    facts = frame.filter(pl.col("price_jpy").is_not_null())
    axis.step(facts["fetched_at"].to_list(), facts["price_jpy"].to_list(), where="post")
    out = frame.filter(pl.col("in_stock") == False)  # noqa: E712 — polars expression
    if out.height:
        axis.scatter(out["fetched_at"].to_list(), [0] * out.height, marker="x", color="red")
    axis.set_title(f"{asin}: Amazon landed price (JPY); x = out of stock")
    axis.set_ylabel("JPY")
    figure.autofmt_xdate()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
