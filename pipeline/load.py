"""Load: push only the approved, changed rows to BASE and eBay, through the push journal.

Stage: load (Phase 2's last step). Reads: the run's approved diff rows
(:func:`pipeline.review.loadable_rows`), ``push_journal``, the BASE and eBay APIs.
Writes: ``push_journal`` (every row before any call, then each state change),
``listings_base`` / ``listings_ebay`` (confirmed pushes, quarantines, drift marks),
``api_call_windows`` (BASE calls per hour and day), the run's ``runs`` row (pushes,
push_failures, load_seconds) and, for ``--dry-run``, ``loads/run_id=…/dry_run.parquet``.

Calls: one BASE ``items/edit`` per changed item; ``ceil(changed / 25)``
``bulk_update_price_quantity`` calls per eBay account (Trading listings: ``ceil(n / 4)``
``ReviseInventoryStatus``). A row left ``sent`` by a crash (or failed with no usable
answer) is first read back from the platform: if the change is already there it is
recorded ``ok`` without a call, so no change is ever applied twice. docs/load.md has the
states, resume, quotas, quarantine and drift.
"""

from __future__ import annotations

import logging
import secrets as random_ids
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import journal, schemas
from pipeline.clients import ebay as ebay_api
from pipeline.clients import thebase
from pipeline.clients.http import RetryPolicy, ThrottledError, TransientApiError
from pipeline.config import Account, Workspace
from pipeline.errors import (
    ApiAuthError,
    ApiQuotaError,
    ConfigError,
    ExternalApiError,
    HeldForReviewError,
)
from pipeline.interrupt import StopRequest
from pipeline.journal import BudgetSpent, RowResult
from pipeline.redact import redact, secret_values
from pipeline.runs import resolve_run, update_run
from pipeline.tokens import RefreshTokenStore, store_path
from pipeline.warehouse import write_parquet_atomic

log = logging.getLogger("invsync.load")

PLATFORMS = ("base", "ebay")
HOUR = 3600.0  # seconds
DAY = 86400.0  # seconds
JST_OFFSET = 9 * HOUR  # BASE's day turns at midnight in Japan
PST_OFFSET = -8 * HOUR  # eBay's API day "starts at 00:00:00 PST"
PREVIEW_ROWS = 5  # rows shown per account in a dry run


# --- results ---------------------------------------------------------------------------


@dataclass
class AccountLoad:
    """What one load did for one platform account."""

    platform: str
    account_id: str
    rows: int = 0  # rows this load had to work on (not ok before it started)
    ok: int = 0
    failed: int = 0
    quarantined: int = 0
    skipped: int = 0
    pending: int = 0  # left for the next window or run
    reconciled: int = 0  # found already applied on the platform: recorded ok, no call
    calls: int = 0  # HTTP attempts made
    stopped: str | None = None  # why this account stopped early (a sentence)
    stop_kind: str | None = None  # quota | auth | transient
    first_problem: str | None = None  # e.g. "item_id=123 bad_item_id"
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run: the calls

    def add(self, result: RowResult) -> None:
        if result.state == "ok":
            self.ok += 1
        elif result.state == "failed":
            self.failed += 1
        elif result.state == "quarantined":
            self.quarantined += 1
        elif result.state == "skipped":
            self.skipped += 1
        elif result.state == "pending":
            self.pending += 1
        if result.state in ("failed", "quarantined") and self.first_problem is None:
            label = "item_id" if self.platform == "base" else "sku"
            self.first_problem = f"{label}={result.row['listing_key']} {result.error_code}"


@dataclass
class LoadResult:
    run_id: str
    dry_run: bool
    accounts: list[AccountLoad]
    held: dict[str, str]  # platform -> why the review gate holds its whole load
    seconds: float
    plan_path: Path | None = None

    @property
    def failed(self) -> bool:
        return any(a.failed or a.quarantined or a.stopped for a in self.accounts)


# --- clients from the workspace ------------------------------------------------------------


def time_scale(ws: Workspace) -> float:
    """The sandbox runs its clocks this many times faster (1 in live mode)."""
    return ws.settings.sandbox.time_scale if ws.is_sandbox else 1.0


def retry_policy(ws: Workspace) -> RetryPolicy:
    knobs = ws.settings.load
    return RetryPolicy(
        max_attempts=knobs.max_attempts,
        backoff_base=knobs.backoff_base,
        backoff_max=knobs.backoff_max,
        timeout=knobs.http_timeout,
        time_scale=time_scale(ws),
    )


def platform_url(ws: Workspace, name: str, live: str) -> str:
    url = ws.endpoint(name)
    if url:
        return url
    if ws.is_sandbox:
        raise ConfigError(
            f"{name} is not set, and sandbox mode has no default; start "
            "`invsync sandbox serve` and set it to the sandbox's URL, or run `invsync sync`, "
            "which starts one."
        )
    return live


def base_client(
    ws: Workspace, account: Account, before_call: Callable[[str], None] | None = None
) -> thebase.BaseShopClient:
    assert account.refresh_token_env is not None  # Settings require it for BASE accounts
    return thebase.BaseShopClient(
        account_id=account.id,
        api_url=platform_url(ws, "BASE_API_URL", thebase.LIVE_URL),
        credentials=thebase.BaseCredentials(
            client_id=ws.secret("BASE_CLIENT_ID"),
            client_secret=ws.secret("BASE_CLIENT_SECRET"),
            redirect_uri=ws.secret("BASE_REDIRECT_URI"),
            refresh_token=ws.secret(account.refresh_token_env),
        ),
        token_store=RefreshTokenStore(store_path(ws.data_dir)),
        policy=retry_policy(ws),
        before_call=before_call,
    )


def ebay_client(ws: Workspace, account: Account) -> ebay_api.EbayClient:
    token_env = account.refresh_token_env or "EBAY_REFRESH_TOKEN"
    return ebay_api.EbayClient(
        account_id=account.id,
        api_url=platform_url(ws, "EBAY_API_URL", ebay_api.LIVE_URL),
        credentials=ebay_api.EbayCredentials(
            client_id=ws.secret("EBAY_CLIENT_ID"),
            client_secret=ws.secret("EBAY_CLIENT_SECRET"),
            refresh_token=ws.secret(token_env),
        ),
        policy=retry_policy(ws),
    )


def platform_now(ws: Workspace) -> float:
    """Platform time, unix seconds; the sandbox's clocks run ``time_scale`` times faster."""
    return time.time() * time_scale(ws)


def base_budget(
    ws: Workspace, con: duckdb.DuckDBPyConnection, account_id: str
) -> journal.CallBudget:
    knobs = ws.settings.load
    return journal.CallBudget(
        con,
        "base",
        account_id,
        [
            journal.Window("hour", HOUR, 0.0, knobs.base_calls_per_hour),
            journal.Window("day", DAY, JST_OFFSET, knobs.base_calls_per_day),
        ],
        now=lambda: platform_now(ws),
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


# --- the rows --------------------------------------------------------------------------------


def loadable_rows(
    ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, platform: str
) -> tuple[pl.DataFrame, str | None]:
    """The run's approved rows for ``platform`` and why its whole load is held, if it is:
    Phase 2's review gate decides (:func:`pipeline.review.loadable_rows`)."""
    from pipeline import review

    return review.loadable_rows(ws, con, run_id, platform)


def _validated(platform: str, rows: pl.DataFrame) -> pl.DataFrame:
    model = schemas.DiffBase if platform == "base" else schemas.DiffEbay
    import pandera.errors

    try:
        return model.validate(rows, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        raise ConfigError(
            f"The {platform} rows given to load do not match the Diff{platform.title()} "
            f"schema ({len(exc.failure_cases)} problems); re-run `invsync transform`."
        ) from None


# --- pushing ---------------------------------------------------------------------------------


def push_rows(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    rows: pl.DataFrame,
    *,
    dry_run: bool = False,
    stop: StopRequest | None = None,
) -> list[AccountLoad]:
    """Journal ``rows`` (DiffBase or DiffEbay) and push every one not yet ``ok``.

    Every row given is pushed: filtering held rows is the review gate's job. Returns one
    :class:`AccountLoad` per account that had work. A dry run journals nothing and calls
    nothing; it returns the calls it would make in ``planned``.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    if rows.is_empty():
        return []
    rows = _validated(platform, rows)
    wanted = (
        journal.base_journal_rows(rows) if platform == "base" else journal.ebay_journal_rows(rows)
    )
    if dry_run:
        return _plan(ws, con, run_id, platform, wanted)
    journal.record_pending(con, wanted)
    keys = set(zip(wanted["account_id"], wanted["listing_key"], strict=True))
    work = [
        r
        for r in journal.open_rows(con, run_id, platform)
        if (r["account_id"], r["listing_key"]) in keys
    ]
    by_account: dict[str, list[dict[str, Any]]] = {}
    for row in work:
        by_account.setdefault(row["account_id"], []).append(row)
    secrets = secret_values(ws.env)

    def clean(text: str) -> str:
        return redact(text, secrets)

    outcomes = []
    for account_id, account_rows in sorted(by_account.items()):
        account = ws.settings.account(account_id)
        outcome = AccountLoad(platform, account_id, rows=len(account_rows))
        if stop is not None and stop.is_set():
            break  # a signal: what is not sent stays pending for the next load
        if platform == "base":
            _push_base(ws, con, account, account_rows, outcome, clean, stop)
        else:
            _push_ebay(ws, con, account, account_rows, outcome, clean, stop)
        outcomes.append(outcome)
        log.info(
            "%s %s: %d ok, %d failed, %d quarantined, %d skipped, %d pending, %d calls",
            platform,
            account_id,
            outcome.ok,
            outcome.failed,
            outcome.quarantined,
            outcome.skipped,
            outcome.pending,
            outcome.calls,
        )
    return outcomes


def _needs_reading_back(row: dict[str, Any]) -> bool:
    """Sent but never confirmed, or failed without an answer we trust (5xx, none):
    the change may be on the platform already."""
    if row["state"] == "sent":
        return True
    status = row.get("http_status")
    return row["state"] == "failed" and (status is None or status >= 500 or status == 200)


def _stop(outcome: AccountLoad, kind: str, sentence: str) -> None:
    outcome.stop_kind = kind
    outcome.stopped = sentence


def _leave_pending(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict[str, Any]],
    outcome: AccountLoad,
    code: str | None,
    status: int | None,
    message: str | None,
    clean: Callable[[str], str],
) -> None:
    """Rows the platform did not process (quota, auth): pending for the next window or run."""
    results = [RowResult(r, "pending", status, code, message) for r in rows]
    journal.record_results(con, results, clean)
    outcome.pending += len(rows)


# BASE ---------------------------------------------------------------------------------------


def _base_state(item: dict[str, Any]) -> tuple[int | None, int | None, bool | None]:
    visible = item.get("visible")
    return (
        item.get("price") if isinstance(item.get("price"), int) else None,
        item.get("stock") if isinstance(item.get("stock"), int) else None,
        bool(visible) if visible is not None else None,
    )


def _sends_visible(row: dict[str, Any]) -> bool:
    return row["new_visible"] is not None and row["new_visible"] != row["old_visible"]


def _base_matches(item: dict[str, Any], row: dict[str, Any], side: str) -> bool:
    price, stock, visible = _base_state(item)
    if price != row[f"{side}_price"] or stock != row[f"{side}_quantity"]:
        return False
    return not _sends_visible(row) or visible == row[f"{side}_visible"]


def _push_base(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    rows: list[dict[str, Any]],
    outcome: AccountLoad,
    clean: Callable[[str], str],
    stop: StopRequest | None = None,
) -> None:
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
            if _needs_reading_back(row):
                item = client.item_detail(item_id)
                if item is None:
                    result = RowResult(
                        row,
                        "quarantined",
                        400,
                        "bad_item_id",
                        "the item no longer exists on BASE (confirmed by items/detail)",
                    )
                elif _base_matches(item, row, "new"):
                    outcome.reconciled += 1
                    result = RowResult(row, "ok", 200, None, None)
                elif _base_matches(item, row, "old"):
                    queue[0] = {**row, "state": "pending"}  # not applied: send it now
                    continue
                else:
                    result = RowResult(
                        row,
                        "skipped",
                        200,
                        "drifted",
                        "the item's price or stock on BASE is neither the old nor the new "
                        "value: changed by hand; the next pull and review decide",
                        drifted=True,
                    )
                unwritten.append(result)
                queue.pop(0)
                continue
            write(then_sent=[row], batch_id=f"base-{item_id}-{random_ids.token_hex(4)}")
            try:
                item = client.edit_item(
                    item_id,
                    price=int(row["new_price"]),
                    stock=int(row["new_quantity"]),
                    visible=row["new_visible"] if _sends_visible(row) else None,
                )
            except thebase.BaseItemRejected as exc:
                result = _base_rejection(client, row, exc)
            except TransientApiError as exc:
                unwritten.append(
                    RowResult(row, "failed", exc.http_status, "no_answer", exc.message)
                )
                queue.pop(0)
                _stop(outcome, "transient", exc.message.rstrip("."))
                break
            else:
                if _base_matches(item, row, "new"):
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
        _leave_pending(con, queue, outcome, code, getattr(exc, "http_status", None), None, clean)
        _stop(
            outcome,
            "quota",
            f"BASE shop {account.id} reached its {window}ly API limit ({code}); "
            f"{len(queue)} row(s) stay pending for the next {window}",
        )
    except thebase.BaseAuthError as exc:
        write()
        _leave_pending(con, queue, outcome, exc.code, exc.http_status, exc.message, clean)
        _stop(outcome, "auth", exc.message.rstrip("."))
    except TransientApiError as exc:  # a read-back found no answer either
        write()
        _leave_pending(con, queue, outcome, "no_answer", exc.http_status, exc.message, clean)
        _stop(outcome, "transient", exc.message.rstrip("."))
    finally:
        write()
        budget.flush()
        outcome.calls += client.calls


def _base_rejection(
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


# eBay ---------------------------------------------------------------------------------------


def _offer_matches(offer: ebay_api.OfferState, row: dict[str, Any], side: str) -> bool:
    return offer.price_cents == row[f"{side}_price"] and offer.quantity == row[f"{side}_quantity"]


def _push_ebay(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    account: Account,
    rows: list[dict[str, Any]],
    outcome: AccountLoad,
    clean: Callable[[str], str],
    stop: StopRequest | None = None,
) -> None:
    client = ebay_client(ws, account)
    knobs = ws.settings.load
    remaining = list(rows)
    try:
        # 1. read back what a crash left unconfirmed
        to_send: list[dict[str, Any]] = []
        for row in list(remaining):
            if not _needs_reading_back(row):
                to_send.append(row)
                continue
            try:
                state = _read_ebay(client, row)
            except ebay_api.ReadBackUnavailable as exc:
                # No way to read this listing back: send it again. The values are absolute,
                # so a second send changes nothing but spends one of the day's revisions.
                log.warning("%s; sending %s again", exc.message.rstrip("."), row["listing_key"])
                to_send.append(row)
                continue
            if state is None:
                result = RowResult(
                    row,
                    "quarantined",
                    404,
                    "not_found",
                    "the listing no longer exists on eBay (confirmed by reading it back)",
                )
            elif _offer_matches(state, row, "new"):
                outcome.reconciled += 1
                result = RowResult(row, "ok", 200, None, None)
            elif _offer_matches(state, row, "old"):
                to_send.append(row)  # not applied: send it now
                continue
            else:
                result = RowResult(
                    row,
                    "skipped",
                    200,
                    "drifted",
                    "the listing's price or quantity on eBay is neither the old nor the new "
                    "value: changed by hand; the next pull and review decide",
                    drifted=True,
                )
            journal.record_results(con, [result], clean)
            outcome.add(result)
            remaining.remove(row)

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
        if capped:
            journal.record_results(con, capped, clean)
            for result in capped:
                outcome.add(result)
                remaining.remove(result.row)

        # 3. the offer id an inventory listing needs for its price
        ready = []
        for row in allowed:
            if row["api"] == "inventory" and not row["offer_id"]:
                offers = client.offers(row["listing_key"])
                published = [o for o in offers if o.offer_id]
                if not published:
                    result = RowResult(
                        row, "failed", 404, "no_offer", "eBay has no offer for this SKU"
                    )
                    journal.record_results(con, [result], clean)
                    outcome.add(result)
                    remaining.remove(row)
                    continue
                row = {**row, "offer_id": published[0].offer_id}
            ready.append(row)

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
                    price_cents=int(r["new_price"]),
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
                _stop(outcome, "transient", exc.message.rstrip("."))
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
        _leave_pending(
            con, remaining, outcome, code, getattr(exc, "http_status", None), exc.message, clean
        )
        _stop(
            outcome,
            "quota",
            f"eBay account {account.id} kept refusing calls ({code}, too many requests); "
            f"{len(remaining)} row(s) stay pending",
        )
    except ebay_api.EbayAuthError as exc:
        _leave_pending(con, remaining, outcome, exc.code, exc.http_status, exc.message, clean)
        _stop(outcome, "auth", exc.message.rstrip("."))
    except TransientApiError as exc:  # a read-back or an offer lookup found no answer
        _leave_pending(con, remaining, outcome, "no_answer", exc.http_status, exc.message, clean)
        _stop(outcome, "transient", exc.message.rstrip("."))
    finally:
        outcome.calls += client.calls


def _drop(remaining: list[dict[str, Any]], batch: list[dict[str, Any]]) -> None:
    keys = {r["listing_key"] for r in batch}
    remaining[:] = [r for r in remaining if r["listing_key"] not in keys]


def _read_ebay(client: ebay_api.EbayClient, row: dict[str, Any]) -> ebay_api.OfferState | None:
    """The listing's state on eBay now (None when eBay no longer has it)."""
    if row["api"] == "trading" and row["listing_id"]:
        return client.trading_item(str(row["listing_id"]))
    offers = client.offers(row["listing_key"])
    if row["offer_id"]:
        offers = [o for o in offers if o.offer_id == row["offer_id"]] or offers
    return offers[0] if offers else None


# --- dry run ---------------------------------------------------------------------------------


def _plan(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    platform: str,
    wanted: pl.DataFrame,
) -> list[AccountLoad]:
    """The calls a real load would make now, without making or journaling any."""
    journaled = {
        (r["account_id"], r["listing_key"]): r for r in journal.open_rows(con, run_id, platform)
    }
    done = {
        (a, k)
        for a, k in con.execute(
            "select account_id, listing_key from push_journal where run_id = $r and platform = $p",
            {"r": run_id, "p": platform},
        ).fetchall()
    } - set(journaled)
    knobs = ws.settings.load
    outcomes: dict[str, AccountLoad] = {}
    for row in wanted.iter_rows(named=True):
        key = (row["account_id"], row["listing_key"])
        if key in done:
            continue  # ok, quarantined or drifted already: a load would not touch it
        row = journaled.get(key, {**row, "state": "pending", "http_status": None})
        outcome = outcomes.setdefault(row["account_id"], AccountLoad(platform, row["account_id"]))
        outcome.rows += 1
        outcome.planned.append(row)
    for outcome in outcomes.values():
        rows, outcome.planned = outcome.planned, []
        calls: list[dict[str, Any]] = [{"operation": "oauth/token", "keys": []}]
        if platform == "base":
            for row in rows:
                if _needs_reading_back(row):
                    calls.append({"operation": "items/detail", "keys": [row["listing_key"]]})
                calls.append({"operation": "items/edit", "keys": [row["listing_key"]], "row": row})
        else:
            for row in rows:
                if _needs_reading_back(row):
                    read = "GetItem" if row["api"] == "trading" else "getOffers"
                    calls.append({"operation": read, "keys": [row["listing_key"]]})
                elif row["api"] == "inventory" and not row["offer_id"]:
                    calls.append({"operation": "getOffers", "keys": [row["listing_key"]]})
            for api, size, operation in (
                ("inventory", knobs.ebay_batch_size, "bulk_update_price_quantity"),
                ("trading", knobs.trading_batch_size, "ReviseInventoryStatus"),
            ):
                group = [r for r in rows if r["api"] == api]
                for i in range(0, len(group), size):
                    chunk = group[i : i + size]
                    calls.append(
                        {
                            "operation": operation,
                            "keys": [r["listing_key"] for r in chunk],
                            "rows": chunk,
                        }
                    )
        outcome.planned = calls
        outcome.calls = len(calls)
    return list(outcomes.values())


def _plan_frame(run_id: str, accounts: list[AccountLoad]) -> pl.DataFrame:
    records = []
    for outcome in accounts:
        for n, call in enumerate(outcome.planned, start=1):
            records.append(
                {
                    "run_id": run_id,
                    "platform": outcome.platform,
                    "account_id": outcome.account_id,
                    "call_no": n,
                    "operation": call["operation"],
                    "listing_keys": ",".join(call["keys"]),
                    "items": len(call["keys"]),
                }
            )
    schema = {
        "run_id": pl.String,
        "platform": pl.String,
        "account_id": pl.String,
        "call_no": pl.Int64,
        "operation": pl.String,
        "listing_keys": pl.String,
        "items": pl.Int64,
    }
    return pl.DataFrame(records, schema=schema)


def plan_path(data_dir: Path, run_id: str) -> Path:
    return data_dir / "loads" / f"run_id={run_id}" / "dry_run.parquet"


# --- the stage -------------------------------------------------------------------------------


def run(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
    raise_on_failure: bool = True,
    stop: StopRequest | None = None,
) -> LoadResult:
    """Load one run (default: the latest): every platform's approved rows, then the run's
    counts. Raises :class:`ExternalApiError` (exit 4) when a row failed or was quarantined
    or an account stopped early, and :class:`HeldForReviewError` (exit 3) when the review
    gate holds a platform's whole load (after loading the other platform)."""
    started = time.monotonic()
    run_id = resolve_run(con, run_id)
    accounts: list[AccountLoad] = []
    held: dict[str, str] = {}
    from pipeline.transform import diff_path

    configured = [p for p in PLATFORMS if ws.settings.accounts_on(p)]
    diffed = [p for p in configured if diff_path(ws.data_dir, run_id, p).is_file()]
    # A platform transform wrote no diff for has nothing to load; with no diff at all the
    # review gate's own error (run transform first) is the right answer.
    for platform in diffed or configured[:1]:
        rows, hold = loadable_rows(ws, con, run_id, platform)
        if hold:
            held[platform] = hold
            continue
        accounts += push_rows(ws, con, run_id, platform, rows, dry_run=dry_run, stop=stop)
    seconds = time.monotonic() - started
    result = LoadResult(run_id, dry_run, accounts, held, seconds)
    if dry_run:
        result.plan_path = write_parquet_atomic(
            _plan_frame(run_id, accounts), plan_path(ws.data_dir, run_id)
        )
    else:
        _record_run(con, run_id, seconds)
    if raise_on_failure:
        raise_for_outcome(result)
    return result


def _record_run(con: duckdb.DuckDBPyConnection, run_id: str, seconds: float) -> None:
    counts = journal.summary(con, run_id)
    pushes = int(counts.filter(pl.col("state") == "ok")["rows"].sum()) if len(counts) else 0
    failures = (
        int(counts.filter(pl.col("state").is_in(["failed", "quarantined"]))["rows"].sum())
        if len(counts)
        else 0
    )
    before = con.execute(
        "select coalesce(load_seconds, 0) from runs where run_id = $r", {"r": run_id}
    ).fetchall()
    total = (float(before[0][0]) if before else 0.0) + seconds
    update_run(con, run_id, pushes=pushes, push_failures=failures, load_seconds=total)


def failure_sentence(result: LoadResult) -> str | None:
    """One sentence (clauses joined by "; ") naming what failed and the next step."""
    clauses = []
    retry = f"invsync load --run {result.run_id}"
    for platform in PLATFORMS:
        mine = [a for a in result.accounts if a.platform == platform]
        total = sum(a.rows for a in mine)
        name = "BASE" if platform == "base" else "eBay"
        quarantined = sum(a.quarantined for a in mine)
        failed = sum(a.failed for a in mine)
        if quarantined:
            first = next(a.first_problem for a in mine if a.quarantined)
            clauses.append(
                f"{name} rejected {quarantined} of {total} items (first: {first}); they are "
                f"quarantined — see invsync review --run {result.run_id}"
            )
        if failed:
            first = next(a.first_problem for a in mine if a.failed and a.first_problem)
            clauses.append(
                f"{name} failed {failed} of {total} items (first: {first}); they stay failed "
                f"in the journal and `{retry}` retries them"
            )
        for account in mine:
            if account.stopped:
                clauses.append(f"{account.stopped} — run `{retry}` again later")
    return "; ".join(clauses) + "." if clauses else None


def raise_for_outcome(result: LoadResult) -> None:
    if result.dry_run:
        return
    sentence = failure_sentence(result)
    if sentence:
        kinds = {a.stop_kind for a in result.accounts if a.stopped}
        quarantine_or_failed = any(a.failed or a.quarantined for a in result.accounts)
        if kinds == {"quota"} and not quarantine_or_failed:
            raise ApiQuotaError(sentence)
        if kinds == {"auth"} and not quarantine_or_failed:
            raise ApiAuthError(sentence)
        raise ExternalApiError(sentence)
    if result.held:
        platform, why = next(iter(result.held.items()))
        raise HeldForReviewError(
            f"The {platform} load of run {result.run_id} is held by the review gate ({why}); "
            f"release it with `invsync approve {result.run_id} --platform {platform}`."
        )


def describe(result: LoadResult) -> list[str]:
    """Lines for the terminal: per platform account what happened (or would happen)."""
    lines = []
    if result.dry_run:
        total = sum(a.calls for a in result.accounts)
        lines.append(
            f"Dry run of run {result.run_id}: {total} call(s) would be made, none was; "
            f"the plan is in {result.plan_path}."
        )
        for acct in result.accounts:
            by_operation: dict[str, int] = {}
            for call in acct.planned:
                by_operation[call["operation"]] = by_operation.get(call["operation"], 0) + 1
            ops = ", ".join(f"{n} {op}" for op, n in by_operation.items())
            lines.append(f"  {acct.platform} {acct.account_id}: {acct.rows} row(s); {ops}")
            shown = 0
            for call in acct.planned:
                for row in [call.get("row"), *(call.get("rows") or [])]:
                    if row is None or shown >= PREVIEW_ROWS:
                        continue
                    shown += 1
                    lines.append(
                        f"    {row['listing_key']}: price {row['old_price']} → {row['new_price']} "
                        f"{row['currency']}, stock {row['old_quantity']} → {row['new_quantity']}"
                    )
    else:
        lines.append(f"Loaded run {result.run_id} in {result.seconds:.1f} s.")
        for acct in result.accounts:
            lines.append(
                f"  {acct.platform} {acct.account_id}: {acct.ok} ok ({acct.reconciled} found "
                f"already applied), {acct.failed} failed, {acct.quarantined} quarantined, "
                f"{acct.skipped} skipped, {acct.pending} pending; {acct.calls} call(s)"
            )
        if not result.accounts:
            lines.append("  Nothing to push: every approved row is already ok.")
    for platform, why in result.held.items():
        lines.append(f"  {platform}: held by the review gate ({why}).")
    return lines
