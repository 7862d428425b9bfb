"""Listing import: CSV or Parquet files into ``listings_base`` / ``listings_ebay``.

Reads one file, parses every cell as text first so that each bad cell can be named
by row and reason, validates the typed frame with the pandera models of
:mod:`pipeline.schemas`, and upserts it in one transaction. An invalid file is
rejected whole (:class:`~pipeline.errors.InputError`, exit 2) and nothing is written.

Rows are numbered from 1 for the first data row (a CSV's header is not counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandera.errors
import polars as pl

from pipeline import schemas, warehouse
from pipeline.config import Settings, Workspace
from pipeline.errors import InputError, RowProblem
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

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


# --- reading ---------------------------------------------------------------------------


def read_text_frame(path: Path) -> pl.DataFrame:
    """Every cell of a CSV or Parquet file as text (null for an empty cell)."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; check the file name.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
            frame = frame.with_columns(pl.all().cast(pl.Utf8))
        else:
            raise InputError(
                f"{path} is neither .csv nor .parquet; export the listings to one of those."
            )
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise InputError(
            f"{path} cannot be read as {suffix[1:]} ({type(exc).__name__}); check its format."
        ) from None
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


def _integer(column: str, unit: str) -> tuple[pl.Expr, pl.Expr]:
    """Text → Int64, and the reason a cell cannot be one (or null)."""
    text = pl.col(column)
    value = (
        pl.when(text.str.contains(_INT))
        .then(text)
        .when(text.str.contains(_INTEGRAL_DECIMAL))
        .then(text.str.replace(r"\.0*$", ""))
        .cast(pl.Int64, strict=False)
    )
    reason = (
        pl.when(text.is_null())
        .then(pl.lit("is missing"))
        .when(text.str.contains(_INT) | text.str.contains(_INTEGRAL_DECIMAL))
        .then(None)
        .when(text.str.contains(_DECIMAL))
        .then(pl.lit(f"has a fraction ({unit} are whole numbers): ") + text)
        .otherwise(pl.lit("is not a number: ") + text)
    )
    return value, reason


def _cents(column: str) -> tuple[pl.Expr, pl.Expr]:
    """A decimal string such as ``49.99`` → integer cents (exact: no float involved)."""
    text = pl.col(column)
    whole = text.str.extract(r"^([+-]?\d+)", 1).cast(pl.Int64, strict=False)
    fraction = text.str.extract(r"\.(\d{1,2})$", 1).fill_null("0").str.pad_end(2, "0")
    sign = pl.when(text.str.starts_with("-")).then(-1).otherwise(1)
    value = (
        pl.when(text.str.contains(_MONEY_2DP))
        .then(whole * 100 + sign * fraction.cast(pl.Int64, strict=False))
        .otherwise(None)
    )
    reason = (
        pl.when(text.is_null())
        .then(pl.lit("is missing"))
        .when(text.str.contains(_MONEY_2DP))
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
    if platform == "base":
        return {
            "item_id": _integer("item_id", "item ids"),
            "price_jpy": _integer("price_jpy", "yen"),
            "stock": _integer("stock", "stock counts"),
            "visible": _boolean("visible"),
        }
    return {
        "price_cents": _cents("price"),
        "quantity": _integer("quantity", "quantities"),
    }


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
    model_columns = list(spec.model.to_schema().columns)
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


def import_file(ws: Workspace, path: Path, *, platform: str, account: str | None) -> ImportCounts:
    """``invsync listings import``: read, validate whole, upsert in one transaction."""
    if platform not in PLATFORMS:
        raise InputError(f"--platform must be base or ebay, not {platform!r}.")
    if account is not None:
        declared = ws.settings.account(account)
        if declared.platform != platform:
            raise InputError(
                f"Account {account!r} is a {declared.platform} account, not {platform}; "
                "check --account and --platform."
            )
    raw = read_text_frame(path)
    raw = _with_account(raw, account, path)
    spec = SPECS[platform]
    ignored = [c for c in raw.columns if c not in (*spec.required, *spec.optional)]
    frame = parse_listings(raw.drop(ignored), platform, ws.settings, source=str(path))
    with warehouse.opened(ws.data_dir) as con:
        counts = upsert_listings(con, frame, platform)
    counts.ignored_columns = ignored
    return counts
