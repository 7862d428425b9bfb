"""The design invsync replaces, rebuilt for the benchmark from its own write-up.

Stage: bench. Reads the listing tables (like the old master DB) and SP-API over HTTP
through the same python-amazon-sp-api ``Products`` client invsync uses (here: the
sandbox); writes nothing but an in-memory price cache.

What ``docs/origin/ISSUE_028_sync_inventory_daemon_sp_api_duplication.md`` describes
as the state before the fix ("実装前"), and what this module does:

* Phase 1 does nothing (``pass``).
* Phase 2, BASE: ``PriceSync.sync_all_accounts()`` calls ``sync_account_prices(account_id,
  skip_cache_update=False)`` for each shop, and each call fetches **all of that shop's
  ASINs** with ``get_prices_batch(asins, batch_size=20)``: getItemOffersBatch (the
  operation design §4 says the old system used), paced by the "existing rate-limit setting
  (12 s per batch)" that ISSUE #006 validated. We sleep 12 s (scaled) after each batch, as
  a ``time.sleep`` between calls does. The results fill the shared cache — the generous
  reading: the write-up says eBay *may* call again for ASINs BASE already fetched.
* Phase 2, eBay: for each listed ASIN, ``amazon_info`` comes from the cache; when it is
  missing or has no ``price_jpy`` (``auto_fetch_sp_api=True`` by default),
  ``fill_cache_for_asin`` calls ``get_product_price(asin)``: one getItemOffers per ASIN.
  The write-up names no pause for this path; we sleep ``single_interval`` (2.5 s by
  default: the 2 s that getItemOffers' 0.5 req/s needs plus a margin like the 12 s vs
  10 s of the batches) after each call. The cache-miss share is therefore measured, not
  assumed: the eBay ASINs that no BASE shop lists, plus those BASE fetched without a price.
* There is no retry: a 429 ``QuotaExceeded`` ends the run (the crash design §0 recalls).
  Per-ASIN errors (an invalid ASIN's 400) are logged and skipped, as the old code did.

Times: every pause is divided by the sandbox's time scale; the HTTP exchanges are not
scaled (they are local), so a real-quota time is the pauses as written (12 s, 2.5 s) plus
the time measured inside calls.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pipeline.clients.spapi import (
    CURRENCY_BY_MARKETPLACE,
    clear_token_cache,
    observation_from_offers,
    observations_from_item_offers,
    resolve_endpoints,
)
from pipeline.config import OfferPolicy, Workspace

BATCH_SIZE = 20  # ASINs per get_prices_batch call
BATCH_INTERVAL = 12.0  # seconds slept after each batch (ISSUE_028: 12秒/バッチ)
SINGLE_INTERVAL = 2.5  # seconds slept after each single-ASIN call (not in the write-up)
# The old code took the lowest price of any offer: no Prime/FBA/shipping-time policy.
ANY_OFFER = OfferPolicy(
    availability=["NOW", "FUTURE_WITHOUT_DATE", "FUTURE_WITH_DATE"], max_shipping_hours=None
)


@dataclass
class ReplacedResult:
    """One run of the replaced design: its calls and what stopped it."""

    batch_calls: int = 0  # getItemOffersBatch
    single_calls: int = 0  # getItemOffers
    throttled: int = 0  # 429s seen (the first one ends the run)
    errors: int = 0  # other failed calls (logged and skipped)
    died: bool = False  # ended by QuotaExceeded
    stopped: bool = False  # ended by the caller's deadline (bench/freshness_day.py)
    died_at_call: int | None = None
    seconds: float = 0.0  # wall time, this process
    paused_seconds: float = 0.0  # time slept between calls (scaled pauses), measured
    nominal_pause_seconds: float = 0.0  # the same pauses at the real quota (unscaled)
    call_seconds: float = 0.0  # time inside HTTP calls
    ebay_asins: int = 0
    cache_misses: int = 0  # eBay ASINs with no cached price → one call each
    per_account_batches: dict[str, int] = field(default_factory=dict)  # batch calls made

    @property
    def calls(self) -> int:
        return self.batch_calls + self.single_calls

    @property
    def real_quota_seconds(self) -> float:
        """The time at the real quota: the pauses as the old code slept them (12 s, 2.5 s),
        plus the time inside calls as measured (local round trips are not scaled)."""
        return self.nominal_pause_seconds + self.call_seconds


class _Stop(Exception):
    """QuotaExceeded: the replaced system had no retry, so the run ends here."""


def _products_client(ws: Workspace) -> Any:
    """python-amazon-sp-api's ``Products`` aimed at the workspace's endpoints."""
    from sp_api.api import Products
    from sp_api.auth import AccessTokenClient

    endpoints = resolve_endpoints(ws)
    scheme, _, host = endpoints.lwa.partition("://")

    class LocalLwa(AccessTokenClient):  # the library's documented override point
        pass

    LocalLwa.scheme = f"{scheme}://"
    LocalLwa.host = host
    marketplace = types.SimpleNamespace(
        endpoint=endpoints.spapi, marketplace_id=endpoints.marketplace_id, region=endpoints.region
    )
    clear_token_cache()
    client = Products(
        marketplace=marketplace,
        credentials={
            "refresh_token": ws.secret("SP_API_REFRESH_TOKEN"),
            "lwa_app_id": ws.secret("LWA_APP_ID"),
            "lwa_client_secret": ws.secret("LWA_CLIENT_SECRET"),
        },
        auth_token_client_class=LocalLwa,
    )
    client.endpoint = marketplace.endpoint  # SP_API_DEFAULT_MARKETPLACE must not win
    client.marketplace_id = marketplace.marketplace_id
    return client


def run(
    ws: Workspace,
    base_asins: Mapping[str, Sequence[str]],
    ebay_asins: Sequence[str],
    *,
    time_scale: float,
    batch_interval: float = BATCH_INTERVAL,
    single_interval: float = SINGLE_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> ReplacedResult:
    """One replaced-design sync: each BASE shop's ASINs in batches, then eBay's misses one
    by one. ``base_asins`` maps shop → its listed ASINs (in listing order). ``deadline``
    (``time.monotonic()`` seconds) ends the run before the next call once passed
    (``stopped``): the freshness bench's day is over."""
    from sp_api.base import SellingApiException, SellingApiRequestThrottledException

    result = ReplacedResult()
    client = _products_client(ws)
    marketplace_id = client.marketplace_id
    currency = CURRENCY_BY_MARKETPLACE.get(marketplace_id, "JPY")
    cache: dict[str, int | None] = {}  # ASIN → price_jpy (None: fetched, no price)
    started = time.monotonic()

    def pause(seconds: float) -> None:
        result.nominal_pause_seconds += seconds
        began = time.monotonic()
        sleep(seconds / time_scale)
        result.paused_seconds += time.monotonic() - began

    def call(fn: Callable[[], Any]) -> Any:
        began = time.monotonic()
        if deadline is not None and began >= deadline:
            result.stopped = True
            raise _Stop
        try:
            return fn()
        except SellingApiRequestThrottledException:
            result.throttled += 1
            result.died = True
            result.died_at_call = result.calls
            raise _Stop from None
        except SellingApiException:
            result.errors += 1
            return None
        finally:
            result.call_seconds += time.monotonic() - began

    try:
        client.auth  # noqa: B018 - the LWA token, outside the paced loop as in invsync
        for account, asins in base_asins.items():
            batches = [list(asins[i : i + BATCH_SIZE]) for i in range(0, len(asins), BATCH_SIZE)]
            for batch in batches:
                result.per_account_batches[account] = result.per_account_batches.get(account, 0) + 1
                requests_ = [
                    {
                        "uri": f"/products/pricing/v0/items/{asin}/offers",
                        "method": "GET",
                        "MarketplaceId": marketplace_id,
                        "ItemCondition": "New",
                    }
                    for asin in batch
                ]
                result.batch_calls += 1
                response = call(partial(client.get_item_offers_batch, requests_=requests_))
                if response is not None:
                    for obs in observations_from_item_offers(
                        response.payload, batch, ANY_OFFER, currency
                    ):
                        cache[obs.asin] = obs.price_jpy
                pause(batch_interval)
        result.ebay_asins = len(ebay_asins)
        for asin in ebay_asins:
            if cache.get(asin):
                continue  # a cache hit: no call
            result.cache_misses += 1
            result.single_calls += 1
            response = call(partial(client.get_item_offers, asin, item_condition="New"))
            if response is not None and isinstance(response.payload, dict):
                cache[asin] = observation_from_offers(
                    asin, response.payload, ANY_OFFER, currency
                ).price_jpy
            pause(single_interval)
    except _Stop:
        pass
    finally:
        client.close()
    result.seconds = time.monotonic() - started
    return result
