"""Extract: the listed ASINs of two BASE shops and an eBay account, once each."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline import extract, runs, warehouse
from pipeline.config import open_workspace
from pipeline.schemas import Asins

SHARED = ["B0AAAAAAA1", "B0AAAAAAA2", "B0AAAAAAA3"]


def seed(con: duckdb.DuckDBPyConnection) -> None:
    base = [
        ("shop1", 1, "B0AAAAAAA1", "listed"),
        ("shop1", 2, "B0AAAAAAA2", "listed"),
        ("shop1", 3, "B0ONLYSHOP", "listed"),
        ("shop2", 1, "B0AAAAAAA1", "listed"),
        ("shop2", 2, "B0AAAAAAA3", "listed"),
        ("shop2", 3, "B0UNLISTED", "unlisted"),  # not listed: not extracted
        ("shop2", 4, "b0-bad", "listed"),  # malformed: reported, never sent
    ]
    con.executemany(
        "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
        " status, source, updated_at) values (?, ?, ?, 1000, 1, true, ?, 'import', now())",
        base,
    )
    ebay = [
        ("ebay-main", "s1", "B0AAAAAAA1", "listed"),
        ("ebay-main", "s2", "B0AAAAAAA3", "listed"),
        ("ebay-main", "s3", "B0AAAAAAA3", "listed"),  # two SKUs, one ASIN
        ("ebay-main", "s4", "B0GONE0000", "gone"),
    ]
    con.executemany(
        "insert into listings_ebay (account_id, sku, asin, price_cents, currency, quantity,"
        " api, status, source, updated_at)"
        " values (?, ?, ?, 999, 'USD', 1, 'inventory', ?, 'import', now())",
        ebay,
    )


@pytest.fixture
def con(data_dir: Path):
    connection = warehouse.connect(data_dir)
    seed(connection)
    yield connection
    connection.close()


def test_one_row_per_listed_asin_with_counts_platforms_and_accounts(con, data_dir: Path) -> None:
    result = extract.run(open_workspace(data_dir=data_dir), con)
    frame = Asins.validate(result.asins)
    rows = {r["asin"]: r for r in frame.iter_rows(named=True)}
    assert sorted(rows) == sorted([*SHARED, "B0ONLYSHOP", "b0-bad"])
    assert rows["B0AAAAAAA1"]["listings"] == 3
    assert rows["B0AAAAAAA1"]["platforms"] == ["base", "ebay"]
    assert rows["B0AAAAAAA1"]["accounts"] == ["ebay-main", "shop1", "shop2"]
    assert (rows["B0AAAAAAA3"]["base_listings"], rows["B0AAAAAAA3"]["ebay_listings"]) == (1, 2)
    assert result.listings == 9
    assert result.valid.height == 4
    assert result.malformed["asin"].to_list() == ["b0-bad"]
    assert result.by_platform() == {"base": 5, "ebay": 2}


def test_max_items_is_deterministic(con, data_dir: Path) -> None:
    ws = open_workspace(data_dir=data_dir)
    first = extract.run(ws, con, 2)
    again = extract.run(ws, con, max_items=2)
    assert first.asins["asin"].to_list() == again.asins["asin"].to_list() == SHARED[:2]


def test_counts_are_recorded_on_the_run(con, data_dir: Path) -> None:
    ws = open_workspace(data_dir=data_dir)
    run_id = runs.start_run(con, ws, "fetch")
    extract.run(ws, con, run_id=run_id)
    row = con.execute(
        "select listings, unique_asins, invalid_asins, extract_seconds from runs where run_id = $r",
        {"r": run_id},
    ).fetchall()[0]
    assert row[:3] == (9, 5, 1)
    assert row[3] >= 0


def test_no_listings_gives_an_empty_valid_frame(data_dir: Path) -> None:
    con = warehouse.connect(data_dir)
    try:
        result = extract.run(open_workspace(data_dir=data_dir), con)
    finally:
        con.close()
    assert result.asins.height == 0
    assert Asins.validate(result.asins).columns == list(Asins.to_schema().columns)


def test_cli_reports_malformed_asins(cli, con, data_dir: Path) -> None:
    con.close()
    done = cli("--data-dir", str(data_dir), "extract")
    assert done.exit_code == 0, done.output
    assert (
        "Extracted 5 unique ASINs from 9 listed listings (base 5, ebay 2); 4 valid." in done.stdout
    )
    assert "1 malformed ASINs are reported and never sent (e.g. b0-bad)" in done.stdout


def test_mask_decoding_agrees_with_list_aggregation_up_to_64_pairs(con) -> None:
    # 61 more BASE shops make 64 (platform, account) pairs: the last one sets bit 63 of the
    # ubigint mask. Past 64 pairs extract aggregates the lists in SQL; both must agree.
    extra = [(f"bulk{i:02d}", 1, SHARED[i % 3], "listed") for i in range(61)]
    con.executemany(
        "insert into listings_base (account_id, item_id, asin, price_jpy, stock, visible,"
        " status, source, updated_at) values (?, ?, ?, 1000, 1, true, ?, 'import', now())",
        extra,
    )
    masked = extract.listed_asins(con)
    aggregated = extract.listed_asins(con, mask_bits=63)
    assert masked.equals(aggregated)
    rows = {r["asin"]: r for r in masked.iter_rows(named=True)}
    assert rows["B0AAAAAAA1"]["accounts"][:3] == ["bulk00", "bulk03", "bulk06"]
    assert rows["B0AAAAAAA1"]["accounts"][-3:] == ["ebay-main", "shop1", "shop2"]
    assert rows["b0-bad"]["accounts"] == ["shop2"]
