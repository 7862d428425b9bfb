"""Clients built from a workspace: the BASE and eBay clients load and ``listings pull`` use.

Reads the workspace's settings (``[load]`` retry knobs, sandbox time scale), its endpoints
(``BASE_API_URL``, ``EBAY_API_URL``) and secrets (client ids and secrets, each account's
refresh token); the BASE client keeps its rotated refresh token in the token store under the
data folder. Writes nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.clients import ebay as ebay_api
from pipeline.clients import thebase
from pipeline.clients.http import RetryPolicy
from pipeline.config import Account, Workspace
from pipeline.errors import ConfigError
from pipeline.tokens import RefreshTokenStore, store_path


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


def base_client(
    ws: Workspace, account: Account, before_call: Callable[[str], None] | None = None
) -> thebase.BaseShopClient:
    """A BASE client for one shop; ``before_call`` runs before every HTTP attempt (the
    call budget)."""
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
    """An eBay client for one seller account (Inventory and Trading APIs)."""
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
