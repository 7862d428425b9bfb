"""Where every file lives under the data directory: the one map of ``data/``.

Stage: none (every stage asks here for its paths). Nothing here reads or writes a file.

```
<data_dir>/
  warehouse.duckdb                       the master database (one writer at a time)
  analytics.duckdb                       the analysts' views (pipeline.views)
  .file-layout                           which layout the files are in (warehouse.upgrade_files)
  snapshots/amazon/dt=YYYY-MM-DD/run_id=<run>/part-0.parquet    one per run (fetch)
  staging/fetch/run_id=<run>/part-NNNNNN.parquet, _counters.json  a fetch's checkpoint
                                         (one part per batch), removed once the snapshot is written
  diffs/run_id=<run>/platform=<base|ebay>/diff.parquet          one per run and platform
  listings/run_id=<run>/platform=<base|ebay>/listings.parquet   the listings as they stood
                                         at the run and what it decided for each (transform)
  reviews/<run>/review.html, *.csv       the review report (review)
  loads/run_id=<run>/dry_run.parquet     what a dry-run load would send
  exports/<table>/<table>.parquet        warehouse tables for analysts, one folder each
  logs/invsync.jsonl                     JSON-lines log
  secrets/                               the refresh-token store (0700 / 0600)
  sandbox/world.json, sandbox/ledger/<run>.json   the in-process sandbox's world and ledgers
  sync.lock                              the run lock
```
Hive-style folders (``key=value``) carry partition keys for DuckDB, polars, pyarrow and pandas.
A key of the path is never also a column of the file (pandas and pyarrow refuse a dataset
whose files hold a column of the same name as a folder key), and every folder holds one
table, so each folder reads as one dataset in each of the four.

With ``[history] url`` set, the snapshots, diffs, listings, loads and exports are also kept on
that S3-compatible store under the same relative keys below the URL, uploaded at each publish
(:mod:`pipeline.history_store`); the rest of this tree stays local to the worker.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import DataError

SNAPSHOT_FILE = "part-0.parquet"
DIFF_FILE = "diff.parquet"
LISTING_HISTORY_FILE = "listings.parquet"
_RUN_ID = re.compile(r"^(\d{4})(\d{2})(\d{2})T\d{6}Z-[0-9a-f]+$")

# (folder under the data directory, glob below it) for readers of every file of a kind
SNAPSHOT_FILES = ("snapshots/amazon", f"dt=*/run_id=*/{SNAPSHOT_FILE}")
DIFF_FILES = ("diffs", f"run_id=*/platform=*/{DIFF_FILE}")
LISTING_FILES = ("listings", f"run_id=*/platform=*/{LISTING_HISTORY_FILE}")
SNAPSHOT_PATH_KEYS = ("dt", "run_id")  # a snapshot file's keys, in its path only
# The data directory's file layout: 2 has no run_id column in snapshot, checkpoint or plan files and
# one folder per export; a data directory without the mark (layout 1) is upgraded once.
FILE_LAYOUT = 2
FILE_LAYOUT_MARK = ".file-layout"
CHECKPOINT_PARTS = "part-*.parquet"  # a fetch checkpoint's batches, in order of their number
# the calls the checkpointed batches cost; "_" so that pandas and pyarrow, which read every
# file of a dataset folder as Parquet but skip names starting with "_" or ".", pass it over
CHECKPOINT_COUNTERS = "_counters.json"
LEGACY_CHECKPOINT_COUNTERS = "counters.json"  # its name before: read by a resumed fetch


def run_date(run_id: str) -> str:
    """``YYYY-MM-DD`` of a run id ``YYYYMMDDTHHMMSSZ-xxxxxx``."""
    match = _RUN_ID.match(run_id)
    if not match:
        raise DataError(f"Run id {run_id!r} is not of the form YYYYMMDDTHHMMSSZ-xxxxxx.")
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"


def snapshots_root(data_dir: Path) -> Path:
    return data_dir / SNAPSHOT_FILES[0]


def snapshot_path(data_dir: Path, run_id: str) -> Path:
    return snapshots_root(data_dir) / f"dt={run_date(run_id)}" / f"run_id={run_id}" / SNAPSHOT_FILE


def fetch_checkpoint_dir(data_dir: Path, run_id: str) -> Path:
    """Where a running fetch keeps what it has fetched so far (outside ``snapshots/``, so no
    reader of snapshots ever sees it)."""
    return data_dir / "staging" / "fetch" / f"run_id={run_id}"


def diff_path(data_dir: Path, run_id: str, platform: str) -> Path:
    return data_dir / DIFF_FILES[0] / f"run_id={run_id}" / f"platform={platform}" / DIFF_FILE


def listing_history_path(data_dir: Path, run_id: str, platform: str) -> Path:
    """The listings of one platform as they stood at the run, with its decision for each."""
    folder = data_dir / LISTING_FILES[0] / f"run_id={run_id}" / f"platform={platform}"
    return folder / LISTING_HISTORY_FILE


def review_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "reviews" / run_id


def dry_run_plan_path(data_dir: Path, run_id: str) -> Path:
    return data_dir / "loads" / f"run_id={run_id}" / "dry_run.parquet"


DRY_RUN_PLANS = "loads/run_id=*/dry_run.parquet"  # every dry-run plan, below the data directory


def exports_dir(data_dir: Path) -> Path:
    return data_dir / "exports"


def export_path(data_dir: Path, table: str) -> Path:
    """A warehouse table's export: a folder of its own, so each reads as one dataset."""
    return exports_dir(data_dir) / table / f"{table}.parquet"


def legacy_export_path(data_dir: Path, table: str) -> Path:
    """Where layout 1 kept a table's export (every table in one folder)."""
    return exports_dir(data_dir) / f"{table}.parquet"


def file_layout_path(data_dir: Path) -> Path:
    return data_dir / FILE_LAYOUT_MARK


def sandbox_world_path(data_dir: Path) -> Path:
    """The in-process sandbox's persisted world (prices, stock, tokens, counters)."""
    return data_dir / "sandbox" / "world.json"


def sandbox_ledger_path(data_dir: Path, run_id: str) -> Path:
    """The in-process sandbox's ledger of one sync: every call and change it answered."""
    return data_dir / "sandbox" / "ledger" / f"{run_id}.json"
