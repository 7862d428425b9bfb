"""``invsync listings pull``: refresh the listing tables from BASE and eBay.

Stage: listings (before extract). Reads: BASE ``GET /1/items`` (paged by 100); eBay
Trading ``GetMyeBaySelling`` (the ActiveList, 200 per page), ``getInventoryItems``
(following ``next``) and ``getOffers?sku=`` per SKU; and the listing tables. Writes:
``listings_base`` / ``listings_ebay`` — one transaction per account, so a failed pull
changes nothing for that account.

Each listing is mapped to its ASIN by the account's ``asin_field`` (a BASE item field,
``identifier`` by default) or ``sku_pattern`` (a regex over the eBay SKU; the ``asin``
group, else the whole match). Listings without a recognisable ASIN are counted and left
out. eBay listings come from two APIs: the Inventory API shows the listings it created
(``api = inventory``); ``GetMyeBaySelling`` lists every active listing, and those whose SKU
(and ItemID) the Inventory API did not show are ``api = trading`` — the Inventory API wins.
The pull reports:

* **gone** — ours, but no longer on the platform (status ``gone``). A Trading listing is
  gone when a complete ActiveList no longer has it; when the list could not be read whole
  (eBay's 25,000-item cap, or listings starting or ending between pages) no Trading
  listing is marked gone that time;
* **drifted** — price or stock on the platform differs from what we last pushed or pulled:
  changed by hand. ``drift_detected_at`` is set so the review gate holds changes to them;
  a confirmed push clears it. Rows last written by an import are updated, not flagged.

A BASE item with ``variations`` is recorded with ``has_variations``: BASE sets its stock to
the sum of the variations' stock, so the push sends it price and visibility only.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from pipeline.clients.ebay import ActiveList, EbayClient, published_offer
from pipeline.clients.factory import base_client, ebay_client
from pipeline.clients.thebase import BaseShopClient
from pipeline.config import Account, Workspace
from pipeline.errors import UsageError
from pipeline.load.budget import BudgetSpent, base_budget
from pipeline.platforms import PLATFORMS
from pipeline.schemas import ASIN_PATTERN
from pipeline.sql import run_sql
from pipeline.warehouse import transaction

_ASIN = re.compile(ASIN_PATTERN)
SAMPLE = 10  # keys kept per report list


@dataclass
class AccountPull:
    platform: str
    account_id: str
    seen: int = 0  # listings on the platform
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    drifted: int = 0
    gone: int = 0
    unmapped: int = 0  # no ASIN in the configured field / SKU pattern, or no price
    calls: int = 0
    trading: int = 0  # eBay: listings only the Trading API showed (api = trading)
    trading_complete: bool = True  # eBay: the ActiveList was read whole (gone was checked)
    drifted_keys: list[str] = field(default_factory=list)
    gone_keys: list[str] = field(default_factory=list)


@dataclass
class PullResult:
    platform: str
    accounts: list[AccountPull]
    seconds: float

    def total(self, name: str) -> int:
        return sum(int(getattr(a, name)) for a in self.accounts)


BASE_PULLED = {
    "account_id": pl.String,
    "item_id": pl.Int64,
    "asin": pl.String,
    "price_jpy": pl.Int64,
    "stock": pl.Int64,
    "visible": pl.Boolean,
    "title": pl.String,
    "identifier": pl.String,
    "has_variations": pl.Boolean,  # BASE sums the variations' stock into `stock`
}
EBAY_PULLED = {
    "account_id": pl.String,
    "sku": pl.String,
    "offer_id": pl.String,
    "listing_id": pl.String,
    "asin": pl.String,
    "price_cents": pl.Int64,
    "currency": pl.String,
    "quantity": pl.Int64,
    "api": pl.String,
    "status": pl.String,
}


def asin_from_field(item: dict[str, Any], field_name: str) -> str | None:
    value = item.get(field_name)
    if not isinstance(value, str):
        return None
    value = value.strip().upper()
    return value if _ASIN.match(value) else None


def asin_from_sku(sku: str, pattern: str) -> str | None:
    match = re.search(pattern, sku)
    if match is None:
        return None
    value = match.groupdict().get("asin") or match.group(0)
    return value if _ASIN.match(value) else None


def base_rows(account: Account, items: list[dict[str, Any]]) -> tuple[pl.DataFrame, int]:
    """BASE items → rows for listings_base, and how many had no ASIN or no usable price."""
    rows, unmapped = [], 0
    for item in items:
        asin = asin_from_field(item, account.asin_field)
        price, stock = item.get("price"), item.get("stock")
        if (
            asin is None
            or not isinstance(price, int)
            or price <= 0
            or not isinstance(stock, int)
            or stock < 0
        ):
            unmapped += 1
            continue
        rows.append(
            {
                "account_id": account.id,
                "item_id": int(item["item_id"]),
                "asin": asin,
                "price_jpy": price,  # JPY, tax included
                "stock": stock,
                "visible": bool(item.get("visible", 1)),
                "title": item.get("title"),
                "identifier": item.get("identifier"),
                "has_variations": bool(item.get("variations")),
            }
        )
    frame = pl.DataFrame(rows, schema=BASE_PULLED).unique("item_id", keep="first")
    return frame, unmapped


def trading_rows(
    account: Account,
    active: ActiveList,
    inventory_skus: set[str],
    inventory_listing_ids: set[str],
) -> tuple[list[dict[str, Any]], int, int]:
    """GetMyeBaySelling listings the Inventory API did not show → rows with ``api =
    trading``; how many such listings there were, and how many of them had no SKU, no ASIN
    in the SKU, no fixed price or no quantity (unmapped)."""
    rows, seen, unmapped = [], 0, 0
    for listing in active.listings:
        if listing.item_id in inventory_listing_ids or (listing.sku or "") in inventory_skus:
            continue  # an Inventory-API listing: the Inventory API's view of it wins
        seen += 1
        asin = asin_from_sku(listing.sku, account.sku_pattern) if listing.sku else None
        if (
            asin is None
            or not listing.fixed_price
            or listing.price_cents is None
            or listing.quantity is None
            or (listing.currency or "USD") != "USD"
        ):
            unmapped += 1
            continue
        rows.append(
            {
                "account_id": account.id,
                "sku": listing.sku,
                "offer_id": None,
                "listing_id": listing.item_id,
                "asin": asin,
                "price_cents": listing.price_cents,  # US cents
                "currency": listing.currency or "USD",
                "quantity": listing.quantity,  # QuantityAvailable
                "api": "trading",
                "status": "listed",  # the ActiveList holds active listings only
            }
        )
    return rows, seen, unmapped


def _merge(
    con: duckdb.DuckDBPyConnection,
    platform: str,
    account_id: str,
    frame: pl.DataFrame,
    present: pl.DataFrame | None = None,
    trading_complete: bool = False,
) -> tuple[dict[str, list[str]], list[str]]:
    """Classify, update, insert and mark gone in one transaction; kinds → keys, gone keys.
    eBay: ``present`` holds the pulled SKUs and every SKU of the ActiveList (mapped or
    not), so only a listing missing from both is gone; Trading ones only when
    ``trading_complete``."""
    key = "item_id" if platform == "base" else "sku"
    params: dict[str, Any] = {"account_id": account_id}
    gone_params = dict(params)
    con.register("pulled", frame.to_arrow())
    if platform == "ebay":
        con.register(
            "present", (present if present is not None else frame.select("sku")).to_arrow()
        )
        gone_params["trading_complete"] = trading_complete
    try:
        cursor = run_sql(con, f"pull/classify_{platform}", params)
        classified = pl.DataFrame(
            cursor.fetchall(), schema=[d[0] for d in cursor.description], orient="row"
        )
        con.register("classified", classified.to_arrow())
        with transaction(con):
            run_sql(con, f"pull/merge_{platform}", params)
            run_sql(con, f"pull/insert_{platform}")
            gone_rows = run_sql(con, f"pull/gone_{platform}", gone_params).fetchall()
            gone = [str(r[0]) for r in gone_rows]
    finally:
        for name in ("classified", "pulled", "present"):
            with contextlib.suppress(duckdb.Error):  # never registered: classify failed first
                con.unregister(name)
    kinds: dict[str, list[str]] = {"new": [], "drifted": [], "changed": [], "same": []}
    if len(classified):
        for value, kind in zip(classified[key], classified["kind"], strict=True):
            kinds[kind].append(str(value))
    return kinds, gone


def _account_result(
    platform: str,
    account_id: str,
    seen: int,
    unmapped: int,
    kinds: dict[str, list[str]],
    gone: list[str],
    calls: int,
) -> AccountPull:
    return AccountPull(
        platform=platform,
        account_id=account_id,
        seen=seen,
        inserted=len(kinds["new"]),
        updated=len(kinds["changed"]) + len(kinds["drifted"]),
        unchanged=len(kinds["same"]),
        drifted=len(kinds["drifted"]),
        gone=len(gone),
        unmapped=unmapped,
        calls=calls,
        drifted_keys=sorted(kinds["drifted"])[:SAMPLE],
        gone_keys=sorted(gone)[:SAMPLE],
    )


def pull_base(ws: Workspace, con: duckdb.DuckDBPyConnection, account: Account) -> AccountPull:
    budget = base_budget(ws, con, account.id)
    client: BaseShopClient = base_client(ws, account, before_call=_budget_guard(budget, account.id))
    try:
        items = list(client.items())  # every page first: a half-read shop marks nothing gone
    finally:
        budget.flush()
        calls = client.calls
    frame, unmapped = base_rows(account, items)
    kinds, gone = _merge(con, "base", account.id, frame)
    return _account_result("base", account.id, len(items), unmapped, kinds, gone, calls)


def _budget_guard(budget: Any, account_id: str) -> Any:
    from pipeline.clients.thebase import BaseLimitReached

    def spend(operation: str) -> None:
        try:
            budget.spend(operation)
        except BudgetSpent as exc:
            raise BaseLimitReached(
                f"BASE shop {account_id} has used its {exc.window_kind}ly budget of "
                f"{exc.limit} calls (load.base_calls_per_{exc.window_kind}); pull again in the "
                f"next {exc.window_kind}.",
                code=f"budget_{exc.window_kind}",
                http_status=None,
            ) from None

    return spend


def pull_ebay(ws: Workspace, con: duckdb.DuckDBPyConnection, account: Account) -> AccountPull:
    client: EbayClient = ebay_client(ws, account)
    rows, unmapped, seen = [], 0, 0
    inventory_skus: set[str] = set()
    inventory_listing_ids: set[str] = set()
    try:
        # Trading first: its daily call limit is the tighter one, so a pull it would stop
        # stops before spending Inventory calls
        active = client.active_listings()
        for item in client.inventory_items():
            seen += 1
            sku = str(item.get("sku") or "")
            inventory_skus.add(sku)
            asin = asin_from_sku(sku, account.sku_pattern) if sku else None
            if asin is None:
                unmapped += 1
                continue
            ship = ((item.get("availability") or {}).get("shipToLocationAvailability") or {}).get(
                "quantity"
            )
            offers = [o for o in client.offers(sku) if o.offer_id]
            inventory_listing_ids.update(o.listing_id for o in offers if o.listing_id)
            # the live listing, else (a draft only) the first offer, read as unlisted
            live = published_offer(offers)
            offer = live or (offers[0] if offers else None)
            if offer is not None and offer.ended:
                # its listing ended (sold out without out-of-stock control, or by hand): no
                # revision reaches it again, so it is left out and marked gone below
                continue
            if offer is None or offer.price_cents is None or offer.price_cents <= 0:
                unmapped += 1
                continue
            quantities = [q for q in (offer.quantity, ship) if isinstance(q, int)]
            rows.append(
                {
                    "account_id": account.id,
                    "sku": sku,
                    "offer_id": offer.offer_id,
                    "listing_id": offer.listing_id,
                    "asin": asin,
                    "price_cents": offer.price_cents,  # US cents
                    "currency": offer.currency or "USD",
                    # what a buyer can buy: the smaller of the offer's and the item's quantity
                    "quantity": min(quantities) if quantities else 0,
                    "api": "inventory",
                    "status": "listed" if offer is live else "unlisted",
                }
            )
    finally:
        calls = client.calls
    traded, trading_seen, trading_unmapped = trading_rows(
        account, active, inventory_skus, inventory_listing_ids
    )
    frame = pl.DataFrame(rows + traded, schema=EBAY_PULLED).unique("sku", keep="first")
    # on eBay still: what we pulled, and every active listing (even one left unmapped)
    present = pl.DataFrame(
        {"sku": sorted(set(frame["sku"]) | {x.sku for x in active.listings if x.sku})},
        schema={"sku": pl.String},
    )
    kinds, gone = _merge(con, "ebay", account.id, frame, present, active.complete)
    result = _account_result(
        "ebay",
        account.id,
        seen + trading_seen,
        unmapped + trading_unmapped,
        kinds,
        gone,
        calls,
    )
    result.trading = trading_seen
    result.trading_complete = active.complete
    return result


def run(
    ws: Workspace, con: duckdb.DuckDBPyConnection, platform: str, account: str | None = None
) -> PullResult:
    """Pull every account of ``platform`` (or just ``account``) into the listing tables."""
    if platform not in PLATFORMS:
        raise UsageError(f"--platform must be base or ebay, not {platform!r}.")
    started = time.monotonic()
    if account is not None:
        chosen = ws.settings.account(account)
        if chosen.platform != platform:
            raise UsageError(
                f"Account {account!r} is a {chosen.platform} account, not {platform}; "
                f"use --platform {chosen.platform}."
            )
        accounts = [chosen]
    else:
        accounts = ws.settings.accounts_on(platform)
    results = []
    for acct in accounts:
        pulled = pull_base(ws, con, acct) if platform == "base" else pull_ebay(ws, con, acct)
        results.append(pulled)
    return PullResult(platform, results, time.monotonic() - started)
