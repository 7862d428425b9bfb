"""Amazon snapshots: where they live, how they are written and read, and the last good
observation of an ASIN for fallback.

Stage: fetch writes (one file per run, and while it runs a checkpoint: one small part per
batch under ``<data_dir>/staging/fetch/run_id=<id>/``, read back by a resumed fetch and
removed once the snapshot is written), transform and the analysts' views read. Files:
``<data_dir>/snapshots/amazon/dt=YYYY-MM-DD/run_id=<id>/part-0.parquet``, Hive-partitioned
so DuckDB, Spark or Trino read them as one table. ``dt`` is the run's start date (UTC, from
the run id), so a run that crosses midnight or is resumed the next day keeps one file.
The run id is in the path only: a file (and a checkpoint part) holds every column of
:class:`pipeline.schemas.Snapshot` except ``run_id`` (:data:`FILE_COLUMNS`), which every
reader adds back from the path, so pandas, polars, pyarrow and DuckDB read the folder as one
Hive-partitioned dataset. Files an older invsync wrote with the column are rewritten once
without it (:func:`pipeline.warehouse.upgrade_files`).
Every file is validated with :class:`pipeline.schemas.Snapshot` on write (atomically:
temp file, then rename) and on read. The run's own snapshot, damaged, is a
:class:`~pipeline.errors.DataError` naming it; an older one, damaged, is skipped with one
warning by every reader of history (:func:`readable_snapshot_files`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import warehouse
from pipeline.errors import DataError
from pipeline.layout import (
    CHECKPOINT_COUNTERS,
    CHECKPOINT_PARTS,
    LEGACY_CHECKPOINT_COUNTERS,
    SNAPSHOT_FILE,
    fetch_checkpoint_dir,
    snapshot_path,
    snapshots_root,
)
from pipeline.schemas import Snapshot
from pipeline.sql import query_frame
from pipeline.statuses import GOOD_STATUSES

# The snapshot's columns and types, in order (pipeline.schemas.Snapshot, strict).
SNAPSHOT_SCHEMA: dict[str, Any] = {
    "run_id": pl.String,
    "asin": pl.String,
    "fetched_at": pl.Datetime(time_unit="us", time_zone="UTC"),
    "operation": pl.String,
    "status": pl.String,
    "price_jpy": pl.Int64,
    "listing_price_jpy": pl.Int64,
    "shipping_jpy": pl.Int64,
    "points_jpy": pl.Int64,
    "in_stock": pl.Boolean,
    "offer_count": pl.Int32,
    "eligible_offer_count": pl.Int32,
    "seller_id": pl.String,
    "is_prime": pl.Boolean,
    "is_fba": pl.Boolean,
    "availability_type": pl.String,
    "max_shipping_hours": pl.Int32,
    "error_code": pl.String,
    "fallback_from_run": pl.String,
    "fallback_age_seconds": pl.Float64,
}


# What a snapshot file holds: the frame's columns less those of its path (the run id)
FILE_COLUMNS = tuple(c for c in SNAPSHOT_SCHEMA if c != "run_id")


def snapshot_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Rows (dicts with snapshot columns; missing ones are null) → a frame with exactly the
    snapshot's columns and types, sorted by ASIN."""
    frame = pl.DataFrame(list(rows), schema=SNAPSHOT_SCHEMA, orient="row")
    return frame.sort("asin")


def empty_snapshot() -> pl.DataFrame:
    return pl.DataFrame(schema=SNAPSHOT_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the snapshot's column order and types (extra columns are a bug)."""
    missing = [c for c in SNAPSHOT_SCHEMA if c not in frame.columns]
    for column in missing:
        frame = frame.with_columns(pl.lit(None, dtype=SNAPSHOT_SCHEMA[column]).alias(column))
    return frame.select([pl.col(c).cast(t) for c, t in SNAPSHOT_SCHEMA.items()]).sort("asin")


def write_snapshot(data_dir: Path, run_id: str, frame: pl.DataFrame) -> Path:
    """Validate and write the run's snapshot atomically; returns its path."""
    frame = conform(frame)
    if frame.height and frame["run_id"].ne(run_id).any():
        raise ValueError("every snapshot row must carry the run id of its file")
    frame = Snapshot.validate(frame, lazy=True)
    return warehouse.write_parquet_atomic(
        frame.select(FILE_COLUMNS), snapshot_path(data_dir, run_id)
    )


def read_snapshot(data_dir: Path, run_id: str) -> pl.DataFrame:
    """The run's snapshot, validated (a :class:`DataError` names a missing or bad file)."""
    path = snapshot_path(data_dir, run_id)
    if not path.is_file():
        raise DataError(
            f"Run {run_id} has no Amazon snapshot at {path}; run `invsync fetch` "
            "(or `invsync sync`) first."
        )
    return warehouse.read_parquet_validated(
        path,
        Snapshot,
        recovery=f"fetch run {run_id} again with `invsync fetch` (or `invsync sync`)",
        path_keys={"run_id": run_id},
    ).select(list(SNAPSHOT_SCHEMA))


def snapshot_exists(data_dir: Path, run_id: str) -> bool:
    return snapshot_path(data_dir, run_id).is_file()


def snapshot_files(data_dir: Path, *, since: datetime | None = None) -> list[Path]:
    """Every snapshot file, oldest partition first; with ``since``, only partitions whose
    date is on or after ``since``'s date (UTC)."""
    root = snapshots_root(data_dir)
    if not root.is_dir():
        return []
    first_day = since.astimezone(UTC).date().isoformat() if since else None
    files = []
    for day in sorted(root.glob("dt=*")):
        if first_day and day.name.removeprefix("dt=") < first_day:
            continue
        files.extend(sorted(day.glob(f"run_id=*/{SNAPSHOT_FILE}")))
    return files


def readable_snapshot_files(data_dir: Path, *, since: datetime | None = None) -> list[Path]:
    """:func:`snapshot_files` less the damaged ones (their footer does not read), each
    named in one warning per process (:func:`pipeline.warehouse.readable_parquet`)."""
    return warehouse.readable_parquet(snapshot_files(data_dir, since=since), "snapshot")


def last_good_observations(
    data_dir: Path,
    asins: Sequence[str],
    *,
    now: datetime,
    max_age_seconds: float,
    exclude_run: str | None = None,
) -> pl.DataFrame:
    """The latest observation per ASIN whose status is a fact (ok, no_offer, filtered_out)
    and that is younger than ``max_age_seconds`` at ``now``, from every other run's
    snapshot. A fallback row is never a source: a fallback of a fallback would hide its
    true age. Columns: the snapshot's, plus ``age_seconds``."""
    since = now - timedelta(seconds=max_age_seconds)
    files = readable_snapshot_files(data_dir, since=since) if asins else []
    if not files:
        return empty_snapshot().with_columns(pl.lit(None, dtype=pl.Float64).alias("age_seconds"))
    params = {
        "exclude_run": exclude_run or "",
        "now": now.astimezone(UTC),
        "since": since.astimezone(UTC),
        "good_statuses": list(GOOD_STATUSES),
    }
    found = warehouse.read_skipping_damaged(
        files, "snapshot", lambda kept: _last_good(asins, kept, params), (duckdb.Error,)
    )
    if found is None:
        return last_good_observations(data_dir, [], now=now, max_age_seconds=max_age_seconds)
    return found


def _last_good(asins: Sequence[str], files: list[Path], params: dict[str, Any]) -> pl.DataFrame:
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.register("wanted_asins", pl.DataFrame({"asin": list(asins)}).to_arrow())
        return query_frame(
            con,
            "fetch_last_good",
            {**params, "files": [warehouse.duckdb_file(f) for f in files]},
        )
    finally:
        con.close()


# --- a running fetch's checkpoint -----------------------------------------------------------


def checkpoint_parts(data_dir: Path, run_id: str) -> list[Path]:
    """The run's checkpoint parts, oldest first (their numbers are zero-padded)."""
    return sorted(fetch_checkpoint_dir(data_dir, run_id).glob(CHECKPOINT_PARTS))


def next_checkpoint_part(data_dir: Path, run_id: str) -> int:
    """The number the next part of the run's checkpoint takes (after any earlier attempt's)."""
    parts = checkpoint_parts(data_dir, run_id)
    return int(parts[-1].stem.removeprefix("part-")) + 1 if parts else 0


def write_checkpoint(
    data_dir: Path, run_id: str, number: int, rows: list[dict[str, Any]], counters: dict[str, Any]
) -> None:
    """One batch's snapshot rows as part ``number`` of the run's checkpoint, then the calls
    made so far. Each file is renamed into place whole, so a ``kill -9`` leaves whole parts
    only; not fsynced, so a slow disk never holds the paced loop up (a killed process's
    writes survive in the page cache; after a power cut a lost or empty part is skipped and
    its ASINs are fetched again)."""
    folder = fetch_checkpoint_dir(data_dir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"part-{number:06d}.parquet"
    temporary = folder / f".{part.name}.tmp"
    snapshot_frame(rows).select(FILE_COLUMNS).write_parquet(temporary)
    os.replace(temporary, part)
    temporary = folder / f".{CHECKPOINT_COUNTERS}.tmp"
    temporary.write_text(json.dumps(counters), encoding="utf-8")
    os.replace(temporary, folder / CHECKPOINT_COUNTERS)


def read_checkpoint(data_dir: Path, run_id: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    """What the run's checkpoint holds: the latest row per ASIN over its readable parts (a
    later part, e.g. of the retry pass, replaces an earlier one) and the calls they cost."""
    parts = warehouse.readable_parquet(checkpoint_parts(data_dir, run_id), "checkpoint")
    counters_path = fetch_checkpoint_dir(data_dir, run_id) / CHECKPOINT_COUNTERS
    if not counters_path.is_file():  # a checkpoint an older invsync left
        counters_path = counters_path.with_name(LEGACY_CHECKPOINT_COUNTERS)
    counters: dict[str, Any] = {}
    if counters_path.is_file():
        try:
            counters = dict(json.loads(counters_path.read_text(encoding="utf-8")))
        except ValueError:
            warehouse.warn_damaged(counters_path, "checkpoint")
    if not parts:
        return empty_snapshot(), counters
    try:  # one read of every part; the part's file name orders it (zero-padded numbers)
        frame = pl.scan_parquet(parts, glob=False, include_file_paths="_part").collect()
    except (pl.exceptions.PolarsError, OSError):  # a damaged page: read part by part
        frame = _parts_one_by_one(parts)
    if frame.is_empty():
        return empty_snapshot(), counters
    latest = frame.sort("_part").unique("asin", keep="last", maintain_order=True)
    in_path = latest.drop("_part").with_columns(pl.lit(run_id, dtype=pl.String).alias("run_id"))
    return conform(in_path), counters


def _parts_one_by_one(parts: list[Path]) -> pl.DataFrame:
    frames = [empty_snapshot().with_columns(pl.lit("").alias("_part"))]
    for part in parts:
        try:
            frame = pl.read_parquet(part, glob=False)
        except (pl.exceptions.PolarsError, OSError):
            warehouse.warn_damaged(part, "checkpoint")  # its ASINs are fetched again
            continue
        frames.append(
            conform(frame.drop("run_id", strict=False)).with_columns(
                pl.lit(str(part)).alias("_part")
            )
        )
    return pl.concat(frames)


def remove_checkpoint(data_dir: Path, run_id: str) -> None:
    """Drop the run's checkpoint (its snapshot now holds everything it held)."""
    shutil.rmtree(fetch_checkpoint_dir(data_dir, run_id), ignore_errors=True)
