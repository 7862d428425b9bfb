"""``invsync listings pull``: refresh the listing tables from BASE and eBay.

Stage: listings (before extract). Reads: BASE ``GET /1/items`` (paged by 100); eBay
Trading ``GetMyeBaySelling`` (the ActiveList, 200 per page), ``getInventoryItems``
(following ``next``) and ``getOffers?sku=`` per SKU; the listing tables and the ``sent`` rows
of ``push_journal``. Writes: ``listings_base`` / ``listings_ebay``, ``listings_unmapped`` and
the ``sent`` journal rows it finds applied — one transaction per account, so a failed pull
changes nothing for that account; and one log line per account (``invsync.listings``).

Each listing is mapped to its ASIN by the account's ``asin_field`` (a BASE item field,
``identifier`` by default) or ``sku_pattern`` (a regex over the eBay SKU; the ``asin``
group, else the whole match). eBay listings come from two APIs: the Inventory API shows the
listings it created (``api = inventory``); ``GetMyeBaySelling`` lists every active listing,
and those whose SKU (and ItemID) the Inventory API did not show are ``api = trading`` — the
Inventory API wins.
The pull reports (one log line per account, :func:`account_sentence`; the sync summary's
:func:`summary_sentence`; ``invsync listings show`` lists them):

* **gone** — ours, but no longer on the platform (status ``gone``), judged only from the ids
  the platform returned. A Trading listing is gone when a complete ActiveList no longer has
  it; when the list could not be read whole (eBay's 25,000-item cap, or listings starting or
  ending between pages) no Trading listing is marked gone that time;
* **unmapped** — returned by the platform but not mappable: no ASIN in the field or SKU,
  no usable price, stock or quantity. Recorded with id and reason in ``listings_unmapped``
  (replaced per account pull); our row of such a listing keeps its values with status
  ``unmapped`` (out of extract and transform) until a pull maps it again;
* **drifted** — price or stock on the platform differs from what we last pushed or pulled:
  changed by hand. ``drift_detected_at`` is set so the review gate holds changes to them;
  a confirmed push clears it. Rows last written by an import are updated, not flagged.
  A listing whose platform shows the new values of its latest ``sent`` journal row (a crash
  lost the push's answer) is our own change: recorded as a push and the row settled ``ok``;
* **hidden by hand** — a BASE item hidden that invsync did not hide becomes ``unlisted`` (the
  seller's choice, out of the sync). One invsync hid (``hidden_by_invsync``, set by the
  confirmed push) stays ``listed`` with ``visible`` false, so the transform restocks it.

A BASE item with ``variations`` is recorded with ``has_variations``: BASE sets its stock to
the sum of the variations' stock, so the push sends it price and visibility only.
"""

from __future__ import annotations

import contextlib
import logging
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
from pipeline.platforms import DISPLAY_NAMES as DISPLAY
from pipeline.platforms import PLATFORMS
from pipeline.schemas import ASIN_PATTERN, MAX_PRICE_CENTS, MAX_PRICE_JPY, MAX_QUANTITY
from pipeline.sql import run_sql
from pipeline.warehouse import transaction

_ASIN = re.compile(ASIN_PATTERN)
SAMPLE = 10  # keys kept per report list
log = logging.getLogger("invsync.listings")


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
    settled: int = 0  # `sent` journal rows the platform shows applied: settled ok
    hidden_by_hand: int = 0  # listed BASE items (or eBay offers) now hidden: unlisted
    # eBay, budgeted runs: listed SKUs whose offer was not read (their ASIN not observed)
    offers_deferred: int = 0
    drifted_keys: list[str] = field(default_factory=list)
    gone_keys: list[str] = field(default_factory=list)
    unmapped_keys: list[str] = field(default_factory=list)


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
UNMAPPED = {"listing_key": pl.String, "reason": pl.String, "title": pl.String}
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


def unmapped_row(key: Any, reason: str, title: Any = None) -> dict[str, Any]:
    """One ``listings_unmapped`` entry: the listing's id, why it has no place in the sync."""
    return {
        "listing_key": str(key),
        "reason": reason,
        "title": title if isinstance(title, str) else None,
    }


def base_reason(item: dict[str, Any], asin: str | None) -> str | None:
    """Why a BASE item cannot be synced (None: it can)."""
    price, stock = item.get("price"), item.get("stock")
    if asin is None:
        return "no_asin"
    if not isinstance(price, int) or price <= 0:
        return "no_price"
    if not isinstance(stock, int) or stock < 0:
        return "no_stock"
    return out_of_range(price, stock, MAX_PRICE_JPY)


def out_of_range(price: int, quantity: int | None, max_price: int) -> str | None:
    """``out_of_range`` when a price or quantity is beyond what the pricing SQL holds (the
    import's bounds, :mod:`pipeline.schemas`): one such listing would stop every transform."""
    if price > max_price or (quantity is not None and quantity > MAX_QUANTITY):
        return "out_of_range"
    return None


def base_rows(
    account: Account, items: list[dict[str, Any]]
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """BASE items → rows for listings_base, and the unmapped ones (no ASIN, no usable price
    or stock) as :func:`unmapped_row` entries."""
    rows, unmapped = [], []
    for item in items:
        asin = asin_from_field(item, account.asin_field)
        reason = base_reason(item, asin)
        if reason is not None:
            unmapped.append(unmapped_row(item["item_id"], reason, item.get("title")))
            continue
        rows.append(
            {
                "account_id": account.id,
                "item_id": int(item["item_id"]),
                "asin": asin,
                "price_jpy": item["price"],  # JPY, tax included
                "stock": item["stock"],
                "visible": bool(item.get("visible", 1)),
                "title": item.get("title"),
                "identifier": item.get("identifier"),
                "has_variations": bool(item.get("variations")),
            }
        )
    frame = pl.DataFrame(rows, schema=BASE_PULLED).unique("item_id", keep="first")
    return frame, unmapped


def trading_reason(listing: Any, asin: str | None) -> str | None:
    """Why a Trading listing cannot be synced (None: it can)."""
    if not listing.sku:
        return "no_sku"
    if asin is None:
        return "no_asin"
    if not listing.fixed_price:
        return "not_fixed_price"
    if listing.price_cents is None:
        return "no_price"
    if listing.quantity is None:
        return "no_quantity"
    if (listing.currency or "USD") != "USD":
        return "not_usd"
    return out_of_range(listing.price_cents, listing.quantity, MAX_PRICE_CENTS)


def trading_rows(
    account: Account,
    active: ActiveList,
    inventory_skus: set[str],
    inventory_listing_ids: set[str],
) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
    """GetMyeBaySelling listings the Inventory API did not show → rows with ``api =
    trading``; how many such listings there were, and the unmapped ones (no SKU — keyed by
    ItemID —, no ASIN in the SKU, no fixed price, no quantity, not USD)."""
    rows, seen, unmapped = [], 0, []
    for listing in active.listings:
        if listing.item_id in inventory_listing_ids or (listing.sku or "") in inventory_skus:
            continue  # an Inventory-API listing: the Inventory API's view of it wins
        seen += 1
        asin = asin_from_sku(listing.sku, account.sku_pattern) if listing.sku else None
        reason = trading_reason(listing, asin)
        if reason is not None:
            unmapped.append(unmapped_row(listing.sku or listing.item_id, reason))
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


@dataclass
class Merged:
    """What one account's merge did: keys per classification kind, and the listings that
    left the sync or came back to it."""

    kinds: dict[str, list[str]]
    gone: list[str]
    unmapped: list[str]  # listings_unmapped keys of this pull
    settled: int  # `sent` journal rows settled ok
    hidden_by_hand: int


def _classify(
    con: duckdb.DuckDBPyConnection, platform: str, params: dict[str, Any]
) -> pl.DataFrame:
    """``sql/pull/classify_<platform>.sql`` as a frame with fixed types (a column of nulls
    keeps its type when registered)."""
    key = "item_id" if platform == "base" else "sku"
    schema = {
        "account_id": pl.String,
        key: pl.Int64 if platform == "base" else pl.String,
        "kind": pl.String,
        "listing_key": pl.String,
        "sent_run_id": pl.String,
        "sent_change_id": pl.String,
        "hidden_by_push": pl.Boolean,
        "hidden_by_hand": pl.Boolean,
    }
    cursor = run_sql(con, f"pull/classify_{platform}", params)
    names = [d[0] for d in cursor.description]
    frame = pl.DataFrame(cursor.fetchall(), schema=names, orient="row")
    return frame.cast(schema).select(list(schema))  # type: ignore[arg-type]


def _merge(
    con: duckdb.DuckDBPyConnection,
    platform: str,
    account_id: str,
    frame: pl.DataFrame,
    present: pl.DataFrame,
    unmapped: list[dict[str, Any]],
    trading_complete: bool = False,
) -> Merged:
    """Classify, update, insert, settle confirmed ``sent`` journal rows, record the unmapped
    and mark gone in one transaction. ``present`` holds every key the platform returned
    (mapped or not; eBay: the pulled SKUs and every SKU of the ActiveList), so only a
    listing missing from it is gone; eBay Trading ones only when ``trading_complete``."""
    params: dict[str, Any] = {"account_id": account_id}
    gone_params = dict(params)
    if platform == "ebay":
        gone_params["trading_complete"] = trading_complete
    con.register("pulled", frame.to_arrow())
    con.register("present", present.to_arrow())
    unmapped_frame = pl.DataFrame(unmapped, schema=UNMAPPED).unique(
        "listing_key", maintain_order=True
    )
    con.register("unmapped", unmapped_frame.to_arrow())
    try:
        classified = _classify(con, platform, params)
        con.register("classified", classified.to_arrow())
        with transaction(con):
            run_sql(con, f"pull/merge_{platform}", params)
            run_sql(con, f"pull/insert_{platform}")
            settled = run_sql(con, "pull/settle_sent", {**params, "platform": platform}).fetchall()
            run_sql(con, "pull/unmapped_clear", {**params, "platform": platform})
            run_sql(con, "pull/unmapped_replace", {**params, "platform": platform})
            run_sql(con, f"pull/unmapped_{platform}", params)
            gone_rows = run_sql(con, f"pull/gone_{platform}", gone_params).fetchall()
    finally:
        for name in ("classified", "pulled", "present", "unmapped"):
            with contextlib.suppress(duckdb.Error):  # never registered: classify failed first
                con.unregister(name)
    kinds: dict[str, list[str]] = {k: [] for k in ("new", "pushed", "drifted", "changed", "same")}
    for value, kind in zip(classified["listing_key"], classified["kind"], strict=True):
        kinds[kind].append(str(value))
    return Merged(
        kinds=kinds,
        gone=[str(r[0]) for r in gone_rows],
        unmapped=unmapped_frame["listing_key"].to_list(),
        settled=len(settled),
        hidden_by_hand=int(classified["hidden_by_hand"].fill_null(False).sum()),
    )


def _account_result(
    platform: str, account_id: str, seen: int, merged: Merged, calls: int
) -> AccountPull:
    kinds = merged.kinds
    return AccountPull(
        platform=platform,
        account_id=account_id,
        seen=seen,
        inserted=len(kinds["new"]),
        updated=len(kinds["changed"]) + len(kinds["drifted"]) + len(kinds["pushed"]),
        unchanged=len(kinds["same"]),
        drifted=len(kinds["drifted"]),
        gone=len(merged.gone),
        unmapped=len(merged.unmapped),
        calls=calls,
        settled=merged.settled,
        hidden_by_hand=merged.hidden_by_hand,
        drifted_keys=sorted(kinds["drifted"])[:SAMPLE],
        gone_keys=sorted(merged.gone)[:SAMPLE],
        unmapped_keys=sorted(merged.unmapped)[:SAMPLE],
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
    # every item BASE returned, mapped or not: only an id BASE no longer returns is gone
    present = pl.DataFrame(
        {"item_id": sorted({int(item["item_id"]) for item in items})}, schema={"item_id": pl.Int64}
    )
    merged = _merge(con, "base", account.id, frame, present, unmapped)
    return _account_result("base", account.id, len(items), merged, calls)


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


def _deferrable(con: duckdb.DuckDBPyConnection, account_id: str) -> dict[str, tuple[str, str]]:
    """SKU → (ASIN, eBay listing id) of the account's listed Inventory-API listings whose
    offer an earlier pull read: the ones whose offer read a budgeted run may defer."""
    rows = con.execute(
        "select sku, asin, listing_id from listings_ebay where account_id = $a"
        " and api = 'inventory' and status = 'listed' and offer_id is not null"
        " and listing_id is not null",
        {"a": account_id},
    ).fetchall()
    return {str(sku): (str(asin), str(listing)) for sku, asin, listing in rows}


def pull_ebay(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    read_asins: frozenset[str] | None = None,
) -> AccountPull:
    """One eBay account's listings: the Trading ActiveList and every inventory item, then
    each SKU's offers (``getOffers``, one call per SKU: the pull's long part).

    ``read_asins`` (a budgeted run: the ASINs it observes) defers the offer read of a SKU
    whose ASIN is not among them when an earlier pull read its offer and its listing is
    still in the ActiveList: its row stays as that pull left it (a run decides nothing new
    for an ASIN it did not observe, and a change it still sends to such a listing is read
    back first: :func:`pipeline.load.ebay_push.unread_listings`). New SKUs, SKUs whose ASIN
    moved and listings missing from the ActiveList (ended?) are always read."""
    client: EbayClient = ebay_client(ws, account)
    rows: list[dict[str, Any]] = []
    unmapped: list[dict[str, Any]] = []
    seen = 0
    inventory_skus: set[str] = set()
    inventory_listing_ids: set[str] = set()
    deferred: set[str] = set()
    known = _deferrable(con, account.id) if read_asins is not None else {}
    try:
        # Trading first: its daily call limit is the tighter one, so a pull it would stop
        # stops before spending Inventory calls
        active = client.active_listings()
        active_ids = {x.item_id for x in active.listings}
        for item in client.inventory_items():
            seen += 1
            sku = str(item.get("sku") or "")
            inventory_skus.add(sku)
            title = (item.get("product") or {}).get("title")
            asin = asin_from_sku(sku, account.sku_pattern) if sku else None
            if asin is None:
                unmapped.append(unmapped_row(sku, "no_asin" if sku else "no_sku", title))
                continue
            ship = ((item.get("availability") or {}).get("shipToLocationAvailability") or {}).get(
                "quantity"
            )
            earlier = known.get(sku)
            if (
                read_asins is not None
                and asin not in read_asins
                and earlier is not None
                and earlier[0] == asin
                and earlier[1] in active_ids
            ):
                deferred.add(sku)
                inventory_listing_ids.add(earlier[1])
                continue
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
                unmapped.append(
                    unmapped_row(sku, "no_offer" if offer is None else "no_price", title)
                )
                continue
            quantities = [q for q in (offer.quantity, ship) if isinstance(q, int)]
            quantity = min(quantities) if quantities else 0
            beyond = out_of_range(offer.price_cents, quantity, MAX_PRICE_CENTS)
            if beyond is not None:
                unmapped.append(unmapped_row(sku, beyond, title))
                continue
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
                    "quantity": quantity,
                    "api": "inventory",
                    "status": "listed" if offer is live else "unlisted",
                }
            )
    finally:
        calls = client.calls
    traded, trading_seen, trading_unmapped = trading_rows(
        account, active, inventory_skus, inventory_listing_ids
    )
    unmapped += trading_unmapped
    frame = pl.DataFrame(rows + traded, schema=EBAY_PULLED).unique("sku", keep="first")
    # on eBay still: what we pulled, what we could not map, and every active listing
    returned = set(frame["sku"]) | {u["listing_key"] for u in unmapped} | deferred
    present = pl.DataFrame(
        {"sku": sorted(returned | {x.sku for x in active.listings if x.sku})},
        schema={"sku": pl.String},
    )
    merged = _merge(con, "ebay", account.id, frame, present, unmapped, active.complete)
    result = _account_result("ebay", account.id, seen + trading_seen, merged, calls)
    result.trading = trading_seen
    result.trading_complete = active.complete
    result.offers_deferred = len(deferred)
    return result


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    platform: str,
    account: str | None = None,
    *,
    read_asins: frozenset[str] | None = None,
) -> PullResult:
    """Pull every account of ``platform`` (or just ``account``) into the listing tables
    (``read_asins``: eBay offers read only for these ASINs where :func:`pull_ebay` may)."""
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
        pulled = (
            pull_base(ws, con, acct)
            if platform == "base"
            else pull_ebay(ws, con, acct, read_asins=read_asins)
        )
        left = pulled.gone + pulled.unmapped + pulled.hidden_by_hand
        log.log(logging.WARNING if left else logging.INFO, "%s", account_sentence(pulled))
        results.append(pulled)
    return PullResult(platform, results, time.monotonic() - started)


# --- what the pull reports ------------------------------------------------------------------

REPORTED = ("gone", "unmapped", "drifted")  # what `invsync listings show` lists by default


def show_command(accounts: list[AccountPull]) -> str:
    """The ``invsync listings show`` command that lists what ``accounts`` reported: one kind
    named by its flag, one account by ``--account``."""
    kinds = [kind for kind in REPORTED if any(getattr(a, kind) for a in accounts)]
    parts = ["invsync listings show"]
    if len(kinds) == 1:
        parts.append(f"--{kinds[0]}")
    if len({a.account_id for a in accounts}) == 1:
        parts.append(f"--account {accounts[0].account_id}")
    return " ".join(parts)


def _counts(acct: AccountPull) -> str:
    text = f"{acct.gone} gone, {acct.unmapped} unmapped, {acct.drifted} drifted"
    if acct.hidden_by_hand:
        text += f", {acct.hidden_by_hand} hidden by hand (now unlisted)"
    if acct.settled:
        text += f", {acct.settled} sent change(s) found applied (journal ok)"
    return text


def account_sentence(acct: AccountPull) -> str:
    """One account's pull in a line: the counts of gone, unmapped and drifted listings and,
    when any, the command that lists them (the log line of each account's pull)."""
    line = f"{DISPLAY[acct.platform]} {acct.account_id}: {_counts(acct)}"
    if any(getattr(acct, kind) for kind in REPORTED):
        line += f"; list them with `{show_command([acct])}`"
    if acct.hidden_by_hand:
        line += (
            f"; the hidden ones with `invsync listings show --unlisted --account {acct.account_id}`"
        )
    return line + "."


def summary_sentence(results: list[PullResult]) -> str | None:
    """The pulls of a run in one sentence for the sync summary: totals of gone, unmapped and
    drifted listings, the accounts that had any, and the command that lists them. None when
    no account was pulled."""
    accounts = [a for r in results for a in r.accounts]
    if not accounts:
        return None
    totals = {kind: sum(int(getattr(a, kind)) for a in accounts) for kind in REPORTED}
    head = ", ".join(f"{n} {kind}" for kind, n in totals.items())
    noted = [a for a in accounts if any(getattr(a, k) for k in (*REPORTED, "hidden_by_hand"))]
    if not noted:
        return f"Listings pulled from {len(accounts)} account(s): {head}."
    detail = "; ".join(f"{a.account_id}: {_counts(a)}" for a in noted)
    line = f"Listings pulled from {len(accounts)} account(s): {head} ({detail})"
    if any(totals.values()):
        line += f"; list them with `{show_command(noted)}`"
    if any(a.hidden_by_hand for a in noted):
        line += "; the hidden ones with `invsync listings show --unlisted`"
    return line + "."
