"""pandera models, one per boundary where data enters or leaves a stage.

Validate collected frames (``DataFrame``), never a ``LazyFrame``: on a LazyFrame
pandera checks only the schema, not the values. Money columns are integers:
``*_jpy`` in yen, ``*_cents`` in US cents.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

# An ASIN is 10 characters: "B" + 9 upper-case letters or digits, or an ISBN-10.
ASIN_PATTERN = r"^(B[0-9A-Z]{9}|[0-9]{9}[0-9X])$"
ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

LISTING_STATUSES = ["listed", "unlisted", "quarantined", "gone"]
EBAY_APIS = ["inventory", "trading"]
EBAY_CURRENCIES = ["USD"]

SNAPSHOT_STATUSES = [
    "ok",  # priced and stocked from this run's answer
    "no_offer",  # Amazon answered: no buyable offer
    "filtered_out",  # offers exist, none passes the offer policy
    "api_error",  # the call failed; never read as a fact
    "invalid_asin",  # Amazon rejected the ASIN itself
    "fallback",  # the last good observation, younger than max_fallback_age
    "unknown",  # failed and no usable fallback: listings stay as they are
]
OPERATIONS = ["item_offers", "competitive_pricing"]


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


CHANGE_KINDS = ["price_up", "price_down", "out_of_stock", "restock"]


class _DiffCommon(pa.DataFrameModel):
    """Columns every per-platform diff row carries (transform writes, review and load read).

    One row per listing whose price or stock must change. ``change_kind`` names the
    stock change when there is one (``out_of_stock`` / ``restock``), else the price move.
    """

    run_id: str
    platform: str = pa.Field(isin=["base", "ebay"])
    account_id: str = pa.Field(str_matches=ACCOUNT_PATTERN)
    listing_key: str  # BASE item_id as text, eBay sku
    asin: str = pa.Field(str_matches=ASIN_PATTERN)
    change_kind: str = pa.Field(isin=CHANGE_KINDS)
    source_run_id: str  # the run whose observation decided this row
    source_fetched_at: pl.Datetime(time_unit="us", time_zone="UTC") = pa.Field(nullable=True)
    source_status: str = pa.Field(isin=SNAPSHOT_STATUSES)
    source_fallback_age_seconds: pl.Float64 = pa.Field(nullable=True, ge=0)  # seconds
    cost_jpy: pl.Int64 = pa.Field(nullable=True, gt=0)  # Amazon landed price, JPY
    held: pl.Boolean
    hold_reason: str = pa.Field(nullable=True)


class DiffBase(_DiffCommon):
    """``diff_base``: BASE listings to change (yen)."""

    item_id: pl.Int64 = pa.Field(gt=0)
    old_price_jpy: pl.Int64 = pa.Field(gt=0)
    new_price_jpy: pl.Int64 = pa.Field(gt=0)
    old_stock: pl.Int64 = pa.Field(ge=0)
    new_stock: pl.Int64 = pa.Field(ge=0)
    old_visible: pl.Boolean
    new_visible: pl.Boolean
    expected_profit_jpy: pl.Int64 = pa.Field(nullable=True)

    class Config:
        unique = ["run_id", "account_id", "listing_key"]


class DiffEbay(_DiffCommon):
    """``diff_ebay``: eBay listings to change (US cents)."""

    sku: str
    offer_id: str = pa.Field(nullable=True)
    listing_id: str = pa.Field(nullable=True)
    api: str = pa.Field(isin=EBAY_APIS)
    currency: str = pa.Field(isin=EBAY_CURRENCIES)
    old_price_cents: pl.Int64 = pa.Field(gt=0)
    new_price_cents: pl.Int64 = pa.Field(gt=0)
    old_quantity: pl.Int64 = pa.Field(ge=0)
    new_quantity: pl.Int64 = pa.Field(ge=0)
    expected_profit_cents: pl.Int64 = pa.Field(nullable=True)

    class Config:
        unique = ["run_id", "account_id", "listing_key"]
