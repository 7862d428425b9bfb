"""``invsync auth base|ebay``: connect a seller account by OAuth's authorization-code grant.

Stage: auth (once per account, before the syncs). Reads the app's credentials from the
environment or ``.env`` (``BASE_CLIENT_ID``, ``BASE_CLIENT_SECRET``, ``BASE_REDIRECT_URI``;
``EBAY_CLIENT_ID``, ``EBAY_CLIENT_SECRET``, ``EBAY_RU_NAME``, optional ``EBAY_ACCEPT_URL``),
the platform's consent page and token endpoint (or the sandbox's). Writes the account's
refresh token to the token store (:mod:`pipeline.tokens`, mode 0600) and, while a consent is
open, ``<data_dir>/secrets/pending_consent.json`` (platform, account, ``state``: no token).

The flow:

1. :func:`begin` makes the consent URL for the app's redirect URI with a random ``state``
   and remembers it (so ``--redirect-url`` can finish it from another process);
2. the seller opens it, logs in and allows; the platform sends the browser to the redirect
   URI (BASE) or the RuName's accept URL (eBay) with ``code`` and ``state``;
3. the answer comes back pasted (:func:`code_from`), or to a one-shot listener on 127.0.0.1
   when that URL is ``http://127.0.0.1:PORT/…`` or ``http://localhost:PORT/…``
   (:class:`Catcher`); ``state`` must match, an ``error`` (the seller denied) is a sentence;
4. :func:`exchange` trades the code (single-use, minutes-lived) for tokens and stores the
   refresh token; nothing prints, logs or writes it anywhere else.

:func:`refresh_token_source` says where an account's refresh token comes from now (the
store or the environment), for ``config check``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import requests

from pipeline.clients import ebay as ebay_api
from pipeline.clients import thebase
from pipeline.clients.factory import platform_url, refresh_token_var, retry_policy, token_store
from pipeline.clients.http import json_body, send
from pipeline.config import Account, Workspace
from pipeline.errors import BaseAuthError, EbayAuthError, ExternalApiError, UsageError
from pipeline.files import write_text_atomic
from pipeline.loopback import LoopbackServer
from pipeline.redact import remember
from pipeline.tokens import STORE_DIR, token_key

PLATFORMS = ("base", "ebay")
NAMES = {"base": "BASE shop", "ebay": "eBay account"}
ENDPOINT_VARS = {"base": "BASE_API_URL", "ebay": "EBAY_API_URL"}
BASE_SCOPES = ("read_users", "read_items", "write_items")
EBAY_SCOPE_ROOT = "https://api.ebay.com/oauth/api_scope"
# api_scope: the Trading API (ReviseInventoryStatus, GetItem, GetMyeBaySelling) by OAuth;
# sell.inventory: the Inventory API's reads and bulk updates.
EBAY_SCOPES = (EBAY_SCOPE_ROOT, f"{EBAY_SCOPE_ROOT}/sell.inventory")
EBAY_AUTH_URL = "https://auth.ebay.com"  # the live consent host (the API's is api.ebay.com)
RU_NAME_VAR = "EBAY_RU_NAME"
ACCEPT_URL_VAR = "EBAY_ACCEPT_URL"
PENDING_NAME = "pending_consent.json"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
WAIT_SECONDS = 300.0  # how long the listener waits for the browser by default


@dataclass(frozen=True)
class Consent:
    """One consent this command started: the page to open and what must come back."""

    platform: str  # base | ebay
    account: str
    url: str  # the consent page
    state: str  # random; the redirect must carry it back
    callback: str | None  # where the browser comes back, when known (eBay: EBAY_ACCEPT_URL)

    def listen_port(self) -> int | None:
        """The 127.0.0.1 port to catch the redirect on, or None (the seller pastes it)."""
        if not self.callback:
            return None
        parts = urlsplit(self.callback)
        if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
            return None
        try:
            return parts.port
        except ValueError:
            return None

    def command(self) -> str:
        """The command that starts this consent again."""
        return f"invsync auth {self.platform} --account {self.account}"


def account_for(ws: Workspace, platform: str, account_id: str) -> Account:
    """The declared account, on ``platform``; else a sentence naming the right command."""
    account = ws.settings.account(account_id)
    if account.platform != platform:
        raise UsageError(
            f"Account {account_id} is a {account.platform} account, not {platform}; run "
            f"`invsync auth {account.platform} --account {account_id}`."
        )
    return account


@contextmanager
def platform_workspace(ws: Workspace, platform: str) -> Iterator[tuple[Workspace, Any]]:
    """The workspace to talk to ``platform`` with, and the sandbox started for it (or None).

    Live mode needs only this platform's app variables (checked as they are read), not the
    refresh tokens ``invsync auth`` is there to get; sandbox mode goes through
    :func:`pipeline.apis.open_apis` (its demo app, a sandbox here or elsewhere)."""
    if not ws.is_sandbox:
        yield ws, None
        return
    from pipeline.apis import open_apis

    with open_apis(ws, needs=(ENDPOINT_VARS[platform],)) as apis:
        yield apis.ws, apis.sandbox


# ---- the consent URL and the pending consent ---------------------------------------------


def _query(params: list[tuple[str, str]]) -> str:
    return urlencode(params, quote_via=quote)  # spaces in scope as %20, as the docs show


def consent_url(ws: Workspace, platform: str, state: str) -> tuple[str, str | None]:
    """The consent page for the app's redirect URI, and where the browser comes back."""
    if platform == "base":
        redirect = ws.secret("BASE_REDIRECT_URI")
        params = [
            ("response_type", "code"),
            ("client_id", ws.secret("BASE_CLIENT_ID")),
            ("redirect_uri", redirect),
            ("scope", " ".join(BASE_SCOPES)),
            ("state", state),
        ]
        base_url = platform_url(ws, "BASE_API_URL", thebase.LIVE_URL)
        return f"{base_url}/1/oauth/authorize?{_query(params)}", redirect
    params = [
        ("client_id", ws.secret("EBAY_CLIENT_ID")),
        ("redirect_uri", ws.secret(RU_NAME_VAR)),
        ("response_type", "code"),
        ("scope", " ".join(EBAY_SCOPES)),
        ("state", state),
    ]
    host = ws.endpoint("EBAY_API_URL") or EBAY_AUTH_URL  # the sandbox serves both
    return f"{host}/oauth2/authorize?{_query(params)}", ws.env.get(ACCEPT_URL_VAR) or None


def _pending_path(ws: Workspace) -> Path:
    return ws.data_dir / STORE_DIR / PENDING_NAME


def _read_pending(ws: Workspace) -> dict[str, Any]:
    try:
        data = json.loads(_pending_path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_pending(ws: Workspace, data: dict[str, Any]) -> None:
    folder = _pending_path(ws).parent
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    write_text_atomic(_pending_path(ws), json.dumps(data), mode=0o600)


def begin(ws: Workspace, platform: str, account_id: str) -> Consent:
    """A new consent for the account: its URL with a fresh ``state``, remembered."""
    account_for(ws, platform, account_id)
    state = secrets.token_urlsafe(24)
    url, callback = consent_url(ws, platform, state)
    consent = Consent(platform, account_id, url, state, callback)
    pending = _read_pending(ws)
    pending[token_key(platform, account_id)] = asdict(consent)
    _write_pending(ws, pending)
    return consent


def pending(ws: Workspace, platform: str, account_id: str) -> Consent:
    """The consent a previous ``invsync auth`` started for the account (``--redirect-url``)."""
    account_for(ws, platform, account_id)
    entry = _read_pending(ws).get(token_key(platform, account_id))
    if not isinstance(entry, dict):
        raise UsageError(
            f"No consent is open for {NAMES[platform]} {account_id}; run `invsync auth "
            f"{platform} --account {account_id}` first, then pass the redirect URL it leads to."
        )
    return Consent(**entry)


def _forget(ws: Workspace, consent: Consent) -> None:
    data = _read_pending(ws)
    if data.pop(token_key(consent.platform, consent.account), None) is not None:
        _write_pending(ws, data)


# ---- the answer: pasted, or caught on 127.0.0.1 ---------------------------------------------


def code_from(redirect_url: str, consent: Consent) -> str:
    """The authorization code in the URL the browser came back to; ``state`` must match."""
    query = parse_qs(urlsplit(redirect_url.strip()).query)
    who = f"{NAMES[consent.platform]} {consent.account}"
    if query.get("state", [""])[0] != consent.state:
        raise UsageError(
            f"The redirect URL does not carry this consent's state, so it is not the answer "
            f"to it; paste the address the browser reached after allowing, or run "
            f"`{consent.command()}` again."
        )
    if "error" in query:
        raise UsageError(
            f"The consent for {who} was not given ({query['error'][0]}); run "
            f"`{consent.command()}` again and allow invsync."
        )
    code = query.get("code", [""])[0]
    if not code:
        raise UsageError(
            f"The redirect URL has no code for {who}; paste the whole address the browser "
            f"reached after allowing, or run `{consent.command()}` again."
        )
    return code


_ANSWERED = (
    b"<!doctype html><meta charset='utf-8'><title>invsync</title>"
    b"<p>invsync has the answer; you can close this tab and go back to the terminal.</p>"
)


class Catcher:
    """A one-shot listener on 127.0.0.1 for the browser's return to the callback URL.

    Listens from the moment it is made (so the URL can be opened at once); :meth:`wait`
    gives the first URL with ``code`` or ``error`` in its query, within a timeout."""

    def __init__(self, consent: Consent) -> None:
        port = consent.listen_port()
        assert port is not None and consent.callback is not None
        self.consent = consent
        self._path = urlsplit(consent.callback).path or "/"
        self._answer: str | None = None
        self._got = threading.Event()
        try:
            self._server = LoopbackServer(self._app, port, name="auth-callback")
        except OSError:
            raise UsageError(
                f"Port {port} on 127.0.0.1 is taken, so the answer to {consent.callback} "
                f"cannot be caught; free it, or copy the address the browser reaches and pass "
                f"it with `{consent.command()} --redirect-url URL`."
            ) from None

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        query = environ.get("QUERY_STRING", "")
        keys = parse_qs(query)
        if environ.get("PATH_INFO") == self._path and ("code" in keys or "error" in keys):
            if not self._got.is_set():
                self._answer = f"{self.consent.callback}?{query}"
                self._got.set()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_ANSWERED]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not the consent callback"]

    def wait(self, timeout: float) -> str:
        """The URL the browser came back to; a sentence when nothing came in ``timeout`` s."""
        if not self._got.wait(timeout) or self._answer is None:
            raise UsageError(
                f"No answer reached {self.consent.callback} within {timeout:g} s; run "
                f"`{self.consent.command()}` again and allow in the browser, or pass the "
                f"address it reached with --redirect-url URL."
            )
        return self._answer

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> Catcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the exchange ----------------------------------------------------------------------------


def _once(ws: Workspace) -> Any:
    """The retry policy with one attempt: a code is single-use, a resend would be refused."""
    return replace(retry_policy(ws), max_attempts=1)


def _exchange_base(ws: Workspace, consent: Consent, code: str) -> dict[str, Any]:
    response = send(
        requests.Session(),
        "POST",
        f"{platform_url(ws, 'BASE_API_URL', thebase.LIVE_URL)}/1/oauth/token",
        platform=f"BASE {consent.account}",
        operation="oauth/token",
        policy=_once(ws),
        data={
            "grant_type": "authorization_code",
            "client_id": ws.secret("BASE_CLIENT_ID"),
            "client_secret": ws.secret("BASE_CLIENT_SECRET"),
            "code": code,
            "redirect_uri": ws.secret("BASE_REDIRECT_URI"),
        },
    )
    return _granted(
        response,
        lambda said, code: BaseAuthError(
            f"BASE refused the authorization code for shop {consent.account} ({said}); codes "
            f"are single-use and expire within minutes: run `{consent.command()}` again, and "
            "check BASE_CLIENT_ID, BASE_CLIENT_SECRET and BASE_REDIRECT_URI.",
            code=code,
            http_status=response.status_code,
            operation="oauth/token",
        ),
    )


def _granted(
    response: requests.Response, refused: Callable[[str, str], ExternalApiError]
) -> dict[str, Any]:
    """The token answer of a code exchange, or ``refused(what it said, its code)`` raised."""
    body = json_body(response)
    if response.status_code == 200 and isinstance(body, dict) and body.get("refresh_token"):
        return body
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    raise refused(error or f"HTTP {response.status_code}", error or f"http_{response.status_code}")


def _exchange_ebay(ws: Workspace, consent: Consent, code: str) -> dict[str, Any]:
    pair = f"{ws.secret('EBAY_CLIENT_ID')}:{ws.secret('EBAY_CLIENT_SECRET')}"
    response = send(
        requests.Session(),
        "POST",
        f"{platform_url(ws, 'EBAY_API_URL', ebay_api.LIVE_URL)}{ebay_api.TOKEN_PATH}",
        platform=f"eBay {consent.account}",
        operation="oauth2/token",
        policy=_once(ws),
        headers={"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": ws.secret(RU_NAME_VAR),
        },
    )
    return _granted(
        response,
        lambda said, code: EbayAuthError(
            f"eBay refused the authorization code for account {consent.account} ({said}); "
            f"codes are single-use and live 5 minutes: run `{consent.command()}` again, and "
            f"check EBAY_CLIENT_ID, EBAY_CLIENT_SECRET and {RU_NAME_VAR}.",
            code=code,
            http_status=response.status_code,
            operation="oauth2/token",
        ),
    )


def exchange(ws: Workspace, consent: Consent, code: str) -> None:
    """Trade the code for tokens; store the refresh token (0600) and close the consent.

    The stored entry records the environment's token of that moment, so this consent wins
    over it until someone puts a newer one in the environment (:mod:`pipeline.tokens`)."""
    account = account_for(ws, consent.platform, consent.account)
    remember(code)  # single-use and short-lived, but a credential while it lives
    if consent.platform == "base":
        body = _exchange_base(ws, consent, code)
    else:
        body = _exchange_ebay(ws, consent, code)
    remember(*(str(body.get(k) or "") for k in ("access_token", "refresh_token")))
    seed = ws.env.get(refresh_token_var(account), "")
    token_store(ws).save(token_key(account.platform, account.id), str(body["refresh_token"]), seed)
    _forget(ws, consent)


def refresh_token_source(ws: Workspace, account_id: str) -> Literal["store", "env"] | None:
    """Where the account's refresh token comes from now: the token store (``invsync auth``,
    or BASE's rotation), the environment, or nowhere yet."""
    account = ws.settings.account(account_id)
    seed = ws.env.get(refresh_token_var(account), "")
    token = token_store(ws).current(token_key(account.platform, account.id), seed)
    if not token:
        return None
    return "env" if token == seed else "store"
