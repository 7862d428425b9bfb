"""Amazon SP-API through python-amazon-sp-api's ``Products`` client (Phase 1 only).

Stage: fetch. Reads the SP-API pricing operations over HTTP (Amazon, or the sandbox when
``SP_API_ENDPOINT`` / ``LWA_ENDPOINT`` or ``[amazon] endpoint`` / ``lwa_endpoint`` point
elsewhere); writes nothing. Phase 2 code never imports this module.

Two halves:

* :class:`SpApiClient` makes ONE HTTP call per :meth:`~SpApiClient.fetch_batch` (no
  retries, no pacing: :mod:`pipeline.fetch` and :mod:`pipeline.pacer` own those) and
  translates every failure into one of our exception types. An httpx event hook
  records when the request went on the wire and when its answer came back, with the
  HTTP status and the ``x-amzn-RateLimit-Limit`` header, because the library's
  ``ApiResponse`` has no status code and fetches its LWA token inside the first call.
* Pure parsers turn an answer's payload into one :class:`Observation` per requested
  ASIN: ``observations_from_item_offers`` (getItemOffersBatch, with the offer policy),
  ``observation_from_item_offers`` (getItemOffers, one ASIN, the same offer model and
  policy: the pooled lane ``item_offers_single``) and
  ``observations_from_competitive_pricing`` (getCompetitivePricing).

Money: amounts arrive as JSON numbers; they are read as ``Decimal`` (never float) and
turned into integer minor units of the marketplace currency (yen for JP) with
ROUND_HALF_UP. The landed price is ``listing + shipping − points``, computed here from the
parts for both operations, so Points are always deducted.
"""

from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipeline.config import LWA_DEFAULT_ENDPOINT, OfferPolicy, Workspace
from pipeline.errors import ApiAuthError, ConfigError
from pipeline.errors import MoneyError as MoneyError
from pipeline.errors import SpApiCallError as SpApiCallError
from pipeline.errors import SpApiForbidden as SpApiForbidden
from pipeline.errors import SpApiRequestRejected as SpApiRequestRejected
from pipeline.errors import SpApiThrottled as SpApiThrottled
from pipeline.errors import SpApiTransientError as SpApiTransientError
from pipeline.redact import remember

# The library logs request headers (the access token) at DEBUG: keep it above that.
for _name in ("sp_api", "sp_api.base.client", "sp_api.auth.access_token_client"):
    logging.getLogger(_name).setLevel(logging.INFO)
for _name in ("httpx", "httpcore"):  # one line per request is noise; the run records calls
    logging.getLogger(_name).setLevel(logging.WARNING)

# Snapshot operations (the configured ones and the pooled lane getItemOffers, see
# pipeline.pool) → Amazon's operationId (the sandbox ledger's key too).
OPERATION_IDS = {
    "item_offers": "getItemOffersBatch",
    "item_offers_single": "getItemOffers",
    "competitive_pricing": "getCompetitivePricing",
}
MAX_BATCH = 20  # ASINs per call for both batched operations
MAX_ASINS = {"item_offers": 20, "item_offers_single": 1, "competitive_pricing": 20}
CURRENCY_BY_MARKETPLACE = {"A1VC38T7YXB528": "JPY"}
_MINOR_UNIT_EXPONENT = {"JPY": 0, "USD": 2, "EUR": 2, "GBP": 2}
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)  # seconds

FACT_STATUSES = ("ok", "no_offer", "filtered_out")
OFFERS_NOT_LISTED = "OffersNotListed"  # error code: a Success counting offers, listing none  # Amazon answered about the ASIN itself


# --- the wire exchange ---------------------------------------------------------------


@dataclass
class Exchange:
    """Timing and headers of one SP-API HTTP exchange (clock seconds)."""

    sent_at: float | None = None  # request went on the wire (after the LWA call)
    answered_at: float | None = None  # response headers arrived
    status: int | None = None
    rate_header: str | None = None  # x-amzn-RateLimit-Limit, when sent
    size: int | None = None  # response bytes (Content-Length), when sent


@dataclass
class Observation:
    """What one answer says about one ASIN: a snapshot row without run fields."""

    asin: str
    status: str
    price_jpy: int | None = None  # landed: listing + shipping − points (minor units)
    listing_price_jpy: int | None = None
    shipping_jpy: int | None = None
    points_jpy: int | None = None
    in_stock: bool | None = None
    offer_count: int | None = None
    eligible_offer_count: int | None = None
    seller_id: str | None = None
    is_prime: bool | None = None
    is_fba: bool | None = None
    availability_type: str | None = None
    max_shipping_hours: int | None = None
    error_code: str | None = None
    # not a snapshot column: False when the failure is Amazon's answer about the item (a
    # status such as ActiveButTooSoonForProcessing), which asking again minutes later in the
    # same run would only repeat; the fetch's retry pass leaves such ASINs out
    retry_in_run: bool = field(default=True, repr=False)

    @classmethod
    def failed(cls, asin: str, code: str, status: str = "api_error") -> Observation:
        return cls(asin=asin, status=status, error_code=code)

    @classmethod
    def priced(cls, asin: str, price: Price, **details: Any) -> Observation:
        """An ``ok``, in-stock observation at ``price`` (its landed total and parts); a
        landed price of zero or less is no price at all, so it is an error instead."""
        if price.landed <= 0:
            return cls.failed(asin, "ImplausiblePrice")
        return cls(
            asin=asin,
            status="ok",
            price_jpy=price.landed,
            listing_price_jpy=price.listing,
            shipping_jpy=price.shipping,
            points_jpy=price.points,
            in_stock=True,
            **details,
        )


@dataclass
class BatchAnswer:
    """One successful call: an observation per requested ASIN, and the exchange."""

    observations: list[Observation]
    exchange: Exchange = field(default_factory=Exchange)


# --- money ----------------------------------------------------------------------------


def minor_units(money: Any, currency: str, *, required: bool = True) -> int | None:
    """A v0 ``Money`` ({"CurrencyCode", "Amount"}) as integer minor units of ``currency``
    (yen for JPY, cents for USD), rounding half up. Missing and not required → None."""
    if money is None:
        if required:
            raise MoneyError("MissingPrice")
        return None
    if not isinstance(money, Mapping):
        raise MoneyError("MalformedMoney")
    code = money.get("CurrencyCode")
    if code != currency:
        raise MoneyError("UnexpectedCurrency")
    try:
        amount = Decimal(str(money.get("Amount")))
    except InvalidOperation:
        raise MoneyError("MalformedMoney") from None
    if not amount.is_finite():
        raise MoneyError("MalformedMoney")
    exponent = _MINOR_UNIT_EXPONENT.get(currency, 2)
    scaled = (amount * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(scaled)


def points_units(points: Any, currency: str) -> int:
    """Amazon Points as minor units: PointsMonetaryValue, else (JP) one yen per point."""
    if not isinstance(points, Mapping):
        return 0
    monetary = points.get("PointsMonetaryValue")
    if monetary is not None:
        return minor_units(monetary, currency) or 0
    number = points.get("PointsNumber")
    if currency == "JPY" and isinstance(number, int) and number > 0:
        return number
    return 0


@dataclass(frozen=True)
class Price:
    """One offer's price parts in minor units; ``landed`` deducts the points."""

    listing: int
    shipping: int
    points: int

    @property
    def landed(self) -> int:
        return self.listing + self.shipping - self.points


def price_of(listing: Any, shipping: Any, points: Any, currency: str) -> Price:
    return Price(
        listing=minor_units(listing, currency) or 0,
        shipping=minor_units(shipping, currency, required=False) or 0,
        points=points_units(points, currency),
    )


# --- offer policy ----------------------------------------------------------------------


def offer_availability(offer: Mapping[str, Any]) -> str:
    """``ShippingTime.availabilityType``; an offer that omits it ships now."""
    shipping_time = offer.get("ShippingTime") or {}
    return str(shipping_time.get("availabilityType") or "NOW")


def offer_max_hours(offer: Mapping[str, Any]) -> int | None:
    value = (offer.get("ShippingTime") or {}).get("maximumHours")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def offer_is_prime(offer: Mapping[str, Any]) -> bool:
    return bool((offer.get("PrimeInformation") or {}).get("IsPrime"))


def offer_is_fba(offer: Mapping[str, Any]) -> bool:
    return bool(offer.get("IsFulfilledByAmazon"))


def policy_rejections(offer: Mapping[str, Any], policy: OfferPolicy) -> list[str]:
    """Why ``offer`` does not pass ``policy`` (empty when it passes). An offer without a
    maximum shipping time fails a ``max_shipping_hours`` limit: unknown is not fast."""
    reasons = []
    if policy.require_prime and not offer_is_prime(offer):
        reasons.append("not Prime")
    if policy.require_fba and not offer_is_fba(offer):
        reasons.append("not FBA")
    if offer_availability(offer) not in policy.availability:
        reasons.append(f"availability {offer_availability(offer)}")
    if policy.max_shipping_hours is not None:
        hours = offer_max_hours(offer)
        if hours is None or hours > policy.max_shipping_hours:
            reasons.append(f"ships in {hours if hours is not None else 'unknown'} h")
    return reasons


def _new_offer_count(summary: Mapping[str, Any], condition: str) -> int | None:
    counts = summary.get("NumberOfOffers")
    if isinstance(counts, list) and counts:
        wanted = condition.lower()
        total = sum(
            int(c.get("OfferCount") or 0)
            for c in counts
            if isinstance(c, Mapping) and str(c.get("condition", "")).lower() == wanted
        )
        return total
    total_count = summary.get("TotalOfferCount")
    return int(total_count) if isinstance(total_count, int) else None


def doubtful_item_status(status: str, offer_count: int, offers: list[Any]) -> str | None:
    """Why a ``GetOffersResult`` cannot be read as a fact about the ASIN (its error code), or
    None when it can. The v0 model types ``status`` only as "the status of the operation":
    ``Success`` lists the offers, ``NoBuyableOffers`` has none; any other status (e.g.
    ``ActiveButTooSoonForProcessing``: offers exist but are not processable yet, see
    ``Summary.OffersAvailableTime``) is no observation at all, and neither is a ``Success``
    that counts offers of the condition asked for but lists none (the model: the list is
    as long as the count, or 20). Either is doubtful — fetched as failed so fallback or
    unknown applies — never "no offer"."""
    if status and status not in ("Success", "NoBuyableOffers"):
        return status
    if status == "Success" and offer_count > 0 and not offers:
        return OFFERS_NOT_LISTED
    return None


def observation_from_offers(
    asin: str, result: Mapping[str, Any], policy: OfferPolicy, currency: str
) -> Observation:
    """One ``GetOffersResult`` → an observation: the lowest landed price (points deducted)
    among the offers that pass the policy; ties go to the buy-box winner, then FBA, then
    the seller id, so the choice is deterministic."""
    summary = result.get("Summary") or {}
    offers = result.get("Offers")
    if not isinstance(offers, list):
        offers = []
    offer_count = _new_offer_count(summary, policy.condition)
    if offer_count is None:
        offer_count = len(offers)
    status = str(result.get("status", ""))
    doubt = doubtful_item_status(status, offer_count, offers)
    if doubt is not None:
        return Observation(
            asin=asin, status="api_error", offer_count=offer_count, error_code=doubt,
            retry_in_run=doubt == OFFERS_NOT_LISTED,  # a stated status stays a while
        )  # fmt: skip
    if status == "NoBuyableOffers" or not offers:
        return Observation(
            asin=asin, status="no_offer", in_stock=False, offer_count=offer_count,
            eligible_offer_count=0,
        )  # fmt: skip
    candidates: list[tuple[Price, Mapping[str, Any]]] = []
    try:
        for offer in offers:
            if not isinstance(offer, Mapping) or policy_rejections(offer, policy):
                continue
            price = price_of(
                offer.get("ListingPrice"), offer.get("Shipping"), offer.get("Points"), currency
            )
            candidates.append((price, offer))
    except MoneyError as exc:
        return Observation.failed(asin, exc.code)
    if not candidates:
        return Observation(
            asin=asin, status="filtered_out", in_stock=False,
            offer_count=max(offer_count, len(offers)), eligible_offer_count=0,
        )  # fmt: skip
    price, best = min(
        candidates,
        key=lambda c: (
            c[0].landed,
            not bool(c[1].get("IsBuyBoxWinner")),
            not offer_is_fba(c[1]),
            str(c[1].get("SellerId") or ""),
        ),
    )
    return Observation.priced(
        asin,
        price,
        offer_count=max(offer_count, len(offers)),
        eligible_offer_count=len(candidates),
        seller_id=best.get("SellerId"),
        is_prime=offer_is_prime(best),
        is_fba=offer_is_fba(best),
        availability_type=offer_availability(best),
        max_shipping_hours=offer_max_hours(best),
    )


def _item_error(asin: str, http_status: int, body: Mapping[str, Any]) -> Observation:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    first = (
        errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    )
    code = str(first.get("code") or f"HTTP{http_status}")
    message = str(first.get("message") or "").lower()
    invalid = http_status in (400, 404) and (
        code in ("InvalidInput", "INVALID_ASIN", "NotFound", "InvalidParameterValue")
        and ("asin" in message or "invalid" in message or "not found" in message)
    )
    return Observation.failed(asin, code, status="invalid_asin" if invalid else "api_error")


def _asin_of_batch_response(item: Mapping[str, Any]) -> str | None:
    request = item.get("request")
    if isinstance(request, Mapping) and request.get("Asin"):
        return str(request["Asin"])
    body = item.get("body")
    payload = body.get("payload") if isinstance(body, Mapping) else None
    if isinstance(payload, Mapping):
        for key in ("ASIN", "asin"):
            if payload.get(key):
                return str(payload[key])
        identifier = payload.get("Identifier")
        if isinstance(identifier, Mapping) and identifier.get("ASIN"):
            return str(identifier["ASIN"])
    return None


def observations_from_item_offers(
    payload: Any, asins: Sequence[str], policy: OfferPolicy, currency: str
) -> list[Observation]:
    """A getItemOffersBatch payload ({"responses": [...]}) → one observation per ASIN
    requested, in request order. An ASIN the answer does not mention is an api_error."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("responses"), list):
        raise SpApiTransientError(
            "SP-API getItemOffersBatch answered without a responses list; retrying.",
            "MalformedResponse",
        )
    found: dict[str, Observation] = {}
    for position, item in enumerate(payload["responses"]):
        if not isinstance(item, Mapping):
            continue
        asin = _asin_of_batch_response(item)
        if asin is None and position < len(asins):
            asin = asins[position]  # responses come in request order
        if asin is None or asin not in asins or asin in found:
            continue
        status = item.get("status") or {}
        http_status = int(status.get("statusCode") or 0) if isinstance(status, Mapping) else 0
        body = item.get("body") or {}
        if http_status != 200:
            found[asin] = _item_error(asin, http_status, body)
            continue
        result = body.get("payload") if isinstance(body, Mapping) else None
        if not isinstance(result, Mapping):
            found[asin] = Observation.failed(asin, "MalformedItem")
            continue
        found[asin] = observation_from_offers(asin, result, policy, currency)
    return [found.get(a) or Observation.failed(a, "MissingFromResponse") for a in asins]


def observation_from_item_offers(
    payload: Any, asin: str, policy: OfferPolicy, currency: str
) -> Observation:
    """A getItemOffers payload (one ``GetOffersResult``) → the ASIN's observation, read
    exactly as one item of a getItemOffersBatch answer (the same model, the same policy)."""
    if not isinstance(payload, Mapping) or not payload:
        raise SpApiTransientError(
            "SP-API getItemOffers answered without a payload; retrying.", "MalformedResponse"
        )
    return observation_from_offers(asin, payload, policy, currency)


def _is_new_buy_box(entry: Mapping[str, Any]) -> bool:
    return (
        str(entry.get("CompetitivePriceId")) == "1"
        and str(entry.get("condition") or "New").lower() == "new"
        and str(entry.get("offerType") or "B2C") == "B2C"
        and entry.get("quantityTier") in (None, 1)
    )


def observation_from_competitive_price(
    asin: str, item: Mapping[str, Any], currency: str
) -> Observation:
    """One getCompetitivePricing ``Price`` → an observation: the New buy box's landed
    price (points deducted); in stock exactly when a New buy box exists."""
    status = str(item.get("status") or "")
    if status != "Success":
        code = status or "MissingStatus"
        return Observation.failed(
            asin, code, status="invalid_asin" if status == "ClientError" else "api_error"
        )
    product = item.get("Product") or {}
    pricing = product.get("CompetitivePricing") if isinstance(product, Mapping) else None
    pricing = pricing if isinstance(pricing, Mapping) else {}
    offer_count = None
    listings = pricing.get("NumberOfOfferListings")
    if isinstance(listings, list):
        offer_count = sum(
            int(c.get("Count") or 0)
            for c in listings
            if isinstance(c, Mapping) and str(c.get("condition", "")).lower() == "new"
        )
    prices = pricing.get("CompetitivePrices")
    buy_box = next(
        (p for p in prices if isinstance(p, Mapping) and _is_new_buy_box(p)), None
    ) if isinstance(prices, list) else None  # fmt: skip
    if buy_box is None:
        return Observation(
            asin=asin, status="no_offer", in_stock=False, offer_count=offer_count or 0
        )
    parts = buy_box.get("Price") or {}
    try:
        price = price_of(
            parts.get("ListingPrice"), parts.get("Shipping"), parts.get("Points"), currency
        )
    except MoneyError as exc:
        return Observation.failed(asin, exc.code)
    return Observation.priced(
        asin,
        price,
        offer_count=offer_count if offer_count is not None else 1,
        seller_id=buy_box.get("sellerId"),
    )


def _asin_of_price(item: Mapping[str, Any]) -> str | None:
    if item.get("ASIN"):
        return str(item["ASIN"])
    product = item.get("Product")
    if isinstance(product, Mapping):
        ident = (product.get("Identifiers") or {}).get("MarketplaceASIN") or {}
        if isinstance(ident, Mapping) and ident.get("ASIN"):
            return str(ident["ASIN"])
    return None


def observations_from_competitive_pricing(
    payload: Any, asins: Sequence[str], currency: str
) -> list[Observation]:
    """A getCompetitivePricing payload (a list of ``Price``) → one observation per ASIN
    requested. The library hands back an empty dict for an error body it cannot parse:
    anything but a list is an error, never "no offers"."""
    if not isinstance(payload, list):
        raise SpApiTransientError(
            "SP-API getCompetitivePricing answered without a list payload; retrying.",
            "MalformedResponse",
        )
    found: dict[str, Observation] = {}
    for item in payload:
        if not isinstance(item, Mapping):
            continue
        asin = _asin_of_price(item)
        if asin is None or asin not in asins or asin in found:
            continue
        found[asin] = observation_from_competitive_price(asin, item, currency)
    return [found.get(a) or Observation.failed(a, "MissingFromResponse") for a in asins]


# --- the client ------------------------------------------------------------------------


# --- what invsync relies on inside python-amazon-sp-api ---------------------------------

LIBRARY_REQUIREMENT = "python-amazon-sp-api>=2.1.20,<3"  # as pyproject.toml pins it


def library_problems(products: Any | None = None) -> list[str]:
    """What invsync uses of python-amazon-sp-api beyond its documented surface, and is not
    where invsync expects it (empty: all is in place). ``products``: a ``Products`` client
    to check its instance internals too.

    * ``sp_api.auth.access_token_client.cache`` — the process-wide LWA token cache, cleared
      between servers (:func:`clear_token_cache`);
    * ``AccessTokenClient.scheme`` / ``.host`` / ``.path`` — the LWA URL, overridden by a
      subclass to reach another endpoint (:func:`_lwa_client_class`);
    * ``Client.__init__(auth_token_client_class=, timeout=)`` and the ``Client.auth``
      property (fetches and caches the token: :meth:`SpApiClient._token`);
    * ``AccessTokenClient.get_auth()`` returning an object with ``.access_token`` — wrapped
      so the token is held for redaction (:func:`_lwa_client_class`);
    * ``AuthorizationError.status_code`` / ``.error_code`` (LWA refusals);
    * ``products._transport._client`` — the library's ``httpx.Client``, whose event hooks
      time each exchange (:class:`SpApiClient`).
    """
    import inspect

    from sp_api.auth import AccessTokenClient, access_token_client
    from sp_api.auth.exceptions import AuthorizationError
    from sp_api.base import Client

    problems = []
    if not callable(getattr(getattr(access_token_client, "cache", None), "clear", None)):
        problems.append("sp_api.auth.access_token_client.cache (the LWA token cache)")
    for name in ("scheme", "host", "path"):
        if not isinstance(getattr(AccessTokenClient, name, None), str):
            problems.append(f"AccessTokenClient.{name} (the LWA endpoint)")
    if not callable(getattr(AccessTokenClient, "get_auth", None)):
        problems.append("AccessTokenClient.get_auth (the LWA token, held for redaction)")
    parameters = inspect.signature(Client.__init__).parameters
    for name in ("auth_token_client_class", "timeout"):
        if name not in parameters:
            problems.append(f"Client(..., {name}=)")
    if not isinstance(inspect.getattr_static(Client, "auth", None), property):
        problems.append("Client.auth (the property that fetches the access token)")
    refusal = AuthorizationError("invalid_grant", "", 400)
    if getattr(refusal, "status_code", None) != 400 or getattr(refusal, "error_code", "") == "":
        problems.append("AuthorizationError.status_code / .error_code")
    if products is not None:
        transport = getattr(products, "_transport", None)
        if not isinstance(getattr(transport, "_client", None), httpx.Client):
            problems.append("Products._transport._client (the httpx.Client invsync times)")
    return problems


def check_library(products: Any | None = None) -> None:
    """Raise one clear :class:`ConfigError` when :func:`library_problems` finds any."""
    problems = library_problems(products)
    if problems:
        from importlib.metadata import version

        raise ConfigError(
            f"python-amazon-sp-api {version('python-amazon-sp-api')} no longer has what "
            f"invsync relies on ({'; '.join(problems)}); install {LIBRARY_REQUIREMENT} "
            "(`make setup`) or adapt pipeline/clients/spapi.py."
        )


def _lwa_client_class(lwa_endpoint: str) -> type:
    """An ``AccessTokenClient`` subclass aimed at ``lwa_endpoint`` (scheme://host[:port])."""
    from sp_api.auth import AccessTokenClient

    parts = urlsplit(lwa_endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"LWA endpoint {lwa_endpoint!r} is not an http(s) URL; fix LWA_ENDPOINT or "
            "[amazon] lwa_endpoint."
        )
    attributes: dict[str, Any] = {"scheme": f"{parts.scheme}://", "host": parts.netloc}
    if parts.path and parts.path != "/":
        attributes["path"] = parts.path

    def get_auth(self: Any) -> Any:
        # the LWA access token this process now holds: masked wherever text goes
        auth = AccessTokenClient.get_auth(self)
        remember(getattr(auth, "access_token", None))
        return auth

    attributes["get_auth"] = get_auth
    return type("InvsyncAccessTokenClient", (AccessTokenClient,), attributes)


def clear_token_cache() -> None:
    """Forget every cached LWA access token (the library's cache is process-wide and
    not keyed by host: a token from one server must not reach another)."""
    from sp_api.auth import access_token_client

    access_token_client.cache.clear()


@dataclass(frozen=True)
class Endpoints:
    spapi: str
    lwa: str
    marketplace_id: str
    region: str


def resolve_endpoints(ws: Workspace) -> Endpoints:
    """Environment overrides first, then ``[amazon]`` keys, then the marketplace's own."""
    amazon = ws.settings.amazon
    market = amazon.market
    spapi = ws.endpoint("SP_API_ENDPOINT") or amazon.endpoint or market.endpoint
    lwa = ws.endpoint("LWA_ENDPOINT") or amazon.lwa_endpoint or LWA_DEFAULT_ENDPOINT
    return Endpoints(
        spapi=spapi.rstrip("/"), lwa=lwa.rstrip("/"),
        marketplace_id=market.marketplace_id, region=market.region,
    )  # fmt: skip


class SpApiClient:
    """One ``Products`` client for one run; one HTTP call per :meth:`fetch_batch`."""

    def __init__(
        self,
        ws: Workspace,
        operation: str | None = None,
        *,
        clock: Any = time.monotonic,
        timeout: httpx.Timeout = REQUEST_TIMEOUT,
    ) -> None:
        from sp_api.api import Products

        settings = ws.settings.amazon
        self.operation = operation or settings.operation
        if self.operation not in OPERATION_IDS:
            raise ConfigError(
                f"[amazon] operation {self.operation!r} is unknown; use item_offers or "
                "competitive_pricing."
            )
        self.operation_id = OPERATION_IDS[self.operation]
        self.policy = settings.offer_policy
        self.endpoints = resolve_endpoints(ws)
        self.currency = CURRENCY_BY_MARKETPLACE.get(self.endpoints.marketplace_id, "JPY")
        self._secrets = {
            "refresh_token": ws.secret("SP_API_REFRESH_TOKEN"),
            "lwa_app_id": ws.secret("LWA_APP_ID"),
            "lwa_client_secret": ws.secret("LWA_CLIENT_SECRET"),
        }
        self._clock = clock
        self._lock = threading.Lock()
        self._exchange = Exchange()
        marketplace = types.SimpleNamespace(
            endpoint=self.endpoints.spapi,
            marketplace_id=self.endpoints.marketplace_id,
            region=self.endpoints.region,
        )
        clear_token_cache()
        try:
            self._products = Products(
                marketplace=marketplace,
                credentials=dict(self._secrets),
                auth_token_client_class=_lwa_client_class(self.endpoints.lwa),
                timeout=timeout,
            )
        except KeyError:
            raise ConfigError(
                "SP_API_DEFAULT_MARKETPLACE names an unknown marketplace; unset it "
                "(invsync chooses the marketplace from [amazon] marketplace)."
            ) from None
        # SP_API_DEFAULT_MARKETPLACE silently overrides `marketplace=`: set ours again.
        self._products.endpoint = marketplace.endpoint
        self._products.marketplace_id = marketplace.marketplace_id
        self._products.region = marketplace.region
        # Time each exchange on the wire (public httpx hooks on the library's own client,
        # reached through its internals: checked first, so a moved one says so clearly).
        check_library(self._products)
        http: httpx.Client = self._products._transport._client
        http.event_hooks = {"request": [self._on_request], "response": [self._on_response]}
        self.calls = 0

    def close(self) -> None:
        self._products.close()

    def __enter__(self) -> SpApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_request(self, request: httpx.Request) -> None:
        with self._lock:
            self._exchange.sent_at = self._clock()

    def _on_response(self, response: httpx.Response) -> None:
        with self._lock:
            self._exchange.answered_at = self._clock()
            self._exchange.status = response.status_code
            self._exchange.rate_header = response.headers.get("x-amzn-RateLimit-Limit")
            length = response.headers.get("content-length", "")
            self._exchange.size = int(length) if length.isdigit() else None

    def warm_token(self) -> None:
        """Fetch the LWA access token now, so the first paced call carries no LWA time."""
        self._token()

    def _token(self) -> None:
        from sp_api.auth.exceptions import AuthorizationError

        try:
            self._products.auth  # noqa: B018 - the property fetches and caches the token
        except AuthorizationError as exc:
            status = int(exc.status_code or 0)
            if status >= 500 or status == 429:
                raise SpApiTransientError(
                    f"The LWA token endpoint {self.endpoints.lwa} answered {status}; retrying.",
                    f"LWA{status}",
                ) from None
            raise ApiAuthError(
                f"Login with Amazon refused the SP-API credentials ({exc.error_code or status}); "
                "check SP_API_REFRESH_TOKEN, LWA_APP_ID and LWA_CLIENT_SECRET, or re-authorise "
                "the app in Seller Central."
            ) from None
        except (httpx.TransportError, ValueError) as exc:
            raise SpApiTransientError(
                f"The LWA token endpoint {self.endpoints.lwa} could not be read "
                f"({type(exc).__name__}); retrying.",
                "LWAUnavailable",
            ) from None

    def forget_token(self) -> None:
        clear_token_cache()

    def fetch_batch(self, asins: Sequence[str]) -> BatchAnswer:
        """Ask Amazon about up to 20 distinct ASINs (1 for ``item_offers_single``) in ONE
        call."""
        from sp_api.base import SellingApiException

        most = MAX_ASINS[self.operation]
        if not asins or len(asins) > most or len(set(asins)) != len(asins):
            raise ValueError(f"a batch holds 1 to {most} distinct ASINs")  # a bug in the caller
        self._token()
        with self._lock:
            self._exchange = Exchange()
        self.calls += 1
        try:
            if self.operation == "item_offers":
                requests_ = [
                    {
                        "uri": f"/products/pricing/v0/items/{asin}/offers",
                        "method": "GET",
                        "MarketplaceId": self.endpoints.marketplace_id,
                        "ItemCondition": self.policy.condition,
                        "CustomerType": "Consumer",
                    }
                    for asin in asins
                ]
                response = self._products.get_item_offers_batch(requests_=requests_)
            elif self.operation == "item_offers_single":
                response = self._products.get_item_offers(
                    asins[0], item_condition=self.policy.condition, customer_type="Consumer"
                )
            else:
                response = self._products.get_competitive_pricing_for_asins(list(asins))
        except SellingApiException as exc:
            rejected = self._single_item_error(asins, exc)
            if rejected is not None:
                return rejected
            raise self._classify_library_error(exc) from None
        except httpx.TimeoutException:
            raise SpApiTransientError(
                f"SP-API {self.operation_id} timed out; retrying.", "Timeout", self._snapshot()
            ) from None
        except httpx.TransportError as exc:
            raise SpApiTransientError(
                f"SP-API {self.operation_id} could not be reached ({type(exc).__name__}); "
                "retrying.",
                "ConnectionError",
                self._snapshot(),
            ) from None
        exchange = self._snapshot()
        if exchange.status is not None and exchange.status >= 400:
            # The library returns an error body without "errors" as a normal response.
            raise self._classify_status(exchange.status, None, exchange)
        if self.operation == "item_offers":
            observations = observations_from_item_offers(
                response.payload, asins, self.policy, self.currency
            )
        elif self.operation == "item_offers_single":
            observations = [
                observation_from_item_offers(response.payload, asins[0], self.policy, self.currency)
            ]
        else:
            observations = observations_from_competitive_pricing(
                response.payload, asins, self.currency
            )
        return BatchAnswer(observations=observations, exchange=exchange)

    def _single_item_error(self, asins: Sequence[str], exc: Any) -> BatchAnswer | None:
        """getItemOffers answers an invalid ASIN with a request-level 400 (the batch puts
        the same error on its item): read it as the item's answer, as the batch's is read.
        None for any other failure (classified as a failed call)."""
        exchange = self._snapshot()
        status = exchange.status or int(getattr(exc, "code", 0) or 0)
        if self.operation != "item_offers_single" or status not in (400, 404):
            return None
        errors = getattr(exc, "error", None)
        observation = _item_error(asins[0], status, {"errors": errors})
        if observation.status != "invalid_asin":
            return None
        return BatchAnswer(observations=[observation], exchange=exchange)

    def _snapshot(self) -> Exchange:
        with self._lock:
            return Exchange(**vars(self._exchange))

    def _classify_library_error(self, exc: Any) -> SpApiCallError:
        exchange = self._snapshot()
        status = exchange.status or int(getattr(exc, "code", 0) or 0)
        return self._classify_status(status, getattr(exc, "amzn_code", None), exchange)

    def _classify_status(
        self, status: int, amzn_code: str | None, exchange: Exchange
    ) -> SpApiCallError:
        op = self.operation_id
        code = str(amzn_code or f"HTTP{status}")
        if status == 429:
            return SpApiThrottled(f"SP-API {op} answered 429 {code}.", code, exchange)
        if status in (401, 403):
            return SpApiForbidden(f"SP-API {op} refused the access token ({code}).", code, exchange)
        if status in (400, 404, 409, 413, 415, 422):
            return SpApiRequestRejected(
                f"SP-API {op} rejected the request ({status} {code}).", code, exchange
            )
        return SpApiTransientError(f"SP-API {op} failed ({status} {code}).", code, exchange)


def distinct(asins: Iterable[str]) -> list[str]:
    """``asins`` without repeats, first occurrence kept (a duplicate in a batch is a 400)."""
    return list(dict.fromkeys(asins))
