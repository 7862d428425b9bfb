"""Phase 1, extract: every ASIN of every platform and account, once.

Stage: extract. Reads ``listings_base`` and ``listings_ebay`` (status ``listed``: shown, or a
BASE item invsync hid, which is restocked when Amazon can supply; never ``unlisted`` — hidden
by hand —, ``unmapped``, ``gone`` or ``quarantined``: docs/load.md) with
``sql/extract_accounts.sql`` and ``sql/extract_asins.sql`` (or, past 64 platform/account
pairs, ``sql/extract_asins_lists.sql``); writes nothing but, given a run id, the run's extract counts in
``runs``. Returns one deduplicated, pandera-validated frame (:class:`pipeline.schemas.Asins`):
per ASIN the number of listings, the platforms and the accounts it serves, and whether it
has ASIN form. Malformed ASINs are kept in the frame (``valid = false``) so they can be
reported and recorded, and fetch never sends them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import duckdb
import polars as pl

from pipeline import runs
from pipeline.config import Workspace
from pipeline.schemas import ASIN_PATTERN, Asins
from pipeline.sql import query_frame

EXAMPLES = 5  # malformed ASINs named in a report
MASK_BITS = 64  # sql/extract_asins.sql marks each (platform, account) pair in a ubigint


@dataclass(frozen=True)
class ExtractResult:
    """The ASIN frame and its counts."""

    asins: pl.DataFrame  # pipeline.schemas.Asins, sorted by ASIN
    listings: int  # listed listings over all platforms and accounts
    seconds: float

    @property
    def unique_asins(self) -> int:
        return self.asins.height

    @property
    def valid(self) -> pl.DataFrame:
        return self.asins.filter(pl.col("valid"))

    @property
    def malformed(self) -> pl.DataFrame:
        return self.asins.filter(~pl.col("valid"))

    @property
    def malformed_examples(self) -> list[str]:
        return self.malformed["asin"].head(EXAMPLES).to_list()

    def by_platform(self) -> dict[str, int]:
        """Unique ASINs each platform lists."""
        exploded = self.asins.select("platforms").explode("platforms")
        counts = exploded.group_by("platforms").len()
        return {str(p): int(n) for p, n in counts.iter_rows()}


def _pair_lists(masks: pl.Series, pairs: pl.DataFrame) -> pl.DataFrame:
    """Per distinct mask (a handful, not one per ASIN) the sorted platforms and accounts of
    the pairs whose bit it sets."""
    members = list(zip(pairs["platform"].to_list(), pairs["account_id"].to_list(), strict=True))
    rows = []
    for mask in masks.to_list():
        chosen = [pair for bit, pair in enumerate(members) if mask >> bit & 1]
        rows.append((mask, sorted({p for p, _ in chosen}), sorted({a for _, a in chosen})))
    schema = {
        "account_mask": masks.dtype,
        "platforms": pl.List(pl.String),
        "accounts": pl.List(pl.String),
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def listed_asins(con: duckdb.DuckDBPyConnection, *, mask_bits: int = MASK_BITS) -> pl.DataFrame:
    """One row per listed ASIN, sorted: counts, platforms and accounts (the Asins columns but
    ``valid``). The platforms and accounts lists come from a bit mask per ASIN, decoded once
    per distinct mask; with more pairs than ``mask_bits`` the lists are aggregated in SQL."""
    pairs = query_frame(con, "extract_accounts")
    if pairs.height > mask_bits:
        return query_frame(con, "extract_asins_lists")
    con.register("extract_accounts", pairs.with_row_index("bit"))
    try:
        grouped = query_frame(con, "extract_asins")
    finally:
        con.unregister("extract_accounts")
    lists = _pair_lists(grouped["account_mask"].unique(), pairs)
    joined = grouped.join(lists, on="account_mask", how="left", maintain_order="left")
    return joined.drop("account_mask").sort("asin")


def asin_frame(listed: pl.DataFrame) -> pl.DataFrame:
    """The grouped listings (one row per ASIN) with ``valid`` added, validated."""
    frame = listed.with_columns(
        pl.col("asin").str.contains(ASIN_PATTERN).fill_null(False).alias("valid")
    ).select("asin", "valid", "listings", "base_listings", "ebay_listings", "platforms", "accounts")
    return Asins.validate(frame.sort("asin"), lazy=True)


def limit_items(frame: pl.DataFrame, max_items: int | None) -> pl.DataFrame:
    """At most ``max_items`` ASINs for a trial run: the first by ASIN order, so the same
    listings always give the same trial. Malformed ASINs count towards the limit too."""
    if max_items is None:
        return frame
    if max_items < 0:
        raise ValueError("max_items cannot be negative")
    return frame.sort("asin").head(max_items)


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    max_items: int | None = None,
    *,
    run_id: str | None = None,
) -> ExtractResult:
    """Read the listing tables and return the ASIN frame; record counts on ``run_id``."""
    started = time.monotonic()
    listed = listed_asins(con)
    frame = asin_frame(listed)
    frame = limit_items(frame, max_items)
    listings = int(frame["listings"].sum()) if frame.height else 0
    result = ExtractResult(asins=frame, listings=listings, seconds=time.monotonic() - started)
    if run_id is not None:
        runs.update_run(
            con,
            run_id,
            extract_seconds=result.seconds,
            listings=result.listings,
            unique_asins=result.unique_asins,
            invalid_asins=result.malformed.height,
        )
    return result
