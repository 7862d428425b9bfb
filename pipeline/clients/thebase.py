"""BASE (api.thebase.in) over ``requests``: OAuth refresh, users/me, items, detail and edit.

Stage: load and listings pull. Reads: the BASE API (or the sandbox), the refresh-token
store. Writes: the refresh-token store (a rotated token, before it is used).

One client per shop. Every BASE error is HTTP 400 ``{"error", "error_description"}``;
this module turns them into types the loader acts on:

* :class:`BaseLimitReached` — ``hour_api_limit`` / ``day_api_limit``: stop the shop;
* :class:`BaseAuthError` — the refresh token or the client credentials are refused;
* :class:`BaseItemRejected` — one item refused (``bad_item_id``, ``validation_error``, …);
* :class:`~pipeline.errors.TransientApiError` — BASE is unavailable: 5xx, no answer, or
  its ``server_error`` ("DB error", which BASE may send in its HTTP 400 envelope, e.g. on
  the token refresh), each retried by the policy first. Never a consent problem.

An expired access token (``invalid_request`` about the token) is refreshed once and the
call repeated once. Each HTTP attempt first passes ``before_call`` (the shop's hourly
budget), which may raise to stop the shop before BASE does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from pipeline.clients.http import (
    AccessToken,
    RetryPolicy,
    json_body,
    refreshed_once,
    send,
    unusable_answer,
)
from pipeline.errors import BaseAuthError as BaseAuthError
from pipeline.errors import BaseItemRejected as BaseItemRejected
from pipeline.errors import BaseLimitReached as BaseLimitReached
from pipeline.errors import ExternalApiError, TransientApiError
from pipeline.tokens import RefreshTokenStore

log = logging.getLogger("invsync.thebase")

LIVE_URL = "https://api.thebase.in"
PAGE_LIMIT = 100  # BASE's maximum for GET /1/items
LIMIT_CODES = frozenset({"hour_api_limit", "day_api_limit"})
GONE_CODES = frozenset({"bad_item_id", "no_item"})
SERVER_ERROR = "server_error"  # BASE's "DB error": transient, never a refusal


def is_server_error(response: requests.Response) -> bool:
    """BASE's ``server_error`` in its documented envelope (every BASE error is HTTP 400;
    the token endpoint's docs list server_error "DB error"). A 5xx is retried anyway."""
    if response.status_code != 400:
        return False
    body = json_body(response)
    return isinstance(body, dict) and body.get("error") == SERVER_ERROR


@dataclass(frozen=True)
class BaseCredentials:
    client_id: str
    client_secret: str
    redirect_uri: str
    refresh_token: str  # the environment's (initial) token; the store's wins when newer


def _is_token_problem(code: str, description: str) -> bool:
    # BASE answers an expired or unknown access token with invalid_request and a sentence
    # about the access token; the same code also means "digital goods cannot be edited".
    return code == "invalid_request" and ("トークン" in description or "token" in description)


class BaseShopClient:
    """The BASE API for one shop."""

    def __init__(
        self,
        *,
        account_id: str,
        api_url: str,
        credentials: BaseCredentials,
        token_store: RefreshTokenStore,
        policy: RetryPolicy,
        before_call: Callable[[str], None] | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,  # unix seconds: expiries are stored
    ) -> None:
        self.account_id = account_id
        self._who = f"BASE shop {account_id}"  # how messages name the shop
        self.api_url = api_url.rstrip("/")
        self._credentials = credentials
        self._store = token_store
        self._store_key = f"base:{account_id}"
        self.policy = policy
        self._before_call = before_call
        self._session = session or requests.Session()
        self._clock = clock
        self._token = AccessToken()  # expires_at: unix seconds
        self._refused_stored = False  # the stored access token was refused: refresh
        self.calls = 0  # HTTP attempts made by this client

    # --- transport --------------------------------------------------------------------

    def _send(self, method: str, path: str, operation: str, **kwargs: Any) -> requests.Response:
        def before() -> None:
            if self._before_call is not None:
                self._before_call(operation)
            self.calls += 1

        return send(
            self._session,
            method,
            f"{self.api_url}{path}",
            platform=f"BASE {self.account_id}",
            operation=operation,
            policy=self.policy,
            before_attempt=before,
            transient=is_server_error,
            **kwargs,
        )

    def _error(self, response: requests.Response, operation: str) -> ExternalApiError:
        body = json_body(response)
        code = str(body.get("error", "")) if isinstance(body, dict) else ""
        description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
        status = response.status_code
        where = self._who
        if code == SERVER_ERROR:  # only when the retries were not given the answer
            return unusable_answer(
                where,
                f"{operation} with server_error (BASE is unavailable)",
                operation=operation,
                http_status=status,
                next_step="run the command again later",
            )
        if code in LIMIT_CODES:
            window = "hour" if code == "hour_api_limit" else "day"
            return BaseLimitReached(
                f"{where} reached BASE's {window}ly API limit ({code}); the rest waits for "
                f"the next {window} — run the command again then.",
                code=code,
                http_status=status,
            )
        if (
            operation == "oauth/token"
            or status in (401, 403)
            or _is_token_problem(code, description)
        ):
            return BaseAuthError(
                f"{where} refused our credentials on {operation} ({code or status}); check "
                "BASE_CLIENT_ID, BASE_CLIENT_SECRET and the shop's refresh token, or consent again.",
                code=code or f"http_{status}",
                http_status=status,
            )
        if not code:
            return unusable_answer(
                where,
                f"{operation} with HTTP {status} and no BASE error body",
                operation=operation,
                http_status=status,
            )
        return BaseItemRejected(
            f"{where} rejected {operation} ({code}).",
            code=code,
            description=description,
            http_status=status,
        )

    # --- OAuth ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Swap the refresh token for an access token; store the rotated refresh token first."""
        seed = self._credentials.refresh_token
        current = self._store.current(self._store_key, seed)
        try:
            response = self._send(
                "POST",
                "/1/oauth/token",
                "oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": self._credentials.client_id,
                    "client_secret": self._credentials.client_secret,
                    "refresh_token": current,
                    "redirect_uri": self._credentials.redirect_uri,
                },
            )
        except TransientApiError as exc:
            # server_error, 5xx or no answer after the retries: BASE is down, the consent
            # is fine (a failed attempt does not use up the refresh token)
            answered = f"HTTP {exc.http_status}" if exc.http_status else "no answer"
            raise TransientApiError(
                f"{self._who} could not refresh its access token: BASE is unavailable "
                f"({answered} after {self.policy.max_attempts} attempts); run the command "
                "again later.",
                operation="oauth/token",
                http_status=exc.http_status,
            ) from None
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise self._error(response, "oauth/token")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise BaseAuthError(
                f"{self._who} answered the token refresh without an access token; run the "
                "command again.",
                code="no_access_token",
                http_status=response.status_code,
            )
        lifetime = float(body.get("expires_in") or 3600)  # seconds
        token = AccessToken.lasting(access, lifetime, self._clock(), self.policy)
        rotated = body.get("refresh_token")
        # BASE invalidates the old refresh token: persist the new one (with the access token,
        # for the next process to reuse) before anything can use — or lose — it.
        self._store.save(
            self._store_key,
            rotated if isinstance(rotated, str) and rotated else current,
            seed,
            access_token=access,
            access_expires_at=token.expires_at,
        )
        self._token = token
        log.info("BASE %s: access token refreshed", self.account_id)

    def ensure_token(self) -> None:
        """Have a usable access token now (the stored one, else a refresh), so a caller can
        learn that BASE is unavailable before it records a row as sent."""
        self._headers()

    def _headers(self) -> dict[str, str]:
        if self._token.value is None and not self._refused_stored:
            stored = self._store.access(
                self._store_key, self._credentials.refresh_token, self._clock()
            )
            if stored is not None:
                self._token = AccessToken(*stored)
        if not self._token.usable(self._clock()):
            self.refresh()
        return {"Authorization": f"Bearer {self._token.value}"}

    def _forget_token(self) -> None:
        # refused before its expiry: refresh, and do not take the stored one again
        self._token = AccessToken()
        self._refused_stored = True

    def _authorised(self, method: str, path: str, operation: str, **kwargs: Any) -> Any:
        """A data call with the access token; one refresh and one repeat on a token error."""

        def refused(response: requests.Response) -> bool:
            return response.status_code != 200 and isinstance(
                self._error(response, operation), BaseAuthError
            )

        response = refreshed_once(
            lambda: self._send(method, path, operation, headers=self._headers(), **kwargs),
            refused,
            self._forget_token,
        )
        if response.status_code != 200:
            raise self._error(response, operation)
        body = json_body(response)
        if body is None:
            raise unusable_answer(
                self._who,
                f"{operation} with a body that is not JSON",
                operation=operation,
                http_status=200,
            )
        return body

    # --- users ------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """``GET /1/users/me``: the shop's user record (``shop_id``, ``shop_name``, …; scope
        read_users, granted by default) — one cheap authenticated read per shop."""
        body = self._authorised("GET", "/1/users/me", "users/me")
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, dict):
            raise unusable_answer(
                self._who, "users/me without the user", operation="users/me", http_status=200
            )
        return user

    # --- items ------------------------------------------------------------------------

    def edit_item(
        self, item_id: int, *, price: int, stock: int | None, visible: bool | None = None
    ) -> dict[str, Any]:
        """``POST /1/items/edit`` for one item; returns BASE's updated item. ``stock`` None
        leaves it out (an item with variations: BASE sets its stock to their sum)."""
        form: dict[str, Any] = {"item_id": item_id, "price": price}
        if stock is not None:
            form["stock"] = stock
        if visible is not None:
            form["visible"] = 1 if visible else 0
        body = self._authorised("POST", "/1/items/edit", "items/edit", data=form)
        item = body.get("item") if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise unusable_answer(
                self._who,
                f"items/edit for item {item_id} without the item",
                operation="items/edit",
                http_status=200,
            )
        return item

    def item_detail(self, item_id: int) -> dict[str, Any] | None:
        """``GET /1/items/detail/{item_id}``; None when BASE says the item does not exist."""
        try:
            body = self._authorised("GET", f"/1/items/detail/{int(item_id)}", "items/detail")
        except BaseItemRejected as exc:
            if exc.code in GONE_CODES:
                return None
            raise
        item = body.get("item") if isinstance(body, dict) else None
        return item if isinstance(item, dict) else None

    def items(self) -> Iterator[dict[str, Any]]:
        """Every item of the shop, paging ``GET /1/items`` by 100 until a short page."""
        offset = 0
        while True:
            body = self._authorised(
                "GET", "/1/items", "items", params={"limit": PAGE_LIMIT, "offset": offset}
            )
            page = body.get("items") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise unusable_answer(
                    self._who,
                    "GET /1/items without an items list",
                    operation="items",
                    http_status=200,
                )
            yield from page
            if len(page) < PAGE_LIMIT:
                return
            offset += PAGE_LIMIT
