"""eBay push: Inventory API listings in ``bulk_update_price_quantity`` calls (≤ 25 SKUs),
Trading API listings in ``ReviseInventoryStatus`` calls (≤ 4 listings).

Stage: load. Reads one eBay account's open journal rows (given), eBay's offers and items
(read-back, and the offer id an Inventory listing needs), the revisions each SKU was sent
today (``push_journal``) and the seller's Out-of-Stock Control preference (Trading
``GetUserPreferences``, once per run and account, kept in ``ebay_run_preferences``).
Writes each row's outcome to ``push_journal`` and, through :mod:`pipeline.journal`,
``listings_ebay``. A batch is journaled ``sent`` before its call. Stops the account early
on a quota or auth error or a call with no answer.

Never sent, each ``skipped`` with its reason (a later load sends it once the reason is gone):

* ``oos_control_off`` — quantity 0 (an out-of-stock row or a protective pause) while the
  account's Out-of-Stock Control preference is off: eBay would END the listing, and an ended
  listing takes no later restock. Only ``[pricing.ebay] out_of_stock_action =
  "end_listing"`` sends it anyway;
* ``no_item_id`` — a Trading row without its ItemID: ReviseInventoryStatus finds a listing by
  SKU only when it was listed with ``InventoryTrackingMethod=SKU``, which is not the default.
"""

from __future__ import annotations

import logging
import secrets as random_ids
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from pipeline import journal
from pipeline.clients import ebay as ebay_api
from pipeline.clients.factory import ebay_client, time_scale
from pipeline.clients.http import ThrottledError, TransientApiError
from pipeline.config import Account, Workspace
from pipeline.interrupt import StopRequest
from pipeline.journal import RowResult
from pipeline.load.budget import DAY, HOUR
from pipeline.load.outcome import AccountLoad, leave_pending
from pipeline.load.readback import Gone, SeenListing, needs_reading_back, read_back_result
from pipeline.sql import run_sql

log = logging.getLogger("invsync.load")

PST_OFFSET = -8 * HOUR  # eBay's API day "starts at 00:00:00 PST"
GONE = Gone(
    404,
    "not_found",
    "the listing no longer exists or has ended on eBay (confirmed by reading it back)",
)
OOS_CONTROL_OFF = (
    "not sent: quantity 0 would end this eBay listing because the account's Out-of-Stock "
    "Control preference is off; turn it on (My eBay › Account › Site Preferences › Selling "
    "preferences › Sell Your Item form and listings › Use the out-of-stock option, or the "
    "Trading call SetUserPreferences OutOfStockControlPreference) and a later load sends it, or set [pricing.ebay] "
    'out_of_stock_action = "end_listing" to end such listings'
)
NO_ITEM_ID = (
    "not sent: a Trading listing is revised by its ItemID and this row has none; re-import "
    "the listing with its listing_id (or run invsync listings pull --platform ebay)"
)


def revision_day_start(ws: Workspace) -> datetime:
    """Since when eBay revisions count against today's 250 per listing.

    Live: midnight PST, eBay's API day. Sandbox: one scaled day back from now — we cannot
    see the sandbox's calendar, and a rolling day never counts fewer revisions than the
    calendar day it overlaps, so the cap is never exceeded.
    """
    now = datetime.now(UTC)
    if ws.is_sandbox:
        return now - timedelta(seconds=DAY / time_scale(ws))
    local = now + timedelta(seconds=PST_OFFSET)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(seconds=PST_OFFSET)


def unread_listings(con: duckdb.DuckDBPyConnection, run_id: str, account_id: str) -> set[str]:
    """SKUs of the account's Inventory-API listings that a budgeted run's pull did not read
    (their offer read deferred: :func:`pipeline.listings_pull.pull_ebay`). A change the run
    sends to one is read back first, like a change a crash left unconfirmed: sent when eBay
    still shows the values the run decided from, skipped as drifted otherwise (a sale or a
    hand edit since the listing was last read), so no deferred read overwrites one."""
    rows = con.execute(
        "select l.sku from listings_ebay as l join runs as r on r.run_id = $r"
        " where l.account_id = $a and l.api = 'inventory'"
        " and r.fetch_budget_seconds is not null"
        " and (l.pulled_at is null or l.pulled_at < r.started_at)",
        {"r": run_id, "a": account_id},
    ).fetchall()
    return {str(sku) for (sku,) in rows}


def reads_back(row: dict[str, Any], unread: set[str]) -> bool:
    """Whether a load reads the row's listing back before sending it."""
    return needs_reading_back(row) or (row["api"] == "inventory" and row["listing_key"] in unread)


def push_ebay(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    rows: list[dict[str, Any]],
    outcome: AccountLoad,
    clean: Callable[[str], str],
    stop: StopRequest | None = None,
) -> None:
    """Push one account's rows in batches, tallying into ``outcome``."""
    client = ebay_client(ws, account)
    knobs = ws.settings.load
    remaining = list(rows)

    def settle(results: list[RowResult]) -> None:
        """Record rows decided before any revision call; they leave this load."""
        if results:
            journal.record_results(con, results, clean)
            for result in results:
                outcome.add(result)
                remaining.remove(result.row)

    try:
        # 0. a Trading row without its ItemID cannot be revised (nor read back)
        settle(
            [
                RowResult(row, "skipped", None, "no_item_id", NO_ITEM_ID)
                for row in remaining
                if row["api"] == "trading" and not row["listing_id"]
            ]
        )
        # 1. read back what a crash left unconfirmed, and listings this run did not read
        unread = unread_listings(con, rows[0]["run_id"], account.id) if rows else set()
        to_send: list[dict[str, Any]] = []
        refused: list[RowResult] = []
        for row in list(remaining):
            if not reads_back(row, unread):
                to_send.append(row)
                continue
            try:
                state = read_listing(client, row)
            except ebay_api.EbayRequestRejected as exc:
                refused.append(_refused(row, exc))
                continue
            except ebay_api.ReadBackUnavailable as exc:
                # No way to read this listing back: send it again. The values are absolute,
                # so a second send changes nothing but spends one of the day's revisions.
                log.warning("%s; sending %s again", exc.message.rstrip("."), row["listing_key"])
                to_send.append(row)
                continue
            result = read_back_result(row, state, platform_name="eBay", gone=GONE)
            if result is None:
                to_send.append(row)  # not applied: send it now
                continue
            if result.state == "ok":
                outcome.reconciled += 1
            journal.record_results(con, [result], clean)
            outcome.add(result)
            remaining.remove(row)
        settle(refused)

        # 2. eBay's 250 revisions per listing per day, counted from the journal
        revisions = journal.revisions_since(con, account.id, revision_day_start(ws))
        allowed = []
        capped = []
        for row in to_send:
            if revisions.get(row["listing_key"], 0) >= knobs.ebay_revisions_per_day:
                capped.append(
                    RowResult(
                        row,
                        "skipped",
                        None,
                        "revision_limit",
                        f"eBay allows {knobs.ebay_revisions_per_day} revisions per listing per "
                        "day and this listing has used them; it is sent on a load after the day turns",
                    )
                )
            else:
                allowed.append(row)
        settle(capped)

        # 2b. quantity 0 ends the listing when out-of-stock control is off: never by default
        allowed = _without_unsafe_zeros(ws, con, client, account, allowed, settle)

        # 3. the offer id an inventory listing needs for its price: the PUBLISHED
        # FIXED_PRICE offer (a SKU may also have an unpublished draft, listed first)
        ready = []
        lookups: list[RowResult] = []
        for row in allowed:
            if row["api"] == "inventory" and not row["offer_id"]:
                try:
                    offer = ebay_api.published_offer(client.offers(row["listing_key"]))
                except ebay_api.EbayRequestRejected as exc:
                    lookups.append(_refused(row, exc))
                    continue
                if offer is None:
                    lookups.append(
                        RowResult(
                            row,
                            "failed",
                            404,
                            "no_offer",
                            "eBay has no published fixed-price offer for this SKU",
                        )
                    )
                    continue
                row = {**row, "offer_id": offer.offer_id}
            ready.append(row)
        settle(lookups)

        # 4. the calls: ≤ 25 SKUs per bulk call, ≤ 4 listings per Trading call
        inventory = [r for r in ready if r["api"] == "inventory"]
        trading = [r for r in ready if r["api"] == "trading"]
        batches = [
            ("inventory", inventory[i : i + knobs.ebay_batch_size])
            for i in range(0, len(inventory), knobs.ebay_batch_size)
        ] + [
            ("trading", trading[i : i + knobs.trading_batch_size])
            for i in range(0, len(trading), knobs.trading_batch_size)
        ]
        for api, batch in batches:
            if stop is not None and stop.is_set():
                break  # the call in flight is done; the rest stays pending
            batch_id = f"ebay-{api}-{random_ids.token_hex(6)}"
            journal.mark_sent(con, batch, batch_id)
            targets = [
                ebay_api.PriceQuantity(
                    sku=r["listing_key"],
                    price_cents=int(r["new_price_minor"]),
                    quantity=int(r["new_quantity"]),
                    currency=r["currency"] or "USD",
                    offer_id=r["offer_id"],
                    listing_id=r["listing_id"],
                )
                for r in batch
            ]
            try:
                answers = (
                    client.bulk_update(targets)
                    if api == "inventory"
                    else client.revise_inventory_status(targets)
                )
            except ebay_api.EbayRequestRejected as exc:
                results = [
                    RowResult(r, "failed", exc.http_status, exc.code, exc.description)
                    for r in batch
                ]
            except TransientApiError as exc:
                results = [
                    RowResult(r, "failed", exc.http_status, "no_answer", exc.message) for r in batch
                ]
                journal.record_results(con, results, clean)
                for result in results:
                    outcome.add(result)
                _drop(remaining, batch)
                outcome.stop("transient", exc.message.rstrip("."))
                break
            else:
                results = []
                for r, answer in zip(batch, answers, strict=True):
                    if answer.ok:
                        results.append(
                            RowResult(r, "ok", answer.status or 200, None, None, r["offer_id"])
                        )
                    else:
                        results.append(
                            RowResult(
                                r,
                                "failed",
                                answer.status,
                                answer.code,
                                answer.message,
                                r["offer_id"],
                            )
                        )
            journal.record_results(con, results, clean)
            for result in results:
                outcome.add(result)
            _drop(remaining, batch)
    except (ThrottledError, ebay_api.EbayQuotaError) as exc:
        code = "429" if isinstance(exc, ThrottledError) else exc.code
        leave_pending(
            con, remaining, outcome, code, getattr(exc, "http_status", None), exc.message, clean
        )
        outcome.stop(
            "quota",
            f"eBay account {account.id} kept refusing calls ({code}, too many requests); "
            f"{len(remaining)} row(s) stay pending",
        )
    except ebay_api.EbayAuthError as exc:
        leave_pending(con, remaining, outcome, exc.code, exc.http_status, exc.message, clean)
        outcome.stop("auth", exc.message.rstrip("."))
    except TransientApiError as exc:  # a read-back or an offer lookup found no answer
        leave_pending(con, remaining, outcome, "no_answer", exc.http_status, exc.message, clean)
        outcome.stop("transient", exc.message.rstrip("."))
    finally:
        outcome.calls += client.calls


def _without_unsafe_zeros(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    client: ebay_api.EbayClient,
    account: Account,
    rows: list[dict[str, Any]],
    settle: Callable[[list[RowResult]], None],
) -> list[dict[str, Any]]:
    """``rows`` without the quantity-0 rows eBay would end the listing for: skipped
    (``oos_control_off``) while the account's Out-of-Stock Control is off, unless it chose
    ``end_listing``; left pending when the preference cannot be read now (the Trading quota,
    no answer), so only those rows wait and the rest of the account goes on."""
    zero = [r for r in rows if int(r["new_quantity"]) == 0]
    if not zero or ws.settings.pricing.rule_for(account).out_of_stock_action == "end_listing":
        return rows
    try:
        control = _out_of_stock_control(con, client, account.id, zero)
    except (ebay_api.EbayQuotaError, TransientApiError) as exc:
        why = (
            f"quantity 0 waits: the Out-of-Stock Control preference could not be read "
            f"({exc.message.rstrip('.')}), and without it quantity 0 may end the listing"
        )
        code = exc.code or "no_answer"
        settle([RowResult(r, "pending", exc.http_status, code, why) for r in zero])
        return [r for r in rows if int(r["new_quantity"]) != 0]
    if control:
        return rows
    settle([RowResult(r, "skipped", None, "oos_control_off", OOS_CONTROL_OFF) for r in zero])
    log.warning("eBay account %s: %d quantity-0 row(s) %s", account.id, len(zero), OOS_CONTROL_OFF)
    return [r for r in rows if int(r["new_quantity"]) != 0]


def _refused(row: dict[str, Any], exc: ebay_api.EbayRequestRejected) -> RowResult:
    """eBay refused a read about this row's SKU (e.g. 25707, not a valid eBay SKU): the row
    fails with eBay's code; the rest of the account goes on."""
    return RowResult(row, "failed", exc.http_status, exc.code, exc.description or exc.message)


def _out_of_stock_control(
    con: duckdb.DuckDBPyConnection,
    client: ebay_api.EbayClient,
    account_id: str,
    rows: list[dict[str, Any]],
) -> bool:
    """The account's Out-of-Stock Control preference for this run: read with one
    ``GetUserPreferences`` and kept in ``ebay_run_preferences``. A run that found it on never
    asks again; one that found it off asks once more per load, so turning it on releases
    the held rows at the next load."""
    key = {"run_id": rows[0]["run_id"], "account_id": account_id}
    known = run_sql(con, "load/ebay_preference_read", key).fetchall()
    if known and bool(known[0][0]):
        return True
    control = client.out_of_stock_control()
    run_sql(con, "load/ebay_preference_write", {**key, "out_of_stock_control": control})
    log.info("eBay account %s: out-of-stock control is %s", account_id, "on" if control else "off")
    return control


def _drop(remaining: list[dict[str, Any]], batch: list[dict[str, Any]]) -> None:
    keys = {r["listing_key"] for r in batch}
    remaining[:] = [r for r in remaining if r["listing_key"] not in keys]


def read_listing(client: ebay_api.EbayClient, row: dict[str, Any]) -> SeenListing | None:
    """The listing's state on eBay now (None when eBay no longer has it, or it has ended).
    A Trading row is read by its ItemID only (never through the Inventory API); an Inventory
    row through its PUBLISHED FIXED_PRICE offer."""
    if row["api"] == "trading":
        state = client.trading_item(str(row["listing_id"]))
    else:
        offers = client.offers(row["listing_key"])
        mine = [o for o in offers if row["offer_id"] and o.offer_id == row["offer_id"]]
        state = ebay_api.published_offer(mine or offers)
    if state is None or state.ended:
        return None
    return SeenListing(state.price_cents, state.quantity)
