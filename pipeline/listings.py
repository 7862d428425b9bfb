"""Listing import: CSV or Parquet files into ``listings_base`` / ``listings_ebay``.

Reads one file, parses every cell as text first so that each bad cell can be named
by row and reason, validates the typed frame with the pandera models of
:mod:`pipeline.schemas`, and upserts it in one transaction. An invalid file is
rejected whole (:class:`~pipeline.errors.InputError`, exit 2) and nothing is written.

Stage: before Phase 1 (an operator's command). Reads: one CSV (UTF-8, else CP932 as
Japanese Excel writes it, or ``--encoding``) or Parquet file. Writes: ``listings_base`` or
``listings_ebay`` in the warehouse, only when every row is valid. Values beyond what the
pricing SQL holds are refused here with their bound (``MAX_PRICE_JPY``, ``MAX_PRICE_CENTS``,
``MAX_QUANTITY`` in :mod:`pipeline.schemas`), never later in ``transform``.

Rows are numbered from 1 for the first data row (a CSV's header is not counted).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandera.errors
import polars as pl

from pipeline import schemas, warehouse
from pipeline.config import Settings, Workspace
from pipeline.errors import InputError, RowProblem, UsageError
from pipeline.money import money
from pipeline.platforms import PLATFORMS
from pipeline.sql import run_sql


@dataclass(frozen=True)
class ImportSpec:
    """What one platform's import file holds and where it lands."""

    platform: str
    table: str
    key: tuple[str, ...]
    required: tuple[str, ...]  # columns the file must have (account_id may come from --account)
    optional: tuple[str, ...]  # columns kept when present
    model: type[schemas.pa.DataFrameModel]


SPECS = {
    "base": ImportSpec(
        platform="base",
        table="listings_base",
        key=("account_id", "item_id"),
        required=("account_id", "item_id", "asin", "price_jpy", "stock", "visible", "status"),
        optional=("title", "identifier"),
        model=schemas.ListingsBase,
    ),
    "ebay": ImportSpec(
        platform="ebay",
        table="listings_ebay",
        key=("account_id", "sku"),
        required=(
            "account_id",
            "sku",
            "offer_id",
            "listing_id",
            "asin",
            "price",
            "currency",
            "quantity",
            "api",
            "status",
        ),
        optional=(),
        model=schemas.ListingsEbay,
    ),
}


@dataclass
class ImportCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str | None = None  # a CSV's encoding as read (None: Parquet)

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


# --- reading ---------------------------------------------------------------------------

# What Japanese Excel writes with "CSV (comma delimited)": CP932, Microsoft's superset of
# Shift_JIS. Tried when a file is not UTF-8; `--encoding` forces one.
FALLBACK_ENCODING = "cp932"
UTF8 = "utf-8"
BOM = "\ufeff"


@dataclass(frozen=True)
class ReadFile:
    """One listing file as text cells, and the encoding its bytes were read in (None for
    Parquet, which stores text as UTF-8 by definition)."""

    frame: pl.DataFrame
    encoding: str | None

    def source(self, path: Path) -> str:
        """How errors name the file: its path, and its encoding when that was not UTF-8."""
        if self.encoding in (None, UTF8):
            return str(path)
        return f"{path} (read as {self.encoding})"


def read_text_frame(
    path: Path, *, encoding: str | None = None, wanted: tuple[str, ...] = ()
) -> ReadFile:
    """Every cell of a CSV or Parquet file as text (null for an empty cell).

    A CSV is decoded as ``encoding`` when given, else as UTF-8 (a BOM is dropped), else as
    CP932. ``wanted`` names the columns the import keeps; a Parquet list or struct column
    among them is refused, any other is left out like every ignored column."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; check the file name.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text, used = _decoded(path, encoding)
        return ReadFile(_csv_frame(text, path), used)
    if suffix in (".parquet", ".pq"):
        if encoding is not None:
            raise UsageError(
                f"--encoding applies to CSV files only; {path} is Parquet, whose text is "
                "always UTF-8: drop --encoding."
            )
        return ReadFile(_parquet_frame(path, wanted), None)
    raise InputError(f"{path} is neither .csv nor .parquet; export the listings to one of those.")


def check_encoding(name: str) -> str:
    """The canonical codec name of ``--encoding NAME``; an unknown name is a usage error."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UsageError(
            f"--encoding {name!r} is not an encoding invsync knows; use utf-8, utf-8-sig, "
            "cp932 or shift_jis."
        ) from None


def _decoded(path: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text and the encoding it was read in."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path} cannot be read ({exc.strerror}); check its permissions."
        ) from None
    if encoding is not None:
        used = check_encoding(encoding)
        try:
            return data.decode(used).removeprefix(BOM), used
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path} is not valid {used} text (byte {exc.start} cannot be read); "
                "check --encoding, or leave it out to let invsync try UTF-8 and CP932."
            ) from None
    for candidate in (UTF8, FALLBACK_ENCODING):
        try:
            return data.decode(candidate).removeprefix(BOM), candidate
        except UnicodeDecodeError:
            continue
    raise InputError(
        f'{path} is neither UTF-8 nor CP932 (Shift_JIS) text; save it as "CSV UTF-8" or '
        "pass --encoding NAME with the encoding it was written in."
    )


def _csv_frame(text: str, path: Path) -> pl.DataFrame:
    """A CSV's rows as text columns; an empty file, a repeated or nameless column and a row
    with more or fewer cells than the header are refused, naming the row."""
    try:
        records = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV ({exc}); export it again.") from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise InputError(
            f"{path} is empty; export the listings again with a header row and one row per listing."
        )
    header = [name.strip() for name in records[0]]
    _check_header(header, path)
    ragged = [n for n, row in enumerate(records[1:], start=1) if len(row) != len(header)]
    if ragged:
        first = ragged[0]
        raise InputError(
            f"{path} row {first} has {len(records[first])} cells but the header has "
            f"{len(header)}"
            + (f" (and {len(ragged) - 1} more such rows)" if len(ragged) > 1 else "")
            + "; nothing was written — give every row as many cells as the header (quote "
            "cells that contain commas) and import again."
        )
    columns = list(zip(*records[1:], strict=True)) if len(records) > 1 else [()] * len(header)
    frame = pl.DataFrame(
        {name: list(cells) for name, cells in zip(header, columns, strict=True)},
        schema=dict.fromkeys(header, pl.Utf8),
    )
    return _blank_is_null(frame)


def _check_header(header: list[str], path: Path) -> None:
    nameless = [n for n, name in enumerate(header, start=1) if not name]
    if nameless:
        raise InputError(
            f"{path} has a column without a name (column {nameless[0]} of the header); name "
            "it or delete it and import again."
        )
    repeated = [name for name in dict.fromkeys(header) if header.count(name) > 1]
    if repeated:
        raise InputError(
            f"{path} names column {repeated[0]} {header.count(repeated[0])} times; keep one "
            "column of each name and import again."
        )


def _parquet_frame(path: Path, wanted: tuple[str, ...]) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path, glob=False)  # a name may hold [ or *: not a pattern
    except (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException) as exc:
        raise InputError(
            f"{path} cannot be read as Parquet ({type(exc).__name__}); export it again."
        ) from None
    nested = [c for c in frame.columns if c in wanted and frame.schema[c].is_nested()]
    if nested:
        raise InputError(
            f"{path} column {nested[0]} holds {frame.schema[nested[0]]} values, not one value "
            "per cell; write it as plain text or numbers and import again."
        )
    # an ignored nested column stays by name (the output lists it as ignored), without values
    flat = [
        pl.lit(None, dtype=pl.Utf8).alias(c) if frame.schema[c].is_nested() else pl.col(c)
        for c in frame.columns
    ]
    try:
        frame = frame.select(flat).with_columns(pl.all().cast(pl.Utf8))
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"{path} holds a column that cannot be read as text ({type(exc).__name__}); "
            "write its columns as text or numbers and import again."
        ) from None
    return _blank_is_null(frame)


def _blank_is_null(frame: pl.DataFrame) -> pl.DataFrame:
    if not frame.columns:
        return frame
    return frame.with_columns(pl.all().str.strip_chars()).with_columns(
        pl.when(pl.all() == "").then(None).otherwise(pl.all()).name.keep()
    )


# --- parsing text into typed columns ----------------------------------------------------

_INT = r"^[+-]?\d+$"
_INTEGRAL_DECIMAL = r"^[+-]?\d+\.0*$"
_DECIMAL = r"^[+-]?(\d+\.?\d*|\.\d+)$"
_MONEY_2DP = r"^[+-]?\d+(\.\d{1,2})?$"
_TRUE = ("1", "true", "yes", "y", "t")
_FALSE = ("0", "false", "no", "n", "f")


def _too_large(text: pl.Expr, what: str) -> pl.Expr:
    return pl.lit(f"is above {what}, the most invsync accepts: ") + text


def _integer(column: str, unit: str, maximum: int, what: str) -> tuple[pl.Expr, pl.Expr]:
    """Text → Int64, and the reason a cell cannot be one (or null). A value above
    ``maximum`` (``what`` names it with its unit) is refused, like one beyond Int64."""
    text = pl.col(column)
    integral = text.str.contains(_INT) | text.str.contains(_INTEGRAL_DECIMAL)
    parsed = (
        pl.when(text.str.contains(_INT))
        .then(text)
        .when(text.str.contains(_INTEGRAL_DECIMAL))
        .then(text.str.replace(r"\.0*$", ""))
        .cast(pl.Int64, strict=False)
    )
    negative = text.str.starts_with("-")
    value = pl.when(parsed <= maximum).then(parsed)
    reason = (
        pl.when(text.is_null())
        .then(pl.lit("is missing"))
        .when(integral & parsed.is_null() & negative)
        .then(pl.lit("is negative: ") + text)
        .when(integral & (parsed.is_null() | (parsed > maximum)))
        .then(_too_large(text, what))
        .when(integral)
        .then(None)
        .when(text.str.contains(_DECIMAL))
        .then(pl.lit(f"has a fraction ({unit} are whole numbers): ") + text)
        .otherwise(pl.lit("is not a number: ") + text)
    )
    return value, reason


def _cents(column: str, maximum: int, what: str) -> tuple[pl.Expr, pl.Expr]:
    """A decimal string such as ``49.99`` → integer cents (exact: no float involved). The
    whole part is bounded before it is multiplied, so no value wraps around Int64."""
    text = pl.col(column)
    decimal = text.str.contains(_MONEY_2DP)
    whole = text.str.extract(r"^([+-]?\d+)", 1).cast(pl.Int64, strict=False)
    fraction = text.str.extract(r"\.(\d{1,2})$", 1).fill_null("0").str.pad_end(2, "0")
    sign = pl.when(text.str.starts_with("-")).then(-1).otherwise(1)
    fits = decimal & whole.is_between(-(maximum // 100), maximum // 100).fill_null(False)
    cents = whole * 100 + sign * fraction.cast(pl.Int64, strict=False)
    value = pl.when(fits & (cents <= maximum)).then(cents)
    reason = (
        pl.when(text.is_null())
        .then(pl.lit("is missing"))
        .when(decimal & ~fits & text.str.starts_with("-"))
        .then(pl.lit("is negative: ") + text)
        .when(decimal & (~fits | (cents > maximum)))
        .then(_too_large(text, what))
        .when(decimal)
        .then(None)
        .when(text.str.contains(_DECIMAL))
        .then(pl.lit("has fractions of a cent: ") + text)
        .otherwise(pl.lit("is not a number: ") + text)
    )
    return value, reason


def _boolean(column: str) -> tuple[pl.Expr, pl.Expr]:
    text = pl.col(column).str.to_lowercase()
    value = pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)
    reason = (
        pl.when(pl.col(column).is_null())
        .then(pl.lit("is missing"))
        .when(text.is_in(_TRUE + _FALSE))
        .then(None)
        .otherwise(pl.lit("is not 1/0 or true/false: ") + pl.col(column))
    )
    return value, reason


def _parsers(platform: str) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    quantity = f"{schemas.MAX_QUANTITY:,} units (MAX_QUANTITY)"
    if platform == "base":
        return {
            "item_id": _integer("item_id", "item ids", schemas.MAX_ITEM_ID,
                                f"{schemas.MAX_ITEM_ID:,} (BIGINT)"),
            "price_jpy": _integer(
                "price_jpy", "yen", schemas.MAX_PRICE_JPY,
                f"{money(schemas.MAX_PRICE_JPY, 'JPY')} (MAX_PRICE_JPY)",
            ),
            "stock": _integer("stock", "stock counts", schemas.MAX_QUANTITY, quantity),
            "visible": _boolean("visible"),
        }  # fmt: skip
    return {
        "price_cents": _cents(
            "price", schemas.MAX_PRICE_CENTS,
            f"{money(schemas.MAX_PRICE_CENTS, 'USD')} (MAX_PRICE_CENTS)",
        ),
        "quantity": _integer("quantity", "quantities", schemas.MAX_QUANTITY, quantity),
    }  # fmt: skip


def _with_account(raw: pl.DataFrame, account: str | None, path: Path) -> pl.DataFrame:
    if "account_id" in raw.columns:
        if account is not None:
            return raw.with_columns(pl.col("account_id").fill_null(account))
        return raw
    if account is None:
        raise InputError(
            f"{path} has no account_id column; add one or pass --account ID to fill it."
        )
    return raw.with_columns(pl.lit(account).alias("account_id"))


def parse_listings(
    raw: pl.DataFrame, platform: str, settings: Settings, *, source: str = "file"
) -> pl.DataFrame:
    """Text frame → typed frame valid for the platform's pandera model.

    Raises :class:`InputError` listing every bad row with its reason.
    """
    spec = SPECS[platform]
    missing = [c for c in spec.required if c not in raw.columns]
    if missing:
        raise InputError(
            f"{source} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"a {platform} listing file needs: {', '.join(spec.required)}."
        )
    for column in spec.optional:
        if column not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.Utf8).alias(column))
    parsers = _parsers(platform)
    raw = raw.with_row_index("_row", offset=1)
    parsed = raw.with_columns(
        *[value.alias(name) for name, (value, _) in parsers.items()],
        *[reason.alias(f"_why_{name}") for name, (_, reason) in parsers.items()],
    )
    problems: list[RowProblem] = []
    source_column = {"price_cents": "price"}
    for name in parsers:
        bad = parsed.filter(pl.col(f"_why_{name}").is_not_null()).select("_row", f"_why_{name}")
        for row, why in bad.iter_rows():
            problems.append(RowProblem(row, source_column.get(name, name), why))

    # Domain checks (ASIN, signs, sets, uniqueness) belong to the pandera model.
    known = {a.id for a in settings.accounts_on(platform)}
    text_only = set(source_column.values())  # parsed into another column (price → price_cents)
    columns = dict.fromkeys(
        ["_row", *[c for c in (*spec.required, *spec.optional) if c not in text_only], *parsers]
    )
    typed = parsed.select(list(columns))
    schema_columns = spec.model.to_schema().columns
    model_columns = list(schema_columns)
    problems.extend(_missing_cells(typed, [c for c in model_columns if c not in parsers
                                           and not schema_columns[c].nullable]))  # fmt: skip
    checked = typed.select(model_columns)
    try:
        spec.model.validate(checked, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        problems.extend(_problems_from_pandera(exc, typed, spec))
    if platform == "ebay":
        problems.extend(_trading_without_item_id(typed))
    unknown = typed.filter(pl.col("account_id").is_not_null() & ~pl.col("account_id").is_in(known))
    for row, account_id in unknown.select("_row", "account_id").iter_rows():
        problems.append(
            RowProblem(
                row,
                "account_id",
                f"names account {account_id!r}, which is not a {platform} account in the "
                "configuration",
            )
        )
    if problems:
        problems = sorted(set(problems), key=lambda p: (p.row, p.column, p.reason))
        bad_rows = len({p.row for p in problems})
        raise InputError(
            f"{source} was rejected: {bad_rows} of {raw.height} rows are invalid "
            f"(first: {problems[0]}); nothing was written — fix the rows listed and import again.",
            problems,
        )
    return typed.drop("_row")


def _missing_cells(typed: pl.DataFrame, required: list[str]) -> list[RowProblem]:
    """An empty cell in a required text column (asin, status, account_id, sku, …): pandera
    reports a null without its row's reason, so it is named here."""
    return [
        RowProblem(row, column, "is missing")
        for column in required
        for row in typed.filter(pl.col(column).is_null())["_row"]
    ]


def _trading_without_item_id(typed: pl.DataFrame) -> list[RowProblem]:
    """An ``api = trading`` row needs its ``listing_id``: ReviseInventoryStatus finds a listing
    by SKU only when it was listed with ``InventoryTrackingMethod=SKU``, not eBay's default."""
    rows = typed.filter((pl.col("api") == "trading") & pl.col("listing_id").is_null())
    return [
        RowProblem(
            row,
            "listing_id",
            "is missing for a Trading listing (api = trading): eBay revises it by its ItemID; "
            "add the listing's ItemID",
        )
        for row in rows["_row"]
    ]


def _problems_from_pandera(
    exc: pandera.errors.SchemaErrors, typed: pl.DataFrame, spec: ImportSpec
) -> list[RowProblem]:
    problems = []
    rows = typed["_row"]
    for case in exc.failure_cases.iter_rows(named=True):
        index = case.get("index")
        if index is None:
            continue
        row = int(rows[int(index)])
        column, check = str(case["column"]), str(case["check"])
        value = case["failure_case"]
        if check.startswith("multiple_fields_uniqueness"):
            key_values = typed.row(int(index), named=True)
            same = typed.filter(pl.all_horizontal([pl.col(k) == key_values[k] for k in spec.key]))[
                "_row"
            ].to_list()
            others = ", ".join(str(r) for r in same if r != row)
            key = ", ".join(spec.key)
            problems.append(RowProblem(row, key, f"repeats the listing key of row {others}"))
            continue
        if value is None and check in ("not_nullable", "null"):
            # a null from a failed parse is already reported with its reason
            continue
        if check == "not_nullable":
            reason = "is missing"
        elif column == "asin":
            reason = f"is not a valid ASIN (10 letters/digits such as B0C1234567): {value}"
        elif column == "currency":
            reason = f"names an unknown currency {value!r} (expected {', '.join(schemas.EBAY_CURRENCIES)})"
        elif check.startswith("greater_than_or_equal_to"):
            reason = f"is negative: {value}"
        elif check.startswith("greater_than"):
            reason = f"must be greater than 0: {value}"
        elif check.startswith("isin"):
            reason = f"is not one of the allowed values {check[5:-1]}: {value}"
        elif check.startswith("str_matches"):
            reason = f"is not in the expected form: {value}"
        elif check.startswith("str_length"):
            reason = f"has the wrong length: {value}"
        else:
            reason = f"fails {check}: {value}"
        problems.append(RowProblem(row, column, reason))
    # A parse failure leaves a null that pandera reports too; keep the parse reason only.
    return problems


# --- writing ---------------------------------------------------------------------------


def upsert_listings(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, platform: str, source: str = "import"
) -> ImportCounts:
    """Insert new listings and update changed ones in one transaction; count each kind."""
    incoming = frame.with_columns(pl.lit(source).alias("source"))
    con.register("incoming_listings", incoming.to_arrow())
    try:
        with warehouse.transaction(con):
            counts = run_sql(con, f"listings/classify_{platform}").fetchall()
            run_sql(con, f"listings/upsert_{platform}")
    finally:
        con.unregister("incoming_listings")
    by_kind = dict(counts)
    return ImportCounts(
        inserted=int(by_kind.get("inserted", 0)),
        updated=int(by_kind.get("updated", 0)),
        unchanged=int(by_kind.get("unchanged", 0)),
    )


def import_file(
    ws: Workspace, path: Path, *, platform: str, account: str | None, encoding: str | None = None
) -> ImportCounts:
    """``invsync listings import``: read, validate whole, upsert in one transaction.

    ``encoding`` forces a CSV's encoding (else UTF-8, then CP932); the counts name the one
    used. A file without a listing row is refused: importing nothing is never what was meant.
    """
    if platform not in PLATFORMS:
        raise InputError(f"--platform must be base or ebay, not {platform!r}.")
    if account is not None:
        declared = ws.settings.account(account)
        if declared.platform != platform:
            raise InputError(
                f"Account {account!r} is a {declared.platform} account, not {platform}; "
                "check --account and --platform."
            )
    spec = SPECS[platform]
    read = read_text_frame(path, encoding=encoding, wanted=(*spec.required, *spec.optional))
    source = read.source(path)
    if read.frame.height == 0:
        raise InputError(
            f"{source} holds no listing rows, only a header; nothing was written — export "
            "the listings again with their rows."
        )
    raw = _with_account(read.frame, account, path)
    ignored = [c for c in raw.columns if c not in (*spec.required, *spec.optional)]
    frame = parse_listings(raw.drop(ignored), platform, ws.settings, source=source)
    with warehouse.opened(ws.data_dir) as con:
        counts = upsert_listings(con, frame, platform)
    counts.ignored_columns = ignored
    counts.encoding = read.encoding
    return counts
