"""Every file under data/ opens in the tools analysts have, after real demo syncs: the README's
DuckDB CLI command, run as written with the oldest duckdb-cli on PyPI, and the Python duckdb
1.2 wheel query every view of analytics.duckdb; pandas, polars, pyarrow and
DuckDB each read every Parquet folder as one dataset; and a data directory an older invsync
wrote is brought into that layout once.

The readers are pip-installed once per clone into ``.venv/readers/`` (a folder per version,
complete or absent), so a second run takes seconds."""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline import layout, views, warehouse
from tests.conftest import run_cli
from tests.integration.test_sync import SMALL_DEMO
from tests.sql.test_views import three_runs

ROOT = Path(__file__).resolve().parents[2]
OLDEST_CLI = "1.4.4"  # the oldest duckdb-cli release on PyPI (the CLI as a pip package)
# The oldest Python duckdb that reads analytics.duckdb (docs/analysts.md): 1.0 and 1.1 read
# storage version 64 but not the views' definitions that 2.0 serialises into it
OLDEST_PYTHON_READER = "1.2.0"
# Folders every demo data directory has after a sync and a dry-run load (more are found)
EXPECTED_FOLDERS = {
    "snapshots/amazon",
    "diffs",
    "loads",
    "listings",
    *(f"exports/{table}" for table in views.EXPORTED_TABLES),
}


def readme_analyst_command() -> str:
    """The DuckDB command of the README's "For analysts" block, without its comment."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## For analysts\n\n```sh\n(.*?)```", text, flags=re.S)
    assert block, "README.md has a For analysts block"
    (line,) = [ln for ln in block.group(1).splitlines() if ln.startswith("duckdb ")]
    return line.split("#")[0].strip()


# --- the readers, installed once per clone -------------------------------------------------


@dataclass(frozen=True)
class Readers:
    cli: Path  # the duckdb binary of the oldest duckdb-cli
    python_path: Path  # a folder holding the oldest duckdb wheel that reads it (PYTHONPATH)
    python_version: str


def _installed(cache: Path, *requirements: str) -> Path:
    """A folder into which pip installed ``requirements`` (no dependencies beyond them):
    made once, under a lock (pytest-xdist's workers share it), and renamed into place whole."""
    folder = cache / "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", r) for r in requirements)
    if folder.is_dir():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if folder.is_dir():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--target", str(partial), *requirements],
            check=True, timeout=600,
        )  # fmt: skip
        os.replace(partial, folder)
    return folder


@pytest.fixture(scope="session")
def readers() -> Readers:
    cache = Path(sys.prefix) / "readers"  # inside .venv: `make clean` removes it too
    cli = _installed(cache, f"duckdb-cli=={OLDEST_CLI}") / "bin" / "duckdb"
    cli.chmod(0o755)  # the wheel installs the binary without its exec bit
    # duckdb before 2.0 needs pytz to hand out a timestamptz (docs/architecture.md)
    python_path = _installed(cache, f"duckdb=={OLDEST_PYTHON_READER}", "pytz")
    return Readers(cli, python_path, OLDEST_PYTHON_READER)


# --- the demo data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home folder after two real demo syncs and a dry-run load; its data is ``data/``."""
    home = tmp_path_factory.mktemp("readers")
    (home / "invsync.toml").write_text(SMALL_DEMO + "time_scale = 400\n")
    for args in (("sync",), ("sync",), ("load", "--dry-run")):
        result = run_cli(*args, cwd=home, timeout=300)
        assert result.exit_code in (0, 3), result.output  # 3: the demo holds a few rows
    yield home


def view_names(data: Path) -> list[str]:
    con = views.open_for_reading(data)
    try:
        rows = con.execute(
            "select view_name from duckdb_views() where not internal order by view_name"
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


@pytest.mark.slow
def test_the_readme_command_opens_every_view_in_the_oldest_duckdb_cli(
    demo: Path, readers: Readers
) -> None:
    argv = shlex.split(readme_analyst_command())
    assert argv[0] == "duckdb"
    names = view_names(demo / "data")
    assert set(views.ANALYST_VIEWS) <= set(names)
    script = ".mode csv\n.headers off\n" + "".join(
        f"select '{name}', count(*) from {name};\n" for name in names
    )
    shell = subprocess.run(
        [str(readers.cli), *argv[1:]],
        input=script, capture_output=True, text=True, cwd=demo, timeout=120, check=False,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    assert "Error" not in shell.stdout + shell.stderr, shell.stdout + shell.stderr
    counts = dict(line.split(",") for line in shell.stdout.split())
    assert sorted(counts) == names
    assert int(counts["price_history"]) > 0 and int(counts["diffs"]) > 0


@pytest.mark.slow
def test_the_oldest_python_duckdb_that_reads_it_reads_every_view(
    demo: Path, readers: Readers
) -> None:
    names = view_names(demo / "data")
    script = (
        "import duckdb, sys\n"
        "print(duckdb.__version__)\n"
        "con = duckdb.connect('data/analytics.duckdb', read_only=True)\n"
        "for name in sys.argv[1:]:\n"
        "    print(name, len(con.execute(f'select * from {name}').fetchall()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(readers.python_path)}
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True, text=True, cwd=demo, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    version, *lines = result.stdout.split("\n")
    assert version == readers.python_version
    assert [line.split()[0] for line in lines if line] == names


def test_the_analysts_database_is_written_in_the_storage_version_older_readers_open(
    tmp_path: Path,
) -> None:
    three_runs(tmp_path).close()
    number = views.storage_number(tmp_path / views.ANALYTICS_NAME)
    assert number == views.ANALYTICS_STORAGE_NUMBER == 64  # DuckDB 1.0 and later read 64


def test_an_analysts_database_in_a_newer_storage_version_is_written_anew(tmp_path: Path) -> None:
    newer = duckdb.connect(str(tmp_path / views.ANALYTICS_NAME))  # the engine's own default
    newer.execute("create view stale as select 1 as x")
    newer.close()
    assert views.storage_number(tmp_path / views.ANALYTICS_NAME) != 64
    three_runs(tmp_path).close()
    assert views.storage_number(tmp_path / views.ANALYTICS_NAME) == 64
    assert "stale" not in view_names(tmp_path)
    assert "price_history" in view_names(tmp_path)


# --- every Parquet folder in the four readers ----------------------------------------------


def dataset_roots(data: Path) -> dict[str, list[Path]]:
    """Each folder under ``data`` that holds Parquet, as a reader opens it: the folder above
    a file's first ``key=value`` folder (a Hive-partitioned dataset), or else its own folder.
    A new kind of file under data/ is found here without a change to this test."""
    roots: dict[str, list[Path]] = {}
    for path in sorted(data.rglob("*.parquet")):
        parts = path.relative_to(data).parts[:-1]
        keyed = [i for i, part in enumerate(parts) if "=" in part]
        root = "/".join(parts[: keyed[0]] if keyed else parts)
        roots.setdefault(root, []).append(path)
    return roots


def _pandas(folder: Path) -> tuple[int, set[str]]:
    frame = pd.read_parquet(folder)
    return len(frame), set(frame.columns)


def _polars(folder: Path) -> tuple[int, set[str]]:
    frame = pl.scan_parquet(folder / "**" / "*.parquet", hive_partitioning=True).collect()
    return frame.height, set(frame.columns)


def _pyarrow(folder: Path) -> tuple[int, set[str]]:
    table = ds.dataset(folder, partitioning="hive").to_table()
    return table.num_rows, set(table.column_names)


def _duckdb(folder: Path) -> tuple[int, set[str]]:
    pattern = warehouse.duckdb_file(folder) + "/**/*.parquet"
    relation = duckdb.sql(
        "select * from read_parquet($p, hive_partitioning = true)", params={"p": pattern}
    )
    return len(relation.fetchall()), set(relation.columns)


READERS = {"pandas": _pandas, "polars": _polars, "pyarrow": _pyarrow, "duckdb": _duckdb}


@pytest.mark.slow
@pytest.mark.parametrize("reader", list(READERS))
def test_every_parquet_folder_reads_as_one_dataset(demo: Path, reader: str) -> None:
    data = demo / "data"
    roots = dataset_roots(data)
    assert set(roots) >= EXPECTED_FOLDERS, sorted(roots)
    for root, files in roots.items():
        rows = sum(pq.read_metadata(f).num_rows for f in files)
        keys = {
            p.split("=")[0] for f in files for p in f.relative_to(data / root).parts if "=" in p
        }
        try:
            found, columns = READERS[reader](data / root)
        except Exception as exc:  # the folder and the reader's own words, for the failure
            pytest.fail(f"{reader} cannot read data/{root}: {exc}")
        assert found == rows, (root, reader)
        assert keys <= columns, (root, reader)  # the folder keys come back as columns


# --- a data directory an older invsync wrote ----------------------------------------------


def _as_layout_one(data: Path) -> None:
    """Puts ``data`` back as invsync wrote it before: the run id also a column of each
    snapshot and dry-run plan, every export in exports/ itself, no layout mark."""
    for path in sorted(
        data.glob(f"{layout.SNAPSHOT_FILES[0]}/{layout.SNAPSHOT_FILES[1]}")
    ) + sorted(data.glob(layout.DRY_RUN_PLANS)):
        run_id = next(p.split("=", 1)[1] for p in path.parts if p.startswith("run_id="))
        frame = pl.read_parquet(path, glob=False)
        frame.insert_column(0, pl.lit(run_id).alias("run_id")).write_parquet(path)
    for new in sorted(layout.exports_dir(data).glob("*/*.parquet")):
        os.replace(new, layout.legacy_export_path(data, new.stem))
        new.parent.rmdir()
    layout.file_layout_path(data).unlink()


@pytest.mark.slow
def test_an_older_data_directory_is_upgraded_once_and_rebuilds_from_its_exports(
    demo: Path, tmp_path: Path
) -> None:
    home = tmp_path / "old"
    shutil.copytree(demo, home)
    data = home / "data"
    _as_layout_one(data)
    with pytest.raises(Exception, match="run_id"):
        pd.read_parquet(data / "snapshots" / "amazon")  # what an analyst met before
    runs = pl.read_parquet(layout.legacy_export_path(data, "runs")).height

    rebuilt = run_cli("warehouse", "rebuild", "--force", cwd=home)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"restored runs {runs:,} rows" in rebuilt.stdout  # read from the old layout's file
    assert not list(layout.exports_dir(data).glob("*.parquet"))
    for path in data.rglob("*.parquet"):
        if "run_id=" in str(path):
            assert "run_id" not in pq.read_schema(path).names, path
    for reader in READERS.values():
        assert reader(data / "snapshots" / "amazon")[0] > 0
    upgraded = {p: p.stat().st_mtime_ns for p in data.rglob("*.parquet") if "snapshots" in p.parts}
    synced = run_cli("sync", cwd=home, timeout=300)
    assert synced.exit_code in (0, 3), synced.output
    assert all(p.stat().st_mtime_ns == m for p, m in upgraded.items())  # once: not rewritten
    assert "Skipped the damaged" not in synced.output
