"""``invsync config check``'s checks beyond the configuration's own validation.

Stage: none (a command a seller runs before going live, and after changing credentials).
Reads the workspace, the ``.env`` file's permissions, and — with ``--online`` — each API once:
one token refresh and one cheap read per account and per API. Writes nothing (the BASE client
may rotate its refresh token into the token store, as every BASE refresh does).

:func:`live_credentials_problem` gives the sentence that makes the configuration unusable
where it runs (live mode with a credential missing) and :func:`dotenv_warning` the warning a
seller should act on (a ``.env`` other users can read). :func:`probe_online` calls:

* SP-API: the LWA token and one ``getItemOffersBatch`` (or ``getCompetitivePricing``) call
  for one ASIN — whatever Amazon says about that ASIN, an answered call proves the app,
  its role and the refresh token;
* each BASE shop: a token refresh and ``GET /1/users/me``;
* each eBay account: a token refresh, one ``getInventoryItems`` page of one item, and the
  seller's Out-of-Stock Control preference (Trading ``GetUserPreferences``) — off, quantity 0
  would end listings (docs/load.md).

Each answer is one :class:`Probe`: ``ok``, ``refused`` (the API answered no: credentials,
consent, role, quota) or ``unreachable`` (no usable answer), with the next step.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests

from pipeline.config import Account, Workspace
from pipeline.errors import (
    ApiAuthError,
    ConfigError,
    ExternalApiError,
    InvsyncError,
    RetryableApiError,
)

Status = Literal["ok", "refused", "unreachable"]
# A well-formed ASIN to ask Amazon about: any answer for it (offers, none, unknown ASIN)
# proves the call was authorised; only the call's own refusal or silence counts.
PROBE_ASIN = "B00NTCH52W"
AGAIN = "run `invsync config check --online` again"


@dataclass(frozen=True)
class Probe:
    """One API's answer to one account's cheap call."""

    api: str  # "SP-API", "BASE", "eBay"
    account: str | None
    what: str  # the call made, e.g. "users/me"
    status: Status
    said: str  # what the API answered, in a few words
    next_step: str | None = None


def dotenv_warning(path: Path = Path(".env")) -> str | None:
    """A sentence when ``path`` (the ``.env`` invsync reads) is readable by other users."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    return (
        f"{path} holds secrets and other users of this machine can read it "
        f"(mode {stat.S_IMODE(mode):03o}); run `chmod 600 {path}`."
    )


def live_credentials_problem(ws: Workspace) -> str | None:
    """The sentence ``sync`` would stop on in live mode for a missing credential, else None."""
    if ws.is_sandbox:
        return None
    try:
        ws.require_live_credentials()
    except ConfigError as exc:
        return exc.message
    return None


def probe_online(ws: Workspace) -> list[Probe]:
    """One cheap call per API and account against ``ws``'s endpoints (live or sandbox)."""
    probes = [_probe("SP-API", None, "getItemOffersBatch (1 ASIN)", lambda: _spapi(ws))]
    for account in ws.settings.accounts_on("base"):
        probes.append(_probe("BASE", account.id, "users/me", _base(ws, account)))
    for account in ws.settings.accounts_on("ebay"):
        probes += _ebay(ws, account)
    return probes


def _probe(
    api: str, account: str | None, what: str, call: Callable[[], str | tuple[str, str]]
) -> Probe:
    """Run ``call`` and sort its outcome into ok / refused / unreachable. ``call`` returns
    what the API said, or that and a next step (an answer a person should act on)."""
    try:
        answered = call()
    except (RetryableApiError, requests.ConnectionError, requests.Timeout) as exc:
        text = exc.message if isinstance(exc, InvsyncError) else exc.__class__.__name__
        return Probe(api, account, what, "unreachable", text, f"check the network, then {AGAIN}")
    except ApiAuthError as exc:
        return Probe(api, account, what, "refused", exc.message, _consent_step(api, account))
    except (ExternalApiError, ConfigError) as exc:
        return Probe(api, account, what, "refused", exc.message, f"fix what it names, then {AGAIN}")
    said, step = answered if isinstance(answered, tuple) else (answered, None)
    return Probe(api, account, what, "ok", said, step)


def _consent_step(api: str, account: str | None) -> str:
    if api == "SP-API":
        return (
            "check LWA_APP_ID, LWA_CLIENT_SECRET and SP_API_REFRESH_TOKEN (self-authorise the app "
            "again in Seller Central; docs/going-live.md)"
        )
    return f"connect the account again with `invsync auth {api.lower()} --account {account}`"


def _spapi(ws: Workspace) -> str:
    from pipeline.clients.spapi import SpApiClient

    with SpApiClient(ws) as client:
        answer = client.fetch_batch([PROBE_ASIN])
    first = answer.observations[0] if answer.observations else None
    status = getattr(first, "status", None) or "answered"
    return f"the call was accepted (Amazon says {PROBE_ASIN}: {status})"


def _base(ws: Workspace, account: Account) -> Callable[[], str]:
    def call() -> str:
        from pipeline.clients.factory import base_client

        user = base_client(ws, account).me()
        name = user.get("shop_name") or user.get("shop_id")
        return f"answered; shop {name}" if name else "answered"

    return call


def _ebay(ws: Workspace, account: Account) -> list[Probe]:
    from pipeline.clients.ebay import EbayClient
    from pipeline.clients.factory import ebay_client

    made: list[EbayClient] = []  # one client, one token refresh, for both calls

    def client() -> EbayClient:
        if not made:
            made.append(ebay_client(ws, account))
        return made[0]

    def inventory() -> str:
        first = next(iter(client().inventory_items(page_size=1)), None)
        return "answered; " + ("one item read" if first else "no inventory items")

    def preference() -> str | tuple[str, str]:
        if client().out_of_stock_control():
            return "Out-of-Stock Control is on"
        return (
            "Out-of-Stock Control is OFF: quantity 0 would end listings",
            "turn it on in My eBay › Account › Site Preferences › Selling preferences "
            "(out-of-stock option), or choose [pricing.ebay] out_of_stock_action "
            "(docs/load.md); until then invsync holds quantity-0 changes for this account",
        )

    return [
        _probe("eBay", account.id, "getInventoryItems (1 item)", inventory),
        _probe("eBay", account.id, "GetUserPreferences", preference),
    ]
