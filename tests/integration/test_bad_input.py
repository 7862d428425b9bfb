"""Every bad input is one sentence with exit 2 (issue 14): listing files that are empty,
ragged, repeat a column, hold an empty required cell, a number beyond what the pricing SQL
holds, a Parquet list column or Japanese Excel's CP932 bytes; and a configuration or command
line that is wrong (a non-UTF-8 invsync.toml, a data directory that cannot be written,
negative counts and ports out of range). Nothing is half-written: the warehouse is unchanged
or never made, and no run is opened."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.sql.frames import observation, seed_run

BASE_HEADER = "account_id,item_id,asin,price_jpy,stock,visible,status"
EBAY_HEADER = "account_id,sku,offer_id,listing_id,asin,price,currency,quantity,api,status"
GOOD_BASE = "shop1,101,B0C1234567,1280,3,1,listed"
GOOD_EBAY = "ebay-main,s-1,9001,110001,B0C1234567,49.99,USD,2,inventory,listed"


def write_bytes(name: str, data: bytes) -> Path:
    path = Path.cwd() / name
    path.write_bytes(data)
    return path


def write_csv(name: str, header: str, rows: list[str]) -> Path:
    return write_bytes(name, ("\n".join([header, *rows]) + "\n").encode("utf-8"))


def table_rows(data_dir: Path, table: str) -> list[tuple]:
    if not (data_dir / "warehouse.duckdb").exists():
        return []
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from {table} order by all").fetchall()
    finally:
        con.close()


def assert_one_sentence(result, *fragments: str) -> None:
    """Exit 2, one ``Error:`` line holding every fragment, never the bug sentence."""
    assert result.exit_code == 2, result.output
    assert "hit a bug" not in result.output and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def seeded(cli, clean_environment: Path) -> Path:
    """A warehouse holding one BASE and one eBay listing, to show nothing changes."""
    assert cli("listings", "import", str(write_csv("b.csv", BASE_HEADER, [GOOD_BASE])),
               "--platform", "base").exit_code == 0  # fmt: skip
    assert cli("listings", "import", str(write_csv("e.csv", EBAY_HEADER, [GOOD_EBAY])),
               "--platform", "ebay").exit_code == 0  # fmt: skip
    return clean_environment / "data"


# --- cells ------------------------------------------------------------------------------

EMPTY_CELLS = [
    ("base", BASE_HEADER, "shop1,102,,1280,3,1,listed", "row 1: asin is missing"),
    ("base", BASE_HEADER, "shop1,102,B0C1234568,1280,3,1,", "row 1: status is missing"),
    ("base", BASE_HEADER, ",102,B0C1234568,1280,3,1,listed", "row 1: account_id is missing"),
    ("ebay", EBAY_HEADER, "ebay-main,,1,2,B0C1234568,1.00,USD,1,inventory,listed", "row 1: sku is missing"),
    ("ebay", EBAY_HEADER, "ebay-main,s-2,1,2,B0C1234568,1.00,,1,inventory,listed", "row 1: currency is missing"),
    ("ebay", EBAY_HEADER, "ebay-main,s-2,1,2,B0C1234568,1.00,USD,1,,listed", "row 1: api is missing"),
    ("ebay", EBAY_HEADER, ",s-2,1,2,B0C1234568,1.00,USD,1,inventory,listed", "row 1: account_id is missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "header", "row", "reason"), EMPTY_CELLS, ids=[r for *_, r in EMPTY_CELLS]
)
def test_an_empty_required_cell_names_its_row_and_column(
    cli, seeded, platform, header, row, reason
) -> None:
    before = table_rows(seeded, f"listings_{platform}")
    result = cli("listings", "import", str(write_csv("bad.csv", header, [row])),
                 "--platform", platform)  # fmt: skip
    assert_one_sentence(result, reason, "nothing was written")
    assert table_rows(seeded, f"listings_{platform}") == before


HUGE = "99999999999999999999"  # beyond Int64
TOO_LARGE = [
    ("base", BASE_HEADER, f"shop1,102,B0C1234568,{HUGE},3,1,listed", "price_jpy is above ¥100,000,000"),
    ("base", BASE_HEADER, f"shop1,{HUGE},B0C1234568,1280,3,1,listed", "item_id is above 9,223,372,036,854,775,807"),
    ("base", BASE_HEADER, f"shop1,102,B0C1234568,1280,{HUGE},1,listed", "stock is above 1,000,000 units"),
    ("base", BASE_HEADER, f"shop1,102,B0C1234568,1280,{2**31},1,listed", "stock is above 1,000,000 units"),
    ("base", BASE_HEADER, "shop1,102,B0C1234568,9000000000000000000,3,1,listed", "price_jpy is above ¥100,000,000"),
    ("ebay", EBAY_HEADER, f"ebay-main,s-2,1,2,B0C1234568,{HUGE}.99,USD,1,inventory,listed", "price is above $1,000,000.00"),
    ("ebay", EBAY_HEADER, f"ebay-main,s-2,1,2,B0C1234568,1.00,USD,{2**31},inventory,listed", "quantity is above 1,000,000 units"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "header", "row", "reason"),
    TOO_LARGE,
    ids=["price_jpy int64", "item_id int64", "stock int64", "stock 2^31", "price_jpy 9e18",
         "price int64", "quantity 2^31"],
)  # fmt: skip
def test_a_number_too_large_is_refused_with_the_bound(
    cli, seeded, platform, header, row, reason
) -> None:
    before = table_rows(seeded, f"listings_{platform}")
    result = cli("listings", "import", str(write_csv("bad.csv", header, [row])),
                 "--platform", platform)  # fmt: skip
    assert_one_sentence(result, f"row 1: {reason}", "the most invsync accepts")
    assert table_rows(seeded, f"listings_{platform}") == before


def test_a_price_at_the_bound_transforms_and_one_above_is_refused(cli, data_dir: Path) -> None:
    """The bounds are what the pricing SQL holds: a listing priced at MAX_PRICE_JPY (or
    MAX_PRICE_CENTS) with stock MAX_QUANTITY goes through transform; one unit more is
    refused at import, naming the bound."""
    from pipeline.schemas import MAX_PRICE_CENTS, MAX_PRICE_JPY, MAX_QUANTITY

    at_bound = write_csv("shop.csv", BASE_HEADER,
                         [f"shop1,1,B000000001,{MAX_PRICE_JPY},{MAX_QUANTITY},1,listed"])  # fmt: skip
    assert cli("listings", "import", str(at_bound), "--platform", "base").exit_code == 0
    dollars = f"{MAX_PRICE_CENTS // 100}.{MAX_PRICE_CENTS % 100:02d}"
    ebay = write_csv("ebay.csv", EBAY_HEADER,
                     [f"ebay-main,s-1,1,2,B000000001,{dollars},USD,{MAX_QUANTITY},inventory,listed"])  # fmt: skip
    assert cli("listings", "import", str(ebay), "--platform", "ebay").exit_code == 0
    seed_run(data_dir, "20250601T000000Z-7a7a7a",
             snapshot=[observation("B000000001", price_jpy=1000)], unique_asins=1)  # fmt: skip
    result = cli("transform")
    assert result.exit_code == 0, result.output
    assert "base: 1 listings → 1 to change" in result.stdout

    for price, stock, bound in [
        (MAX_PRICE_JPY + 1, 1, "¥100,000,000 (MAX_PRICE_JPY)"),
        (1000, MAX_QUANTITY + 1, "1,000,000 units (MAX_QUANTITY)"),
    ]:
        over = write_csv("over.csv", BASE_HEADER, [f"shop1,2,B000000002,{price},{stock},1,listed"])
        result = cli("listings", "import", str(over), "--platform", "base")
        assert_one_sentence(result, f"is above {bound}")
    cents = MAX_PRICE_CENTS + 1
    over = write_csv("over.csv", EBAY_HEADER,
                     [f"ebay-main,s-2,1,2,B000000002,{cents // 100}.{cents % 100:02d},USD,1,inventory,listed"])  # fmt: skip
    result = cli("listings", "import", str(over), "--platform", "ebay")
    assert_one_sentence(result, "price is above $1,000,000.00 (MAX_PRICE_CENTS)")


# --- whole files ------------------------------------------------------------------------

EMPTY_FILES = [
    ("zero bytes", b"", "is empty"),
    ("BOM only", b"\xef\xbb\xbf", "is empty"),
    ("BOM and a line end", b"\xef\xbb\xbf\r\n", "is empty"),
    ("header only", (BASE_HEADER + "\r\n").encode(), "holds no listing rows, only a header"),
]


@pytest.mark.parametrize(("kind", "data", "says"), EMPTY_FILES, ids=[k for k, _, _ in EMPTY_FILES])
def test_an_empty_or_header_only_file_is_one_sentence(cli, seeded, kind, data, says) -> None:
    before = table_rows(seeded, "listings_base")
    result = cli("listings", "import", str(write_bytes("empty.csv", data)), "--platform", "base")
    assert_one_sentence(result, "empty.csv", says)
    assert table_rows(seeded, "listings_base") == before


def test_an_empty_parquet_file_is_one_sentence(cli, data_dir: Path) -> None:
    schema = dict.fromkeys(BASE_HEADER.split(","), pl.Utf8)
    pl.DataFrame(schema=schema).write_parquet(Path.cwd() / "empty.parquet")
    result = cli("listings", "import", "empty.parquet", "--platform", "base")
    assert_one_sentence(result, "holds no listing rows")
    assert not (data_dir / "warehouse.duckdb").exists()


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([GOOD_BASE, "shop1,102,B0C1234568,1280,3,1,listed,extra"], "row 2 has 8 cells but the header has 7"),
        (["shop1,102,B0C1234568,1280,3", GOOD_BASE], "row 1 has 5 cells but the header has 7"),
        ([GOOD_BASE, "shop1,102,B0C1234568,1,280,3,1,listed", "shop1,103,B0C1234568,1,1,listed"],
         "row 2 has 8 cells but the header has 7 (and 1 more such rows)"),
    ],
    ids=["more cells", "fewer cells", "two ragged rows"],
)  # fmt: skip
def test_a_ragged_row_is_named(cli, seeded, rows, says) -> None:
    before = table_rows(seeded, "listings_base")
    result = cli("listings", "import", str(write_csv("ragged.csv", BASE_HEADER, rows)),
                 "--platform", "base")  # fmt: skip
    assert_one_sentence(result, says, "nothing was written")
    assert table_rows(seeded, "listings_base") == before


def test_a_repeated_column_is_refused_not_silently_dropped(cli, seeded) -> None:
    before = table_rows(seeded, "listings_base")
    path = write_csv("dup.csv", "account_id,item_id,asin,asin,price_jpy,stock,visible,status",
                     ["shop1,102,B0C1234568,B0C9999999,1280,3,1,listed"])  # fmt: skip
    result = cli("listings", "import", str(path), "--platform", "base")
    assert_one_sentence(result, "names column asin 2 times")
    assert table_rows(seeded, "listings_base") == before


@pytest.mark.parametrize(
    ("column", "values", "kind"),
    [
        ("asin", [["B0C1234567"]], "List"),
        ("price_jpy", [{"yen": 1280}], "Struct"),
    ],
    ids=["list", "struct"],
)
def test_a_parquet_nested_column_is_named(cli, data_dir: Path, column, values, kind) -> None:
    row = {"account_id": ["shop1"], "item_id": [9], "asin": ["B0C1234567"],
           "price_jpy": [1500], "stock": [2], "visible": [True], "status": ["listed"]}  # fmt: skip
    row[column] = values
    pl.DataFrame(row).write_parquet(Path.cwd() / "nested.parquet")
    result = cli("listings", "import", "nested.parquet", "--platform", "base")
    assert_one_sentence(result, f"column {column} holds {kind}")
    assert not (data_dir / "warehouse.duckdb").exists()


def test_an_ignored_parquet_list_column_is_named_as_ignored(cli, data_dir: Path) -> None:
    pl.DataFrame(
        {"account_id": ["shop1"], "item_id": [9], "asin": ["B0C1234567"], "price_jpy": [1500],
         "stock": [2], "visible": [True], "status": ["listed"], "tags": [["a", "b"]]}
    ).write_parquet(Path.cwd() / "tags.parquet")  # fmt: skip
    result = cli("listings", "import", "tags.parquet", "--platform", "base")
    assert result.exit_code == 0, result.output
    assert "Ignored columns: tags." in result.stdout


# --- encodings --------------------------------------------------------------------------

EXCEL_ROWS = [
    ["account_id", "item_id", "asin", "price_jpy", "stock", "visible", "status", "title"],
    ["shop1", "501", "B0C1234567", "3980", "2", "1", "listed", "【新品】ワイヤレスイヤホン"],
    ["shop1", "502", "B0C7654321", "1280", "0", "0", "listed", "ケーブル 1m, 2本セット（白）"],
    [
        "shop2",
        "503",
        "4061234567",
        "12800",
        "1",
        "1",
        "listed",
        "髙島屋ギフト・～№１",
    ],  # as Windows types them,
]


def excel_csv(encoding: str, *, bom: bool = False, rows: list[list[str]] = EXCEL_ROWS) -> bytes:
    """A CSV as Excel writes it: CRLF line ends, cells with commas quoted."""
    lines = []
    for row in rows:
        lines.append(",".join(f'"{c}"' if "," in c else c for c in row))
    body = "\r\n".join(lines) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + body.encode(encoding)


def imported_titles(data_dir: Path) -> list[tuple]:
    return [(r[1], r[3], r[4], r[7]) for r in table_rows(data_dir, "listings_base")]


EXPECTED = [(int(r[1]), int(r[3]), int(r[4]), r[7]) for r in EXCEL_ROWS[1:]]


def test_a_cp932_csv_exported_the_way_excel_does_imports_correctly(cli, data_dir: Path) -> None:
    """done-when 3: Japanese Excel's "CSV (comma delimited)" is CP932 with CRLF; its titles
    land in the warehouse exactly as written, and the output names the encoding."""
    data = excel_csv("cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the file really is not UTF-8
    result = cli("listings", "import", str(write_bytes("excel.csv", data)), "--platform", "base")
    assert result.exit_code == 0, result.output
    assert "read as cp932" in result.stdout
    assert "3 inserted" in result.stdout
    assert imported_titles(data_dir) == EXPECTED


def test_excel_csv_utf8_with_a_bom_imports(cli, data_dir: Path) -> None:
    path = write_bytes("excel-utf8.csv", excel_csv("utf-8", bom=True))
    result = cli("listings", "import", str(path), "--platform", "base")
    assert result.exit_code == 0, result.output
    assert "read as utf-8" in result.stdout
    assert imported_titles(data_dir) == EXPECTED


def test_encoding_option_forces_one_and_refuses_an_unknown_name(cli, data_dir: Path) -> None:
    rows = EXCEL_ROWS[:3]  # plain Shift_JIS lacks CP932's extensions such as 髙 and №
    path = write_bytes("sjis.csv", excel_csv("shift_jis", rows=rows))
    unknown = cli("listings", "import", str(path), "--platform", "base", "--encoding", "sjis-x")
    assert_one_sentence(unknown, "--encoding 'sjis-x' is not an encoding")
    wrong = cli("listings", "import", str(path), "--platform", "base", "--encoding", "utf-8")
    assert_one_sentence(wrong, "is not valid utf-8 text", "--encoding")
    assert not (data_dir / "warehouse.duckdb").exists()
    forced = cli("listings", "import", str(path), "--platform", "base", "--encoding", "Shift_JIS")
    assert forced.exit_code == 0, forced.output
    assert "read as shift_jis" in forced.stdout
    assert imported_titles(data_dir) == EXPECTED[:2]


def test_a_file_neither_utf8_nor_cp932_is_one_sentence(cli, data_dir: Path) -> None:
    data = (BASE_HEADER + ",title\r\nshop1,1,B0C1234567,100,1,1,listed,").encode() + b"\x81\x7f\r\n"
    result = cli("listings", "import", str(write_bytes("latin.csv", data)), "--platform", "base")
    assert_one_sentence(result, "latin.csv is neither UTF-8 nor CP932", "--encoding")
    assert not (data_dir / "warehouse.duckdb").exists()


def test_a_rejected_cp932_file_names_its_encoding(cli, data_dir: Path) -> None:
    rows = [*EXCEL_ROWS[:2], ["shop1", "502", "B0C12", "1280", "0", "0", "listed", "不良品"]]
    with open(Path.cwd() / "bad.csv", "w", encoding="cp932", newline="") as fh:
        csv.writer(fh).writerows(rows)
    result = cli("listings", "import", "bad.csv", "--platform", "base")
    assert_one_sentence(result, "bad.csv (read as cp932) was rejected", "row 2: asin")


# --- configuration and command line -------------------------------------------------------


def test_a_cp932_invsync_toml_is_a_sentence_naming_the_file(cli) -> None:
    toml = '# 在庫同期の設定\nmode = "sandbox"\n'.encode("cp932")
    write_bytes("invsync.toml", toml)
    result = cli("config", "check")
    assert_one_sentence(result, "invsync.toml is not UTF-8", "save it as UTF-8")


def test_a_cp932_dotenv_is_a_sentence_naming_the_file(cli) -> None:
    write_bytes(".env", "# 秘密\nEBAY_CLIENT_ID=x\n".encode("cp932"))
    result = cli("runs")
    assert_one_sentence(result, ".env is not UTF-8", "save it as UTF-8")


WRITING_COMMANDS = [
    ["listings", "import", "shop.csv", "--platform", "base"],
    ["sync"],
    ["fetch"],
    ["transform"],
    ["load"],
    ["approve"],
    ["listings", "pull", "--platform", "base"],
]


@pytest.mark.parametrize(
    "command", WRITING_COMMANDS, ids=[" ".join(c[:2]) for c in WRITING_COMMANDS]
)
def test_a_data_directory_that_cannot_be_written_is_named(cli, command) -> None:
    """Tests run as root, which ignores file modes: the data directory lies under a regular
    file, which no user can make a folder in."""
    write_csv("shop.csv", BASE_HEADER, [GOOD_BASE])
    blocker = Path.cwd() / "not-a-folder"
    blocker.write_text("a file\n")
    result = cli("--data-dir", str(blocker / "data"), *command)
    assert_one_sentence(result, f"The data directory {blocker / 'data'}", "not a folder",
                        "--data-dir")  # fmt: skip
    assert blocker.read_text() == "a file\n"


def test_a_data_directory_that_is_a_file_is_named_by_config_check(cli) -> None:
    Path("data").write_text("")
    result = cli("config", "check")
    assert_one_sentence(result, "The data directory data is a file, not a folder")


BAD_NUMBERS = [
    (["runs", "--last", "-1"], "--last must be 1 or more, not -1"),
    (["runs", "--last", "0"], "--last must be 1 or more, not 0"),
    (["fetch", "--max-items", "-1"], "--max-items must be 1 or more, not -1"),
    (["fetch", "--max-items", "0"], "--max-items must be 1 or more, not 0"),
    (["extract", "--max-items", "0"], "--max-items must be 1 or more, not 0"),
    (["review", "--port", "70000"], "--port must be between 0 and 65535, not 70000"),
    (["review", "--port", "-1"], "--port must be between 0 and 65535, not -1"),
    (["sandbox", "serve", "--port", "70000"], "--port must be between 0 and 65535, not 70000"),
    (
        ["auth", "base", "--account", "shop1", "--timeout", "-5"],
        "--timeout must be between 0.1 and 86400, not -5",
    ),
]


@pytest.mark.parametrize(("argv", "says"), BAD_NUMBERS, ids=[" ".join(a) for a, _ in BAD_NUMBERS])
def test_an_out_of_range_number_is_refused_before_anything_starts(cli, data_dir, argv, says):
    result = cli(*argv)
    assert_one_sentence(result, says)
    assert not data_dir.exists()  # no run opened, no warehouse made


@pytest.mark.parametrize("name", ["shop[1].parquet", "shop[1].csv", "在庫 *.csv"])
def test_a_file_name_with_pattern_characters_imports(cli, data_dir: Path, name) -> None:
    """A listing file's name is a name, not a glob pattern (`[1]`, `*`)."""
    folder = Path.cwd() / "exports [2025]"
    folder.mkdir()
    row = {"account_id": ["shop1"], "item_id": [9], "asin": ["B0C1234567"], "price_jpy": [1500],
           "stock": [2], "visible": [True], "status": ["listed"]}  # fmt: skip
    if name.endswith(".parquet"):
        pl.DataFrame(row).write_parquet(folder / name)
    else:
        pl.DataFrame(row).write_csv(folder / name)
    result = cli("listings", "import", str(folder / name), "--platform", "base")
    assert result.exit_code == 0, result.output
    assert "1 inserted" in result.stdout
