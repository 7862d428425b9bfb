"""BASE push: one ``items/edit`` per changed item, each journaled ``sent`` before its call.

Stage: load. Reads one shop's open journal rows (given), BASE ``items/detail`` (read-back and
confirming a ``bad_item_id``) and the call budget (``api_call_windows``). Writes each row's
outcome to ``push_journal`` and, through :mod:`pipeline.journal`, ``listings_base``.
Stops the shop early on its hourly or daily limit (rows stay ``pending``), an auth error, or
a call with no answer.
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

GONE = Gone(400, "bad_item_id", "the item no longer exists on BASE (confirmed by items/detail)")


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
    budget = base_budget(ws, con, account.id)
    client = base_client(ws, account, before_call=budget.spend)
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
                seen = seen_item(client.item_detail(item_id))
                result = read_back_result(row, seen, platform_name="BASE", gone=GONE)
                if result is None:
                    queue[0] = {**row, "state": "pending"}  # not applied: send it now
                    continue
                if result.state == "ok":
                    outcome.reconciled += 1
                unwritten.append(result)
                queue.pop(0)
                continue
            write(then_sent=[row], batch_id=f"base-{item_id}-{random_ids.token_hex(4)}")
            try:
                item = client.edit_item(
                    item_id,
                    price=int(row["new_price_minor"]),
                    stock=int(row["new_quantity"]),
                    visible=row["new_visible"] if sends_visible(row) else None,
                )
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
                echo = seen_item(item)
                if echo is not None and shows(echo, row, "new"):
                    result = RowResult(row, "ok", 200, None, None)
                else:
                    result = RowResult(
                        row,
                        "failed",
                        200,
                        "echo_mismatch",
                        "BASE answered items/edit with other values than the ones sent",
                    )
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
