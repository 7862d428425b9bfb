"""BASE push: one ``items/edit`` per changed item, each journaled ``sent`` before its call.

Stage: load. Reads one shop's open journal rows (given), its items with variations
(``listings_base.has_variations``), BASE ``items/detail`` (read-back and confirming a
``bad_item_id``) and the call budget (``api_call_windows``). Writes each row's outcome to
``push_journal`` and, through :mod:`pipeline.journal`, ``listings_base``. Stops the shop
early on its hourly or daily limit (rows stay ``pending``), an auth error, or a call with
no answer (BASE unavailable before the first edit: rows stay ``pending``).

An item with variations takes price and visibility only: BASE sets its stock to the sum of
the variations' stock (base_api_v1_items_edit.md). Where the row would take it out of stock
(Amazon cannot supply, or a protective pause) it is hidden (``visible`` 0) so nobody buys
what cannot be sourced; a stock change alone is skipped (``base_variations``) with no call.
An item found to have variations only in the edit's answer is treated the same way.

A confirmed push that leaves an item hidden marks it hidden by invsync
(``listings_base.hidden_by_invsync``, ``sql/load/listing_pushed_base.sql``): the next listing
pull keeps it ``listed``, so a restock shows it again; one hidden by hand leaves the sync.
"""

from __future__ import annotations

import secrets as random_ids
from collections.abc import Callable
from typing import Any

import duckdb

from pipeline import journal
from pipeline.clients import thebase
from pipeline.clients.factory import base_client
from pipeline.clients.http import TransientApiError
from pipeline.config import Account, Workspace
from pipeline.interrupt import StopRequest
from pipeline.journal import RowResult
from pipeline.load.budget import BudgetSpent, base_budget
from pipeline.load.outcome import AccountLoad, leave_pending
from pipeline.load.readback import (
    Gone,
    SeenListing,
    needs_reading_back,
    read_back_result,
    sends_visible,
    shows,
)
from pipeline.sql import run_sql

GONE = Gone(400, "bad_item_id", "the item no longer exists on BASE (confirmed by items/detail)")
VARIATIONS = "base_variations"  # skipped: a stock change to an item with variations


def variation_row(row: dict[str, Any], stock: int | None = None) -> dict[str, Any]:
    """The row as it is sent to an item with variations, whose stock BASE sets (the sum of
    the variations'): the stock stays what BASE has (``stock``, else the listing's last
    known one) and visibility stands in for it — hidden where the row takes the item out of
    stock (Amazon cannot supply, or a pause), shown where it restocks a hidden one (the
    transform reads a hidden item with variations as stock 0); the price as the row says."""
    old, new = int(row["old_quantity"]), int(row["new_quantity"])
    if (new == 0 and old > 0) or (row["new_visible"] is False and row["old_visible"] is not False):
        visible = False
    elif (new > 0 and old == 0) or row["new_visible"] is True:
        visible = True
    else:
        visible = row["old_visible"]
    quantity = old if stock is None else stock
    return {**row, "old_quantity": quantity, "new_quantity": quantity, "new_visible": visible}


def has_variations(item: dict[str, Any] | None) -> bool:
    return bool(item and item.get("variations"))


def seen_item(item: dict[str, Any] | None) -> SeenListing | None:
    """An ``items/detail`` or ``items/edit`` answer as a :class:`SeenListing` (None: gone)."""
    if item is None:
        return None
    visible = item.get("visible")
    return SeenListing(
        price_minor=item.get("price") if isinstance(item.get("price"), int) else None,
        quantity=item.get("stock") if isinstance(item.get("stock"), int) else None,
        visible=bool(visible) if visible is not None else None,
    )


def open_shop(
    ws: Workspace, con: duckdb.DuckDBPyConnection, account: Account
) -> tuple[thebase.BaseShopClient, Any, set[int]]:
    """A shop's client, spending the shop's call budget (flush it when done), and the items
    the listing table knows have variations."""
    budget = base_budget(ws, con, account.id)
    client = base_client(ws, account, before_call=budget.spend)
    with_variations = {
        int(r[0])
        for r in run_sql(
            con, "listings/base_variation_items", {"account_id": account.id}
        ).fetchall()
    }
    return client, budget, with_variations


def read_back(
    client: thebase.BaseShopClient, row: dict[str, Any], with_variations: set[int]
) -> RowResult | None:
    """What BASE shows of a row whose push may have landed (``sent``): its result, or None
    when BASE does not show the change (it was not applied; send it). An item with
    variations is compared on price and visibility only."""
    item_id = int(row["listing_key"])
    detail = client.item_detail(item_id)
    seen = seen_item(detail)
    if has_variations(detail) or item_id in with_variations:
        row = variation_row(row, seen.quantity if seen else None)
    return read_back_result(row, seen, platform_name="BASE", gone=GONE)


def push_base(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    rows: list[dict[str, Any]],
    outcome: AccountLoad,
    clean: Callable[[str], str],
    stop: StopRequest | None = None,
) -> None:
    """Push one shop's rows, in order, tallying into ``outcome``."""
    client, budget, with_variations = open_shop(ws, con, account)
    queue = list(rows)
    # Outcomes not yet written: each is committed together with the next row's `sent`
    # mark (or on the way out). A crash in between leaves that row `sent`, which the next
    # load reads back from BASE — the same as a crash right after the call.
    unwritten: list[RowResult] = []

    def write(then_sent: list[dict[str, Any]] | None = None, batch_id: str = "") -> None:
        if unwritten or then_sent:
            journal.record_results(con, unwritten, clean, then_sent=then_sent, batch_id=batch_id)
        for result in unwritten:
            outcome.add(result)
        unwritten.clear()

    try:
        while queue:
            if stop is not None and stop.is_set():
                break  # the row in flight is done; the rest stays pending
            row = queue[0]
            item_id = int(row["listing_key"])
            if needs_reading_back(row):
                result = read_back(client, row, with_variations)
                if result is None:
                    queue[0] = {**queue[0], "state": "pending"}  # not applied: send it now
                    continue
                if result.state == "ok":
                    outcome.reconciled += 1
                unwritten.append(result)
                queue.pop(0)
                continue
            sent = variation_row(row) if item_id in with_variations else row
            if item_id in with_variations and not variation_edit_changes_anything(sent):
                unwritten.append(_variations_skip(row, item_id))
                queue.pop(0)
                continue
            client.ensure_token()  # BASE unavailable now: the rows stay pending, none sent
            write(then_sent=[row], batch_id=f"base-{item_id}-{random_ids.token_hex(4)}")
            try:
                item = _edit(client, item_id, sent, variations=item_id in with_variations)
                if has_variations(item) and item_id not in with_variations:
                    with_variations.add(item_id)
                    sent, item = _found_variations(client, item_id, row, item)
            except thebase.BaseItemRejected as exc:
                result = _rejection(client, row, exc)
            except TransientApiError as exc:
                unwritten.append(
                    RowResult(row, "failed", exc.http_status, "no_answer", exc.message)
                )
                queue.pop(0)
                outcome.stop("transient", exc.message.rstrip("."))
                break
            else:
                result = _echo_result(sent, item)
            unwritten.append(result)
            queue.pop(0)
    except (thebase.BaseLimitReached, BudgetSpent) as exc:
        code = (
            exc.code if isinstance(exc, thebase.BaseLimitReached) else f"budget_{exc.window_kind}"
        )
        window = "hour" if "hour" in code else "day"
        write()
        leave_pending(con, queue, outcome, code, getattr(exc, "http_status", None), None, clean)
        outcome.stop(
            "quota",
            f"BASE shop {account.id} reached its {window}ly API limit ({code}); "
            f"{len(queue)} row(s) stay pending for the next {window}",
        )
    except thebase.BaseAuthError as exc:
        write()
        leave_pending(con, queue, outcome, exc.code, exc.http_status, exc.message, clean)
        outcome.stop("auth", exc.message.rstrip("."))
    except TransientApiError as exc:  # a read-back found no answer either
        write()
        leave_pending(con, queue, outcome, "no_answer", exc.http_status, exc.message, clean)
        outcome.stop("transient", exc.message.rstrip("."))
    finally:
        write()
        budget.flush()
        outcome.calls += client.calls


def seen_quantity(item: dict[str, Any]) -> int | None:
    stock = item.get("stock")
    return stock if isinstance(stock, int) else None


def variation_edit_changes_anything(sent: dict[str, Any]) -> bool:
    """Whether a :func:`variation_row` still changes something BASE takes (price or
    visibility); when not, the row is skipped with no call (the load and its dry run)."""
    return sent["new_price_minor"] != sent["old_price_minor"] or sends_visible(sent)


def _variations_skip(row: dict[str, Any], item_id: int) -> RowResult:
    return RowResult(
        row,
        "skipped",
        None,
        VARIATIONS,
        f"BASE item {item_id} has variations, whose stock BASE sums into the item's, so "
        "invsync sends it price and visibility only and here neither changes; set the "
        "variations' stock on BASE if it should change",
    )


def _edit(
    client: thebase.BaseShopClient, item_id: int, sent: dict[str, Any], *, variations: bool
) -> dict[str, Any]:
    """One ``items/edit``: price, stock (never for an item with variations) and the
    visibility when the row changes it."""
    return client.edit_item(
        item_id,
        price=int(sent["new_price_minor"]),
        stock=None if variations else int(sent["new_quantity"]),
        visible=sent["new_visible"] if sends_visible(sent) else None,
    )


def _found_variations(
    client: thebase.BaseShopClient, item_id: int, row: dict[str, Any], item: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """BASE's answer shows variations we did not know of: the item's stock is theirs, and
    one the row takes out of stock must not stay buyable, so it is hidden by a second
    ``items/edit``. Returns the row as sent and BASE's last answer."""
    sent = variation_row(row, seen_quantity(item))
    if sent["new_visible"] is False and item.get("visible") != 0:
        item = _edit(client, item_id, sent, variations=True)
    return sent, item


def _echo_result(sent: dict[str, Any], item: dict[str, Any]) -> RowResult:
    """ok when BASE's answer shows what was sent (the row recorded is ``sent``: for an item
    with variations, the stock BASE keeps), else echo_mismatch."""
    if has_variations(item):
        sent = variation_row(sent, seen_quantity(item))
    echo = seen_item(item)
    if echo is not None and shows(echo, sent, "new"):
        return RowResult(sent, "ok", 200, None, None)
    return RowResult(
        sent,
        "failed",
        200,
        "echo_mismatch",
        "BASE answered items/edit with other values than the ones sent",
    )


def _rejection(
    client: thebase.BaseShopClient, row: dict[str, Any], exc: thebase.BaseItemRejected
) -> RowResult:
    # BASE says the item id is wrong: confirm with items/detail before quarantining,
    # so one odd answer never takes a live listing out of the sync.
    if exc.code == "bad_item_id" and client.item_detail(int(row["listing_key"])) is None:
        return RowResult(
            row,
            "quarantined",
            exc.http_status,
            "bad_item_id",
            "BASE answered bad_item_id and items/detail confirms the item is gone",
        )
    return RowResult(row, "failed", exc.http_status, exc.code, exc.description or exc.code)
