"""Clients built from a workspace: the BASE and eBay clients load and ``listings pull`` use.

Reads the workspace's settings (``[load]`` retry knobs, sandbox time scale), its endpoints
(``BASE_API_URL``, ``EBAY_API_URL``), its secrets (client ids and secrets, each account's
refresh-token variable) and the token store under the data folder. Writes nothing itself
(the BASE client keeps its rotated refresh token in the store).

Each account's refresh token: the stored one (from ``invsync auth``, or BASE's rotation of an
earlier one) unless the environment holds a newer consent (:mod:`pipeline.tokens` says how
that is told); with neither, one sentence naming the variable and ``invsync auth``.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.clients import ebay as ebay_api
from pipeline.clients import thebase
from pipeline.clients.http import RetryPolicy
from pipeline.config import Account, Workspace
from pipeline.errors import ConfigError, MissingCredentialError
from pipeline.tokens import RefreshTokenStore, store_path, token_key

EBAY_TOKEN_VAR = "EBAY_REFRESH_TOKEN"  # an eBay account's variable unless it names its own


def time_scale(ws: Workspace) -> float:
    """The sandbox runs its clocks this many times faster (1 in live mode)."""
    return ws.settings.sandbox.time_scale if ws.is_sandbox else 1.0


def retry_policy(ws: Workspace) -> RetryPolicy:
    """The one HTTP retry policy of the platform clients, from ``[load]``."""
    knobs = ws.settings.load
    return RetryPolicy(
        max_attempts=knobs.max_attempts,
        backoff_base=knobs.backoff_base,
        backoff_max=knobs.backoff_max,
        timeout=knobs.http_timeout,
        time_scale=time_scale(ws),
    )


def platform_url(ws: Workspace, name: str, live: str) -> str:
    """The endpoint ``name`` points at: its setting, else ``live`` (never in sandbox mode)."""
    url = ws.endpoint(name)
    if url:
        return url
    if ws.is_sandbox:
        raise ConfigError(
            f"{name} is not set, and sandbox mode has no default; reach the APIs through "
            "`pipeline.apis.open_apis` (every invsync command does, and starts the sandbox), "
            "or start `invsync sandbox serve` and set it to the sandbox's URL."
        )
    return live


def refresh_token_var(account: Account) -> str:
    """The environment variable of the account's refresh token."""
    return account.refresh_token_env or EBAY_TOKEN_VAR


def token_store(ws: Workspace) -> RefreshTokenStore:
    return RefreshTokenStore(store_path(ws.data_dir))


def refresh_token(ws: Workspace, account: Account) -> str:
    """The refresh token to use for ``account`` now: the store's unless the environment's
    is newer; raises naming the variable and ``invsync auth`` when there is none."""
    seed = ws.env.get(refresh_token_var(account), "")
    token = token_store(ws).current(token_key(account.platform, account.id), seed)
    if not token:
        raise MissingCredentialError(
            f"{account.platform} account {account.id} has no refresh token: run `invsync auth "
            f"{account.platform} --account {account.id}`, or set "
            f"{refresh_token_var(account)} in the environment or .env."
        )
    return token


def base_client(
    ws: Workspace, account: Account, before_call: Callable[[str], None] | None = None
) -> thebase.BaseShopClient:
    """A BASE client for one shop; ``before_call`` runs before every HTTP attempt (the
    call budget). The client reads the store itself (it rotates), from the environment's
    token as the seed; :func:`refresh_token` checks first that one of them is there."""
    refresh_token(ws, account)
    return thebase.BaseShopClient(
        account_id=account.id,
        api_url=platform_url(ws, "BASE_API_URL", thebase.LIVE_URL),
        credentials=thebase.BaseCredentials(
            client_id=ws.secret("BASE_CLIENT_ID"),
            client_secret=ws.secret("BASE_CLIENT_SECRET"),
            redirect_uri=ws.secret("BASE_REDIRECT_URI"),
            refresh_token=ws.env.get(refresh_token_var(account), ""),
        ),
        token_store=token_store(ws),
        policy=retry_policy(ws),
        before_call=before_call,
    )


def ebay_client(ws: Workspace, account: Account) -> ebay_api.EbayClient:
    """An eBay client for one seller account (Inventory and Trading APIs); eBay does not
    rotate refresh tokens, so the store is read once here."""
    return ebay_api.EbayClient(
        account_id=account.id,
        api_url=platform_url(ws, "EBAY_API_URL", ebay_api.LIVE_URL),
        credentials=ebay_api.EbayCredentials(
            client_id=ws.secret("EBAY_CLIENT_ID"),
            client_secret=ws.secret("EBAY_CLIENT_SECRET"),
            refresh_token=refresh_token(ws, account),
        ),
        policy=retry_policy(ws),
    )
