# mypy: disable-error-code="misc,valid-type"
# pandera's class API takes dtype instances as annotations (pl.Datetime(...)) and `cls`
# in its check methods; mypy cannot type either, so those two codes are off here only.
"""pandera models, one per boundary where data enters or leaves a stage.

Validate collected frames (``DataFrame``), never a ``LazyFrame``: on a LazyFrame
pandera checks only the schema, not the values. Money columns are integers:
``*_jpy`` in yen, ``*_cents`` in US cents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandera.errors
import pandera.polars as pa
import polars as pl

from pipeline.statuses import LISTING_STATUSES, SNAPSHOT_STATUSES

# An ASIN is 10 characters: "B" + 9 upper-case letters or digits, or an ISBN-10.
ASIN_PATTERN = r"^(B[0-9A-Z]{9}|[0-9]{9}[0-9X])$"
ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

# The largest values an imported listing may hold. The pricing SQL
# (sql/transform/priced_listings.sql) multiplies a listing's price in BIGINT by basis points:
# ``abs(new - old) * 10000`` and ``old * max_move_bp`` (30 % = 3,000 bp by default), so a
# price above about 9.2 × 10^14 overflows at once and one such row stops `transform` for
# every listing. These bounds are far above any real listing and far below that limit:
# ¥100,000,000 × 10,000 bp is 10^12, leaving room for a price-change limit of up to
# 9 × 10^8 % (config caps percentages well below that). A quantity is a DuckDB INTEGER
# (2^31 − 1) in the listing tables; 1,000,000 units is more than any shop holds of one item.
MAX_PRICE_JPY = 100_000_000  # JPY: ¥100,000,000
MAX_PRICE_CENTS = 100_000_000  # US cents: $1,000,000.00
MAX_QUANTITY = 1_000_000  # units of stock (BASE) or quantity (eBay)
MAX_ITEM_ID = 2**63 - 1  # BASE item ids are BIGINT

EBAY_APIS = ["inventory", "trading"]
EBAY_CURRENCIES = ["USD"]

# snapshot `operation`: the lane that answered (pipeline/pool.py LANES)
OPERATIONS = ["item_offers", "item_offers_single", "competitive_pricing"]


class ListingsBase(pa.DataFrameModel):
    """``listings_base`` as imported or pulled: one row per BASE item."""

    account_id: str = pa.Field(str_matches=ACCOUNT_PATTERN)
    item_id: pl.Int64 = pa.Field(gt=0)
    asin: str = pa.Field(str_matches=ASIN_PATTERN)
    price_jpy: pl.Int64 = pa.Field(gt=0)  # JPY
    stock: pl.Int64 = pa.Field(ge=0)
    visible: pl.Boolean
    status: str = pa.Field(isin=LISTING_STATUSES)

    class Config:
        unique = ["account_id", "item_id"]


class ListingsEbay(pa.DataFrameModel):
    """``listings_ebay`` as imported or pulled: one row per eBay SKU."""

    account_id: str = pa.Field(str_matches=ACCOUNT_PATTERN)
    sku: str = pa.Field(str_length={"min_value": 1, "max_value": 50})
    offer_id: str = pa.Field(nullable=True)
    listing_id: str = pa.Field(nullable=True)
    asin: str = pa.Field(str_matches=ASIN_PATTERN)
    price_cents: pl.Int64 = pa.Field(gt=0)  # US cents
    currency: str = pa.Field(isin=EBAY_CURRENCIES)
    quantity: pl.Int64 = pa.Field(ge=0)
    api: str = pa.Field(isin=EBAY_APIS)
    status: str = pa.Field(isin=LISTING_STATUSES)

    class Config:
        unique = ["account_id", "sku"]


class Snapshot(pa.DataFrameModel):
    """One Amazon observation per ASIN per run (design §3). Written by fetch, read by
    transform and the analysts' views. ``price_jpy`` is the landed price:
    listing + shipping − points, in yen."""

    run_id: str
    asin: str = pa.Field(str_length={"min_value": 1, "max_value": 40})
    fetched_at: pl.Datetime(time_unit="us", time_zone="UTC") = pa.Field(nullable=True)
    operation: str = pa.Field(isin=OPERATIONS)
    status: str = pa.Field(isin=SNAPSHOT_STATUSES)
    price_jpy: pl.Int64 = pa.Field(nullable=True, gt=0)  # landed, JPY
    listing_price_jpy: pl.Int64 = pa.Field(nullable=True, ge=0)
    shipping_jpy: pl.Int64 = pa.Field(nullable=True, ge=0)
    points_jpy: pl.Int64 = pa.Field(nullable=True, ge=0)
    in_stock: pl.Boolean = pa.Field(nullable=True)
    offer_count: pl.Int32 = pa.Field(nullable=True, ge=0)  # all New offers Amazon reports
    eligible_offer_count: pl.Int32 = pa.Field(nullable=True, ge=0)  # passing the offer policy
    seller_id: str = pa.Field(nullable=True)
    is_prime: pl.Boolean = pa.Field(nullable=True)
    is_fba: pl.Boolean = pa.Field(nullable=True)
    availability_type: str = pa.Field(nullable=True)
    max_shipping_hours: pl.Int32 = pa.Field(nullable=True, ge=0)
    error_code: str = pa.Field(nullable=True)
    fallback_from_run: str = pa.Field(nullable=True)
    fallback_age_seconds: pl.Float64 = pa.Field(nullable=True, ge=0)  # seconds

    class Config:
        unique = ["run_id", "asin"]
        strict = True

    @pa.dataframe_check
    def failures_carry_no_facts(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """An error is not a fact: api_error, unknown and invalid_asin rows hold no price
        and no stock."""
        doubtful = pl.col("status").is_in(["api_error", "unknown", "invalid_asin"])
        return data.lazyframe.select(
            ~doubtful | (pl.col("price_jpy").is_null() & pl.col("in_stock").is_null())
        )

    @pa.dataframe_check
    def priced_rows_have_a_price(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """An ``ok`` row in stock has a price; a fallback row names its source run."""
        ok_in_stock = (pl.col("status") == "ok") & pl.col("in_stock").fill_null(False)
        fallback = pl.col("status") == "fallback"
        return data.lazyframe.select(
            (~ok_in_stock | pl.col("price_jpy").is_not_null())
            & (~fallback | pl.col("fallback_from_run").is_not_null())
        )


class Asins(pa.DataFrameModel):
    """Phase 1 extract: every ASIN listed anywhere, once (fetch reads it). ``valid`` says
    whether the ASIN has ASIN form; malformed ones are reported and never sent."""

    asin: str = pa.Field(str_length={"min_value": 1, "max_value": 40})
    valid: pl.Boolean
    listings: pl.Int64 = pa.Field(ge=1)  # listed listings pointing at the ASIN
    base_listings: pl.Int64 = pa.Field(ge=0)
    ebay_listings: pl.Int64 = pa.Field(ge=0)
    platforms: pl.List(pl.String)  # sorted, e.g. ["base", "ebay"]
    accounts: pl.List(pl.String)  # sorted account ids

    class Config:
        unique = ["asin"]
        strict = True

    @pa.dataframe_check
    def valid_means_asin_form(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("valid") == pl.col("asin").str.contains(ASIN_PATTERN))

    @pa.dataframe_check
    def counts_add_up(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("listings") == pl.col("base_listings") + pl.col("ebay_listings")
        )


CHANGE_KINDS = ["price_up", "price_down", "out_of_stock", "restock"]


PROTECTIONS = ["raise", "pause"]  # what load does at once while a held row waits
PROTECTION_REASONS = ["loss_at_current_price", "amazon_cannot_supply"]
DIFF_CURRENCIES = ["JPY", "USD"]  # BASE prices in yen, eBay in US cents
DIFF_APIS = ["items/edit", *EBAY_APIS]  # how load sends a row: BASE, or eBay's two APIs


class Diff(pa.DataFrameModel):
    """One platform's diff of one run, as load takes it: one row per listing whose price or
    stock must change, in the same columns on every platform (transform writes, review and
    load read).

    Money is in integer minor units of ``currency``: yen for JPY (BASE), cents for USD
    (eBay). ``change_kind`` names the stock change when there is one (``out_of_stock`` /
    ``restock``), else the price move. Visibility is BASE's only (null on eBay). The file
    ``diffs/run_id=…/platform=…/diff.parquet`` holds no ``run_id`` or ``platform`` column
    (its path does); readers add them back.
    """

    account_id: str = pa.Field(str_matches=ACCOUNT_PATTERN)
    listing_key: str = pa.Field(str_length={"min_value": 1})  # BASE item_id as text, eBay sku
    asin: str = pa.Field(str_matches=ASIN_PATTERN)
    change_kind: str = pa.Field(isin=CHANGE_KINDS)
    currency: str = pa.Field(isin=DIFF_CURRENCIES)
    old_price_minor: pl.Int64 = pa.Field(gt=0)  # minor units of currency
    new_price_minor: pl.Int64 = pa.Field(gt=0)
    old_quantity: pl.Int64 = pa.Field(ge=0)
    new_quantity: pl.Int64 = pa.Field(ge=0)
    old_visible: pl.Boolean = pa.Field(nullable=True)  # BASE only
    new_visible: pl.Boolean = pa.Field(nullable=True)
    api: str = pa.Field(isin=DIFF_APIS)
    offer_id: str = pa.Field(nullable=True)  # eBay offerId (Inventory API)
    listing_id: str = pa.Field(nullable=True)  # eBay ItemID (Trading API)
    expected_profit_minor: pl.Int64 = pa.Field(nullable=True)
    cost_jpy: pl.Int64 = pa.Field(nullable=True, gt=0)  # Amazon landed price, JPY
    source_run_id: str  # the run whose observation decided this row
    source_fetched_at: pl.Datetime(time_unit="us", time_zone="UTC") = pa.Field(nullable=True)
    source_status: str = pa.Field(isin=SNAPSHOT_STATUSES)
    source_fallback_age_seconds: pl.Float64 = pa.Field(nullable=True, ge=0)  # seconds
    held: pl.Boolean
    hold_reason: str = pa.Field(nullable=True)
    change_id: str = pa.Field(str_length={"min_value": 32, "max_value": 40})  # decisions bind here
    title: str = pa.Field(nullable=True)  # the listing's title on its platform, when known
    current_profit_minor: pl.Int64 = pa.Field(nullable=True)  # at old_price_minor; in stock only
    protection: str = pa.Field(nullable=True, isin=PROTECTIONS)  # while a held row waits
    protection_reason: str = pa.Field(nullable=True, isin=PROTECTION_REASONS)

    class Config:
        unique = ["account_id", "listing_key"]

    @pa.dataframe_check
    def only_held_rows_are_protected(cls, data: pa.PolarsData) -> pl.LazyFrame:
        protected = pl.col("protection").is_not_null()
        return data.lazyframe.select(
            (~protected | pl.col("held")) & (protected == pl.col("protection_reason").is_not_null())
        )

    @pa.dataframe_check
    def platform_columns_agree(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A yen row is a BASE row (items/edit, visibility known); a cents row is eBay's."""
        base = pl.col("currency") == "JPY"
        return data.lazyframe.select(
            (base == (pl.col("api") == "items/edit"))
            & (base == pl.col("old_visible").is_not_null())
            & (base == pl.col("new_visible").is_not_null())
        )


def _price_within_bounds(price: str, low: str, high: str, old: str) -> pl.Expr:
    """A price the rule set (it moved) lies within the row's min/max; an untouched one may not."""
    moved = pl.col(price) != pl.col(old)
    inside = (pl.col(low).is_null() | (pl.col(price) >= pl.col(low))) & (
        pl.col(high).is_null() | (pl.col(price) <= pl.col(high))
    )
    return ~moved | inside


class PricedDiff(Diff):
    """The diff as transform writes it: :class:`Diff` plus the rule bounds each row was
    checked against and the FX rate, so every row explains itself (issue 5). Strict: the
    file holds exactly these columns — ``run_id`` and ``platform`` live in its path."""

    target_price_minor: pl.Int64 = pa.Field(nullable=True, gt=0)  # rule's price after min/max
    min_price_minor: pl.Int64 = pa.Field(nullable=True, gt=0)
    max_price_minor: pl.Int64 = pa.Field(nullable=True, gt=0)
    min_profit_minor: pl.Int64
    fx_jpy_per_usd: str = pa.Field(nullable=True)  # exact decimal as text, e.g. "150.25"
    pricing_method: str = pa.Field(isin=["markup", "cost_plus"])

    class Config:
        strict = True

    @pa.dataframe_check
    def new_price_within_min_max(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            _price_within_bounds(
                "new_price_minor", "min_price_minor", "max_price_minor", "old_price_minor"
            )
        )

    @pa.dataframe_check
    def profit_at_least_minimum_unless_held(cls, data: pa.PolarsData) -> pl.LazyFrame:
        profit = pl.col("expected_profit_minor")
        return data.lazyframe.select(
            pl.col("held") | profit.is_null() | (profit >= pl.col("min_profit_minor"))
        )

    @pa.dataframe_check
    def something_changes_as_named(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """``change_kind`` says what changed: a stock move (quantity to or from 0, or BASE's
        visibility), else the price direction with the stock untouched."""
        hidden = (pl.col("old_visible") & ~pl.col("new_visible")).fill_null(False)
        shown = (~pl.col("old_visible") & pl.col("new_visible")).fill_null(False)
        went_out = ((pl.col("old_quantity") > 0) & (pl.col("new_quantity") == 0)) | hidden
        came_back = ((pl.col("old_quantity") == 0) & (pl.col("new_quantity") > 0)) | shown
        old, new, kind = pl.col("old_price_minor"), pl.col("new_price_minor"), pl.col("change_kind")
        return data.lazyframe.select(
            ((kind == "out_of_stock") & went_out)
            | ((kind == "restock") & came_back)
            | ((kind == "price_up") & (new > old) & ~went_out & ~came_back)
            | ((kind == "price_down") & (new < old) & ~went_out & ~came_back)
        )

    @pa.dataframe_check
    def held_rows_say_why(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("held") == pl.col("hold_reason").is_not_null())


class ListingHistory(pa.DataFrameModel):
    """One platform's listings as they stood at a run, with the run's decision for each:
    ``listings/run_id=…/platform=…/listings.parquet`` (transform writes; the analysts'
    views and ``invsync whatif`` read). ``price_minor``, ``quantity`` and ``visible`` are the
    listing before the run's push; ``change_kind`` and ``new_*`` are null where nothing
    changes. Money in minor units of ``currency``; ``cost_jpy`` in yen. Strict: ``run_id`` and
    ``platform`` live in the path only."""

    account_id: str = pa.Field(str_matches=ACCOUNT_PATTERN)
    listing_key: str = pa.Field(str_length={"min_value": 1})
    asin: str = pa.Field(str_matches=ASIN_PATTERN)
    item_id: pl.Int64 = pa.Field(nullable=True)  # BASE
    sku: str = pa.Field(nullable=True)  # eBay
    offer_id: str = pa.Field(nullable=True)
    listing_id: str = pa.Field(nullable=True)
    api: str = pa.Field(isin=DIFF_APIS)
    currency: str = pa.Field(isin=DIFF_CURRENCIES)
    price_minor: pl.Int64 = pa.Field(gt=0)
    quantity: pl.Int64 = pa.Field(ge=0)
    visible: pl.Boolean = pa.Field(nullable=True)
    drifted: pl.Boolean
    cost_jpy: pl.Int64 = pa.Field(nullable=True)
    source_status: str = pa.Field(nullable=True, isin=SNAPSHOT_STATUSES)  # null: not fetched
    source_says: str = pa.Field(isin=["in_stock", "out_of_stock", "ignore"])
    source_run_id: str = pa.Field(nullable=True)
    current_profit_minor: pl.Int64 = pa.Field(nullable=True)
    change_kind: str = pa.Field(nullable=True, isin=CHANGE_KINDS)
    new_price_minor: pl.Int64 = pa.Field(nullable=True)
    new_quantity: pl.Int64 = pa.Field(nullable=True)
    new_visible: pl.Boolean = pa.Field(nullable=True)
    held: pl.Boolean
    hold_reason: str = pa.Field(nullable=True)
    expected_profit_minor: pl.Int64 = pa.Field(nullable=True)
    change_id: str = pa.Field(nullable=True)  # null where nothing changes

    class Config:
        strict = True
        unique = ["account_id", "listing_key"]


# --- validation with one failure sentence --------------------------------------------------


def failure_summary(exc: pandera.errors.SchemaErrors) -> str:
    """``N problems (first: <check> on <column>, row R)`` for a lazy validation's failures."""
    cases = exc.failure_cases
    count = cases.height
    text = f"{count} problem{'s' if count != 1 else ''}"
    if count:
        first = cases.row(0, named=True)
        row = f", row {int(first['index']) + 1}" if first.get("index") is not None else ""
        text += f" (first: {first.get('check')} on {first.get('column')}{row})"
    return text


def validated(
    frame: pl.DataFrame, model: Any, on_failure: Callable[[str], Exception]
) -> pl.DataFrame:
    """``frame`` validated by the pandera ``model`` (every failure gathered); on failure,
    raise ``on_failure(failure_summary)`` — the caller's sentence with the next step."""
    try:
        return model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        raise on_failure(failure_summary(exc)) from None
