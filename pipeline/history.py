"""Read-side reports: the run table (``invsync runs``) and one ASIN's price history
(``invsync history``).

Reads the warehouse (read-only) when no other process holds it, else the analysts' copy
(``analytics.duckdb``, see :mod:`pipeline.views`), else waits for the warehouse as every
command does (:func:`pipeline.warehouse.connect`); writes nothing but an optional PNG.

Times are stored in UTC; the chart shows them in the ``[display] timezone`` and names it
(:mod:`pipeline.display`). Out of stock has no price: the chart and the sparkline draw it as
a gap, never as ¥0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline import display, views, warehouse
from pipeline.errors import DataError, UsageError, WarehouseBusyError
from pipeline.history_store import HistoryStore
from pipeline.schemas import ASIN_PATTERN
from pipeline.sql import query_frame

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
SPARK_OUT_OF_STOCK = "·"  # a gap at no height: out of stock has no price, not ¥0


@contextmanager
def reading(
    data_dir: Path, history: HistoryStore | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection with the analysts' views: the warehouse itself, or, while
    another process holds it, the analysts' copy beside it; with no copy (or the copy being
    rewritten) it waits for the warehouse, then says who holds it
    (:class:`~pipeline.errors.WarehouseBusyError`)."""
    try:
        con = warehouse.connect(data_dir, read_only=True, wait=0)
        source = warehouse.warehouse_path(data_dir)
    except (WarehouseBusyError, duckdb.IOException):
        copy = _analysts_copy(data_dir, history)
        source = data_dir / views.ANALYTICS_NAME if copy else warehouse.warehouse_path(data_dir)
        con = copy or warehouse.connect(data_dir, read_only=True)
    if source == warehouse.warehouse_path(data_dir):  # its views may read a remote history
        views.reading_history(con, history)
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


def _analysts_copy(
    data_dir: Path, history: HistoryStore | None
) -> duckdb.DuckDBPyConnection | None:
    """``analytics.duckdb`` read-only, or None when there is none, a sync is rewriting it
    or it is damaged (then the warehouse is waited for)."""
    path = data_dir / views.ANALYTICS_NAME
    if not path.exists():
        return None
    try:
        return views.open_for_reading(data_dir, history)
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


def sparkline(values: Sequence[int | None], in_stock: Sequence[bool | None] | None = None) -> str:
    """One character per value, scaled between the smallest and the largest price. Out of
    stock (``in_stock`` False) is :data:`SPARK_OUT_OF_STOCK`, a gap in the line at no
    height; any other missing price (a failed fetch: no answer) is a space."""
    stock = list(in_stock) if in_stock is not None else [None] * len(values)
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (0, 0)
    span = high - low
    out = []
    for value, stocked in zip(values, stock, strict=True):
        if value is None:
            out.append(SPARK_OUT_OF_STOCK if stocked is False else " ")
        elif span == 0:
            out.append(SPARK_LEVELS[len(SPARK_LEVELS) // 2])
        else:
            # integer arithmetic: level = floor((value - low) * 7 / span)
            out.append(SPARK_LEVELS[(value - low) * (len(SPARK_LEVELS) - 1) // span])
    return "".join(out)


@dataclass(frozen=True)
class ChartSeries:
    """What the history chart draws, one entry per observation with an answer.

    ``prices`` holds the landed price in yen at each of ``times``, or None where the ASIN was
    out of stock: a gap that breaks the line, never a point at ¥0. ``out_of_stock`` are the
    times marked on the time axis, and ``out_of_stock_spans`` the stretches shaded, each from
    its first out-of-stock observation to the next observation in stock (or its last). Observations without an answer (a
    failed fetch: no price and no stock state) are left out, so the line carries across them.
    """

    times: list[datetime]
    prices: list[int | None]
    out_of_stock: list[datetime]
    out_of_stock_spans: list[tuple[datetime, datetime]]


def chart_series(frame: pl.DataFrame) -> ChartSeries:
    """The chart's data from :func:`asin_history`'s frame (oldest first)."""
    said = pl.col("price_jpy").is_not_null() | (pl.col("in_stock") == False)  # noqa: E712
    answered = frame.filter(said & pl.col("fetched_at").is_not_null())
    times = answered["fetched_at"].to_list()
    stocked = answered["in_stock"].to_list()
    prices = [
        None if s is False else p
        for p, s in zip(answered["price_jpy"].to_list(), stocked, strict=True)
    ]
    spans: list[tuple[datetime, datetime]] = []
    for i, s in enumerate(stocked):
        if s is not False:
            continue
        end = times[i + 1] if i + 1 < len(times) else times[i]
        if spans and spans[-1][1] == times[i] and stocked[i - 1] is False:
            spans[-1] = (spans[-1][0], end)  # the same stretch goes on
        else:
            spans.append((times[i], end))
    return ChartSeries(
        times=times,
        prices=prices,
        out_of_stock=[t for t, s in zip(times, stocked, strict=True) if s is False],
        out_of_stock_spans=spans,
    )


def plot_history(frame: pl.DataFrame, asin: str, path: Path, timezone: str) -> Path:
    """Write a PNG chart of the landed price (yen) over time: out of stock is a gap in the
    line, shaded, with a marker on the time axis; the time axis shows dates and wall times in
    ``timezone`` and names it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError:
        raise UsageError(
            "Plotting needs matplotlib; install it with `pip install 'invsync[plot]'` "
            "(make setup includes it)."
        ) from None
    series = chart_series(frame)
    zone = display.zone(timezone)
    figure, axis = plt.subplots(figsize=(9, 4), dpi=100)
    xs = [mdates.date2num(t) for t in series.times]  # aware UTC times: days since the epoch
    ys = [math.nan if p is None else float(p) for p in series.prices]  # nan breaks the line
    axis.step(xs, ys, where="post", color="#36c", label="landed price")
    axis.plot(xs, ys, linestyle="none", marker=".", color="#36c")
    for begin, end in series.out_of_stock_spans:
        axis.axvspan(
            mdates.date2num(begin), mdates.date2num(end), color="#d33", alpha=0.08, linewidth=0
        )
    if series.out_of_stock:
        marks = [mdates.date2num(t) for t in series.out_of_stock]
        axis.plot(
            marks, [0.0] * len(marks), linestyle="none", marker="^", markersize=8,
            color="#d33", clip_on=False, label="out of stock",
            transform=axis.get_xaxis_transform(),  # y in axis units: on the time axis
        )  # fmt: skip
    if not any(p is not None for p in series.prices):
        axis.set_yticks([])
        axis.text(0.5, 0.5, "no price observed", ha="center", transform=axis.transAxes)
    else:
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole yen only
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"¥{value:,.0f}"))
    locator = mdates.AutoDateLocator(tz=zone)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(
            locator, tz=zone, show_offset=True,
            formats=["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%H:%M:%S"],
            zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
        )
    )  # fmt: skip
    newest = series.times[-1] if series.times else None
    axis.set_xlabel(f"date and time ({display.zone_name(timezone, newest)})")
    axis.set_ylabel("price (JPY)")
    axis.set_title(f"{asin}: Amazon landed price; ▲ and shading: out of stock")
    axis.grid(True, alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
