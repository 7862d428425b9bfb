"""Warehouse: migrations apply once, in order, recorded; Parquet writes are atomic and
validated both ways."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline import schemas, warehouse
from pipeline.errors import DataError


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path)
    versions = [r[0] for r in con.execute("select version from schema_migrations").fetchall()]
    assert versions == sorted(v for v, _, _ in warehouse.migrations())
    tables = {
        r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
    }
    assert {"listings_base", "listings_ebay", "runs", "push_journal"} <= tables
    assert warehouse.apply_migrations(con) == []  # nothing left to apply
    con.close()
    again = warehouse.connect(tmp_path)
    assert again.execute("select count(*) from schema_migrations").fetchall()[0][0] == len(versions)
    again.close()


def test_a_read_only_open_of_a_missing_warehouse_names_the_next_step(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="invsync sync"):
        warehouse.connect(tmp_path / "nothing", read_only=True)


def test_transaction_rolls_back_everything_on_error(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path)
    with pytest.raises(duckdb.Error), warehouse.transaction(con):
        con.execute(
            "insert into runs (run_id, command, mode, started_at, outcome)"
            " values ('r1', 'sync', 'sandbox', now(), 'running')"
        )
        con.execute("insert into runs (run_id) values ('r2')")  # violates not null
    assert con.execute("select count(*) from runs").fetchall()[0][0] == 0


def listing_frame(price: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": ["shop1"], "item_id": [1], "asin": ["B0C1234567"], "price_jpy": [price],
            "stock": [1], "visible": [True], "status": ["listed"],
        }
    )  # fmt: skip


def test_parquet_is_validated_on_write_and_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "part-0.parquet"
    warehouse.write_parquet_atomic(listing_frame(1000), path, schemas.ListingsBase)
    assert warehouse.read_parquet_validated(path, schemas.ListingsBase)["price_jpy"].to_list() == [
        1000
    ]
    with pytest.raises(Exception, match="greater_than"):
        warehouse.write_parquet_atomic(listing_frame(-5), path, schemas.ListingsBase)
    # the good file is untouched and no temp file is left behind
    assert pl.read_parquet(path)["price_jpy"].to_list() == [1000]
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]


def test_a_file_that_fails_validation_on_read_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    listing_frame(-5).write_parquet(path)
    with pytest.raises(DataError, match="failed validation"):
        warehouse.read_parquet_validated(path, schemas.ListingsBase)
