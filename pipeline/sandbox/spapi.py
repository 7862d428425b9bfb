"""The sandbox's Amazon side: the LWA token endpoint and three Product Pricing v0 operations.

Stage: sandbox. Reads the catalogue (``state.apis["catalogue"]``), the fault knobs and the
rate buckets of :class:`~pipeline.sandbox.state.SandboxState`; writes the call ledger.

Routes (wire notes: tests/contracts/NOTES-sp-api.md; model: tests/contracts/sp-api/productPricingV0.json):

* ``POST /auth/o2/token`` — LWA refresh-token grant (form or JSON body).
* ``POST /batches/products/pricing/v0/itemOffers`` — getItemOffersBatch, 0.1 req/s, burst 1.
* ``GET /products/pricing/v0/items/{Asin}/offers`` — getItemOffers, 0.5 req/s, burst 1.
* ``GET /products/pricing/v0/competitivePrice`` — getCompetitivePricing, 0.5 req/s, burst 1.

Each SP-API call passes the shared gate (:mod:`pipeline.sandbox.gate`), in order: outage
window (503) → access token (403) → throttle storm (429) → rate bucket (429) → error/HTML
faults (500/503) → request validation (400/404) → the answer (200, perhaps cut-off JSON).
``x-amzn-RateLimit-Limit`` rides on 200/400/404 only. LWA takes the same gate with no
storm, no bucket and only the ``error_rate.token`` fault. Access tokens expire on the
sandbox clock (``state.clock``), so advancing it expires them. Amounts are JPY, sent as JSON numbers with a decimal point (``1280.0``)
as Amazon sends them, so a parser that assumes integers fails here as it would live.

With a change process running (``process.py``, "Amazon in time" in docs/sandbox.md), every
SP-API answer first advances it to now, so each answer shows the world at its moment.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import flask

from pipeline.sandbox import process
from pipeline.sandbox.catalogue import Catalogue, Offer, catalogue_of
from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.sandbox.gate import Call, Dialect, Gate, Refused, Reply
from pipeline.sandbox.state import SandboxState

MARKETPLACE_JP = "A1VC38T7YXB528"
# operationId -> (documented rate in requests per second, burst)
RATES: dict[str, tuple[float, int]] = {
    "getItemOffersBatch": (0.1, 1),
    "getItemOffers": (0.5, 1),
    "getCompetitivePricing": (0.5, 1),
}
MAX_ITEMS = 20
ITEM_CONDITIONS = ("New", "Used", "Collectible", "Refurbished", "Club")
CUSTOMER_TYPES = ("Consumer", "Business")
_OFFERS_URI = re.compile(r"^/products/pricing/v0/items/([^/?#]+)/offers$")

QUOTA_EXCEEDED = {
    "code": "QuotaExceeded",
    "message": "You exceeded your quota for the requested resource.",
    "details": "",
}
INTERNAL_FAILURE = {
    "code": "InternalFailure",
    "message": "We encountered an internal error. Please try again.",
    "details": "",
}
SERVICE_UNAVAILABLE = {
    "code": "ServiceUnavailable",
    "message": "Service is temporarily unavailable. Please try again later.",
    "details": "",
}
TOO_SOON = "ActiveButTooSoonForProcessing"  # GetOffersResult.status; offers not processable yet
TOO_SOON_MINUTES = 15  # OffersAvailableTime: this long after the answer (sandbox clock)
DUPLICATE_REQUESTS = "Duplicate requests submitted. Cannot run batch request."
INVALID_MARKETPLACE = "Requested MarketplaceId is invalid, unsupported, or does not exist."

# Access tokens carry their own expiry and an HMAC, so any sandbox in any process accepts
# the tokens another one issued (the client's token cache outlives a test's server).
_TOKEN_KEY = hashlib.sha256(b"invsync-sandbox-lwa-signing-key").digest()
_LWA_CLIENT = (DEMO_ENV["LWA_APP_ID"], DEMO_ENV["LWA_CLIENT_SECRET"])
_LWA_REFRESH_TOKENS = frozenset({DEMO_ENV["SP_API_REFRESH_TOKEN"]})


def errors(status: int, *error: dict[str, str], outcome: str) -> Reply:
    """An SP-API error answer: ``{"errors": [...]}``."""
    return Reply(status, {"errors": list(error)}, outcome)


class _BadRequest(Refused):
    """A request the official model rejects: status and one Error object."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        outcome = "not_found" if status == 404 else "invalid_input"
        error = {"code": code, "message": message, "details": details}
        super().__init__(errors(status, error, outcome=outcome))


def rate_header_value(requests_per_second: float) -> str:
    """``x-amzn-RateLimit-Limit`` text: a decimal string, e.g. ``0.5``, ``10.0``, ``0.0333``."""
    text = f"{requests_per_second:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def money(yen: int) -> dict[str, Any]:
    """A v0 MoneyType in JPY; the amount as a JSON number with a decimal point."""
    return {"CurrencyCode": "JPY", "Amount": float(yen)}


def _points(offer: Offer) -> dict[str, Any]:
    return {"PointsNumber": offer.points, "PointsMonetaryValue": money(offer.points)}


def _price_parts(offer: Offer) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "LandedPrice": money(offer.landed),
        "ListingPrice": money(offer.listing),
        "Shipping": money(offer.shipping),
    }
    if offer.points:
        parts["Points"] = _points(offer)
    return parts


def _channel(offer: Offer) -> str:
    return "Amazon" if offer.fba else "Merchant"


# --- response bodies (pure: catalogue in, JSON-ready dict out) ---------------------------


def offers_result(
    catalogue: Catalogue,
    asin: str,
    marketplace_id: str,
    condition: str,
    *,
    zero_offers: bool = False,
    today: dt.date | None = None,
    too_soon_until: dt.datetime | None = None,
) -> dict[str, Any]:
    """A ``GetOffersResult`` for a valid ASIN: Success with offers, or NoBuyableOffers; with
    ``too_soon_until`` (and offers) ActiveButTooSoonForProcessing: offers counted, none listed,
    ``Summary.OffersAvailableTime`` saying when they will be processable."""
    today = today or dt.datetime.now(dt.UTC).date()
    offers = [] if zero_offers or condition != "New" else catalogue.offers(asin)[:MAX_ITEMS]
    identifier = {"MarketplaceId": marketplace_id, "ItemCondition": condition, "ASIN": asin}
    if offers and too_soon_until is not None:
        return too_soon_result(asin, marketplace_id, condition, offers, too_soon_until)
    if not offers:
        return {
            "ASIN": asin,
            "status": "NoBuyableOffers",
            "ItemCondition": condition,
            "Identifier": identifier,
            "Summary": {"TotalOfferCount": 0},
            "Offers": [],
            "marketplaceId": marketplace_id,
        }
    product = catalogue.products[asin]
    winner = catalogue.buy_box(asin)
    lowest: dict[str, Offer] = {}
    counts: dict[str, int] = {}
    eligible: dict[str, int] = {}
    for offer in offers:  # cheapest first, so the first per channel is its lowest
        channel = _channel(offer)
        lowest.setdefault(channel, offer)
        counts[channel] = counts.get(channel, 0) + 1
        if offer.availability == "NOW" and (offer.fba or offer.positive_percent >= 90.0):
            eligible[channel] = eligible.get(channel, 0) + 1
    summary: dict[str, Any] = {
        "LowestPrices": [
            {"condition": "new", "fulfillmentChannel": channel, **_price_parts(offer)}
            for channel, offer in lowest.items()
        ],
        "NumberOfOffers": [
            {"condition": "new", "fulfillmentChannel": channel, "OfferCount": count}
            for channel, count in counts.items()
        ],
        "BuyBoxEligibleOffers": [
            {"condition": "new", "fulfillmentChannel": channel, "OfferCount": count}
            for channel, count in eligible.items()
        ],
        "SalesRankings": [{"ProductCategoryId": product.category, "Rank": product.sales_rank}],
        "ListPrice": money(product.list_price),
        "TotalOfferCount": len(offers),
    }
    if winner is not None:
        summary["BuyBoxPrices"] = [
            {"condition": "new", **_price_parts(winner), "sellerId": winner.seller_id}
        ]
    return {
        "ASIN": asin,
        "status": "Success",
        "ItemCondition": condition,
        "Identifier": identifier,
        "Summary": summary,
        "Offers": [_offer_detail(offer, offer is winner, today) for offer in offers],
        "marketplaceId": marketplace_id,
    }


def _offer_counts(offers: list[Offer]) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for offer in offers:
        counts[_channel(offer)] = counts.get(_channel(offer), 0) + 1
    return [
        {"condition": "new", "fulfillmentChannel": channel, "OfferCount": count}
        for channel, count in counts.items()
    ]


def too_soon_result(
    asin: str, marketplace_id: str, condition: str, offers: list[Offer], until: dt.datetime
) -> dict[str, Any]:
    """``ActiveButTooSoonForProcessing`` as the v0 model documents it: the offers exist
    (``TotalOfferCount``, ``NumberOfOffers``) but none is listed or priced yet, and
    ``Summary.OffersAvailableTime`` says when they will be processable."""
    return {
        "ASIN": asin,
        "status": TOO_SOON,
        "ItemCondition": condition,
        "Identifier": {"MarketplaceId": marketplace_id, "ItemCondition": condition, "ASIN": asin},
        "Summary": {
            "TotalOfferCount": len(offers),
            "NumberOfOffers": _offer_counts(offers),
            "OffersAvailableTime": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "Offers": [],
        "marketplaceId": marketplace_id,
    }


def _offer_detail(offer: Offer, is_winner: bool, today: dt.date) -> dict[str, Any]:
    shipping_time: dict[str, Any] = {
        "minimumHours": offer.min_hours,
        "maximumHours": offer.max_hours,
        "availabilityType": offer.availability,
    }
    available = offer.available_date(today)
    if available:
        shipping_time["availableDate"] = available
    ships_from = {"Country": offer.ships_from}
    if offer.state:
        ships_from = {"State": offer.state, "Country": offer.ships_from}
    detail: dict[str, Any] = {
        "Shipping": money(offer.shipping),
        "ListingPrice": money(offer.listing),
        "ShippingTime": shipping_time,
        "SellerFeedbackRating": {
            "SellerPositiveFeedbackRating": offer.positive_percent,
            "FeedbackCount": offer.feedback_count,
        },
        "ShipsFrom": ships_from,
        "SubCondition": "new",
        "SellerId": offer.seller_id,
        "IsFeaturedMerchant": offer.fba or offer.positive_percent >= 90.0,
        "IsBuyBoxWinner": is_winner,
        "IsFulfilledByAmazon": offer.fba,
        "PrimeInformation": {"IsPrime": offer.prime, "IsNationalPrime": offer.prime},
        "MyOffer": False,
    }
    if offer.points:
        detail["Points"] = _points(offer)
    return detail


def competitive_price(
    catalogue: Catalogue, asin: str, marketplace_id: str, *, zero_offers: bool = False
) -> dict[str, Any]:
    """One ``Price`` of getCompetitivePricing for a valid ASIN.

    With a New buy box: ``CompetitivePriceId`` "1" and the offer counts. Without offers,
    both shapes Amazon is seen to send, chosen per ASIN: only ``Identifiers``, or an empty
    ``CompetitivePrices`` list. With offers but no eligible winner (suppressed buy box):
    an empty ``CompetitivePrices`` with the real offer count.
    """
    identifiers = {"MarketplaceASIN": {"MarketplaceId": marketplace_id, "ASIN": asin}}
    offers = [] if zero_offers else catalogue.offers(asin)
    product = catalogue.products[asin]
    ranks = [{"ProductCategoryId": product.category, "Rank": product.sales_rank}]
    if not offers and sum(map(ord, asin)) % 2 == 0:
        return {"status": "Success", "ASIN": asin, "Product": {"Identifiers": identifiers}}
    winner = None if zero_offers else catalogue.buy_box(asin)
    prices = []
    if winner is not None:
        prices.append(
            {
                "CompetitivePriceId": "1",
                "Price": _price_parts(winner),
                "condition": "New",
                "subcondition": "New",
                "offerType": "B2C",
                "sellerId": winner.seller_id,
                "belongsToRequester": False,
            }
        )
    return {
        "status": "Success",
        "ASIN": asin,
        "Product": {
            "Identifiers": identifiers,
            "CompetitivePricing": {
                "CompetitivePrices": prices,
                "NumberOfOfferListings": [
                    {"Count": len(offers), "condition": "New"},
                    {"Count": len(offers), "condition": "Any"},
                ],
            },
            "SalesRankings": ranks,
        },
    }


def invalid_asin_error(asin: str, marketplace_id: str) -> dict[str, str]:
    return {
        "code": "InvalidInput",
        "message": f"{asin} is an invalid ASIN for marketplace {marketplace_id}",
        "details": "",
    }


# --- access tokens ---------------------------------------------------------------------


def issue_access_token(lifetime: float, now: float) -> str:
    """An ``Atza|`` token valid for ``lifetime`` seconds from ``now`` (unix seconds on the
    sandbox clock: another sandbox process checks it against its own)."""
    claims = f"{now + lifetime:.3f}:{secrets.token_hex(8)}".encode()
    payload = base64.urlsafe_b64encode(claims).decode().rstrip("=")
    signature = hmac.new(_TOKEN_KEY, payload.encode(), hashlib.sha256).hexdigest()[:32]
    return f"Atza|IwEB{payload}.{signature}"


def token_problem(token: str | None, now: float, *, all_expired: bool = False) -> str | None:
    """Why ``token`` is refused at ``now`` (unix seconds on the sandbox clock) - the 403
    ``details`` - or None when it is good."""
    if not token:
        return "Access token is missing in the request header."
    invalid = "The access token you provided is revoked, malformed or invalid."
    if not token.startswith("Atza|IwEB") or "." not in token:
        return invalid
    payload, _, signature = token[len("Atza|IwEB") :].partition(".")
    expected = hmac.new(_TOKEN_KEY, payload.encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(signature, expected):
        return invalid
    try:
        claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        expires = float(claims.partition(":")[0])
    except ValueError:
        return invalid
    if all_expired or now >= expires:
        return "The access token you provided has expired."
    return None


# --- the blueprint ---------------------------------------------------------------------


class SpApiDialect(Dialect):
    """SP-API's spelling: JSON ``errors``, 429 ``QuotaExceeded``, the rate header on
    200/400/404 and an ``x-amzn-RequestId`` on every answer."""

    api = "spapi"
    html_type = "text/html"

    def unavailable(self, call: Call) -> Reply:
        return errors(503, SERVICE_UNAVAILABLE, outcome="fault:outage")

    def authenticate(self, call: Call) -> None:
        token = flask.request.headers.get("x-amz-access-token")
        state = self.state
        problem = token_problem(token, state.clock.unix(), all_expired=state.faults.expired_tokens)
        if problem is not None:
            body = {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": problem,
            }
            outcome = "expired_token" if "expired" in problem else "unauthorized"
            raise Refused(errors(403, body, outcome=outcome))

    def storm(self, call: Call) -> Reply | None:
        return self._throttled("fault:throttle_storm")

    def spend_quota(self, call: Call) -> None:
        bucket = self.state.bucket(call.operation, *RATES[call.operation], now=call.admitted)
        if not bucket.try_acquire(call.admitted):
            raise Refused(self._throttled("throttled"))

    def server_error(self, call: Call) -> Reply:
        return errors(500, INTERNAL_FAILURE, outcome="fault:error")

    def _throttled(self, outcome: str) -> Reply:
        headers = {"x-amzn-ErrorType": "TooManyRequestsException"}
        return Reply(429, {"errors": [QUOTA_EXCEEDED]}, outcome, headers=headers)

    def encode(self, body: Any) -> str:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    def respond(self, reply: Reply, call: Call) -> flask.Response:
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), **reply.headers}
        if reply.status in (200, 400, 404) and call.operation in RATES:
            with self.state.lock:
                rate = self.state.bucket(call.operation, *RATES[call.operation]).rate
            headers["x-amzn-RateLimit-Limit"] = rate_header_value(rate)
        return flask.Response(
            self.text(reply), status=reply.status, headers=headers, content_type=reply.content_type
        )


class LwaDialect(SpApiDialect):
    """Login with Amazon's token endpoint: OAuth ``{"error", "error_description"}`` bodies,
    no storm, no bucket, and of the fault rates only ``error_rate.token``."""

    api = "lwa"
    malformable = frozenset()

    def outage(self, call: Call, html: bool) -> Reply:
        body = {
            "error": "temporarily_unavailable",
            "error_description": "The service is temporarily unavailable.",
        }
        return Reply(503, body, "fault:outage")

    def authenticate(self, call: Call) -> None:
        pass  # the client authenticates in the body; the handler checks it

    def storm(self, call: Call) -> Reply | None:
        return None

    def spend_quota(self, call: Call) -> None:
        pass

    def fault_after_quota(self, call: Call) -> str | None:
        return "error" if self.state.roll(self.state.faults.error_rate_for("token")) else None

    def server_error(self, call: Call) -> Reply:
        body = {"error": "server_error", "error_description": "Internal server error."}
        return Reply(500, body, "fault:error")


def blueprint(state: SandboxState) -> flask.Blueprint:
    """LWA and Product Pricing routes over ``state``."""
    bp = flask.Blueprint("spapi", __name__)
    catalogue = catalogue_of(state)
    gate = Gate(state, SpApiDialect(state))
    lwa = Gate(state, LwaDialect(state))

    def answer(operation: str, items: list[str], handle: Callable[[], Reply]) -> flask.Response:
        def advanced(call: Any) -> Reply:
            process.advance(state)  # Amazon's world has moved on since the last answer
            return handle()

        return gate.answer(operation, advanced, items=items)

    # --- LWA ---

    @bp.post("/auth/o2/token")
    def lwa_token() -> flask.Response:
        return lwa.answer("token", lambda call: _lwa_reply(state, _form_or_json()))

    # --- getItemOffersBatch ---

    @bp.post("/batches/products/pricing/v0/itemOffers")
    def get_item_offers_batch() -> flask.Response:
        body = flask.request.get_json(silent=True)
        requests_ = body.get("requests") if isinstance(body, dict) else None
        items = [_asin_of(r) for r in requests_] if isinstance(requests_, list) else []

        def handle() -> Reply:
            parsed = _batch_requests(body)
            date = formatdate(state.clock.unix(), usegmt=True)
            today = _today(state)
            responses = []
            invalid: list[str] = []
            no_offers: list[str] = []
            too_soon: list[str] = []
            for asin, params in parsed:
                marketplace_id = params["MarketplaceId"]
                echo = {"MarketplaceId": marketplace_id, "Asin": asin}
                if params.get("CustomerType"):
                    echo["CustomerType"] = params["CustomerType"]
                echo["ItemCondition"] = params["ItemCondition"]
                headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Date": date}
                if not catalogue.is_valid(asin) or asin in state.faults.invalid_asins:
                    invalid.append(asin)
                    responses.append(
                        {
                            "status": {"statusCode": 400, "reasonPhrase": "Bad Request"},
                            "body": {"errors": [invalid_asin_error(asin, marketplace_id)]},
                            "headers": headers,
                            "request": echo,
                        }
                    )
                    continue
                result = offers_result(
                    catalogue,
                    asin,
                    marketplace_id,
                    params["ItemCondition"],
                    zero_offers=state.faults.zero_offers,
                    today=today,
                    too_soon_until=_too_soon_until(state, asin),
                )
                if result["status"] == TOO_SOON:
                    too_soon.append(asin)
                elif result["status"] != "Success":
                    no_offers.append(asin)
                responses.append(
                    {
                        "status": {"statusCode": 200, "reasonPhrase": "OK"},
                        "body": {"payload": result},
                        "headers": headers,
                        "request": echo,
                    }
                )
            detail = {"invalid": invalid, "no_offers": no_offers, "too_soon": too_soon}
            return Reply(200, {"responses": responses}, "ok", detail=detail)

        return answer("getItemOffersBatch", items, handle)

    # --- getItemOffers ---

    @bp.get("/products/pricing/v0/items/<asin>/offers")
    def get_item_offers(asin: str) -> flask.Response:
        args = flask.request.args

        def handle() -> Reply:
            marketplace_id = _marketplace(args.get("MarketplaceId"))
            condition = _enum(args.get("ItemCondition"), ITEM_CONDITIONS, "ItemCondition")
            if args.get("CustomerType") is not None:
                _enum(args.get("CustomerType"), CUSTOMER_TYPES, "CustomerType")
            if not catalogue.is_valid(asin) or asin in state.faults.invalid_asins:
                reply = errors(
                    400, invalid_asin_error(asin, marketplace_id), outcome="invalid_asin"
                )
                reply.detail = {"invalid": [asin]}
                return reply
            result = offers_result(
                catalogue,
                asin,
                marketplace_id,
                condition,
                zero_offers=state.faults.zero_offers,
                today=_today(state),
                too_soon_until=_too_soon_until(state, asin),
            )
            status = result["status"]
            detail = {
                "no_offers": [asin] if status not in ("Success", TOO_SOON) else [],
                "too_soon": [asin] if status == TOO_SOON else [],
            }
            return Reply(200, {"payload": result}, "ok", detail=detail)

        return answer("getItemOffers", [asin], handle)

    # --- getCompetitivePricing ---

    @bp.get("/products/pricing/v0/competitivePrice")
    def get_competitive_pricing() -> flask.Response:
        args = flask.request.args
        asins = _csv(args.get("Asins"))
        skus = _csv(args.get("Skus"))

        def handle() -> Reply:
            marketplace_id = _marketplace(args.get("MarketplaceId"))
            item_type = args.get("ItemType")
            if item_type is not None and item_type not in ("Asin", "Sku"):
                if item_type.lower() in ("asin", "sku"):
                    # Amazon answers a wrong-case ItemType as a missing resource
                    raise _BadRequest(404, "NotFound", "The requested resource doesn't exist.")
                raise _BadRequest(400, "InvalidInput", "Invalid Input", "ItemType: Asin or Sku.")
            if item_type is None:
                raise _BadRequest(400, "InvalidInput", "Invalid Input", "ItemType is required.")
            wanted = asins if item_type == "Asin" else skus
            if not wanted:
                raise _BadRequest(
                    400, "InvalidInput", "Invalid Input", f"{item_type}s is required."
                )
            if len(wanted) > MAX_ITEMS:
                raise _BadRequest(
                    400, "InvalidInput", "Invalid Input", f"At most {MAX_ITEMS} {item_type}s."
                )
            if args.get("CustomerType") is not None:
                _enum(args.get("CustomerType"), CUSTOMER_TYPES, "CustomerType")
            payload: list[dict[str, Any]] = []
            invalid: list[str] = []
            no_offers: list[str] = []
            if item_type == "Sku":  # the sandbox seller has no Amazon listings of its own
                payload = [{"status": "ClientError", "SellerSKU": sku} for sku in skus]
                return Reply(200, {"payload": payload}, "ok", detail={"invalid": skus})
            for asin in asins:
                if not catalogue.is_valid(asin) or asin in state.faults.invalid_asins:
                    invalid.append(asin)
                    identifiers = {
                        "MarketplaceASIN": {"MarketplaceId": marketplace_id, "ASIN": asin}
                    }
                    payload.append(
                        {
                            "status": "ClientError",
                            "ASIN": asin,
                            "Product": {"Identifiers": identifiers},
                        }
                    )
                    continue
                price = competitive_price(
                    catalogue, asin, marketplace_id, zero_offers=state.faults.zero_offers
                )
                if not price["Product"].get("CompetitivePricing", {}).get("CompetitivePrices"):
                    no_offers.append(asin)
                payload.append(price)
            detail = {"invalid": invalid, "no_offers": no_offers}
            return Reply(200, {"payload": payload}, "ok", detail=detail)

        return answer("getCompetitivePricing", asins or skus, handle)

    return bp


# --- request parsing ---------------------------------------------------------------------


def _form_or_json() -> dict[str, Any]:
    request = flask.request
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form.to_dict()


def _lwa_reply(state: SandboxState, fields: dict[str, Any]) -> Reply:
    """The LWA answer for a token request past the gate; called with ``state.lock`` held."""

    def refuse(status: int, error: str, description: str) -> Reply:
        return Reply(status, {"error": error, "error_description": description}, error)

    for name in ("grant_type", "client_id", "client_secret"):
        if not fields.get(name):
            return refuse(
                400, "invalid_request", f"The request is missing a required parameter : {name}"
            )
    if fields["grant_type"] != "refresh_token":
        return refuse(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        )
    if (fields["client_id"], fields["client_secret"]) != _LWA_CLIENT:
        return refuse(401, "invalid_client", "Client authentication failed")
    refresh_token = fields.get("refresh_token")
    if not refresh_token:
        return refuse(
            400, "invalid_request", "The request is missing a required parameter : refresh_token"
        )
    if refresh_token not in _LWA_REFRESH_TOKENS:
        return refuse(
            400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
        )
    lifetime = state.token_lifetime
    granted: dict[str, Any] = {
        "access_token": issue_access_token(lifetime, state.clock.unix()),
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": max(1, math.ceil(lifetime)),
    }
    return Reply(200, granted, "ok", headers={"Cache-Control": "no-cache, no-store"})


def _too_soon_until(state: SandboxState, asin: str) -> dt.datetime | None:
    """When the offers of a ``too_soon_asins`` ASIN, or one of the catalogue's seeded
    ``too_soon_share``, become processable (None: not too soon)."""
    faults = state.faults
    share = faults.too_soon_share
    if asin not in faults.too_soon_asins and not catalogue_of(state).too_soon(asin, share):
        return None
    return dt.datetime.fromtimestamp(state.clock.unix() + TOO_SOON_MINUTES * 60, dt.UTC)


def _today(state: SandboxState) -> dt.date:
    """Today's date (UTC) on the sandbox clock, for ``availableDate``."""
    return dt.datetime.fromtimestamp(state.clock.unix(), dt.UTC).date()


def _csv(value: str | None) -> list[str]:
    if value is None:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _marketplace(value: Any) -> str:
    if value != MARKETPLACE_JP:
        raise _BadRequest(400, "InvalidInput", INVALID_MARKETPLACE)
    return MARKETPLACE_JP


def _enum(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise _BadRequest(
            400, "InvalidInput", "Invalid Input", f"{name}: one of {', '.join(allowed)}."
        )
    return str(value)


def _asin_of(request_item: Any) -> str:
    if isinstance(request_item, dict):
        match = _OFFERS_URI.match(str(request_item.get("uri", "")))
        if match:
            return match.group(1)
    return ""


def _batch_requests(body: Any) -> list[tuple[str, dict[str, Any]]]:
    """(ASIN, params) per request of a getItemOffersBatch body, validated as the model does."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _BadRequest(400, "InvalidInput", "Invalid Input", "The body needs a requests list.")
    requests_ = body["requests"]
    if not 1 <= len(requests_) <= MAX_ITEMS:
        raise _BadRequest(
            400, "InvalidInput", "Invalid Input", f"requests: 1 to {MAX_ITEMS} items."
        )
    parsed: list[tuple[str, dict[str, Any]]] = []
    for item in requests_:
        if not isinstance(item, dict):
            raise _BadRequest(400, "InvalidInput", "Invalid Input", "Each request is an object.")
        match = _OFFERS_URI.match(str(item.get("uri") or ""))
        if match is None:
            raise _BadRequest(
                400,
                "InvalidInput",
                "Invalid Input",
                "uri: /products/pricing/v0/items/{Asin}/offers.",
            )
        if item.get("method") != "GET":
            raise _BadRequest(400, "InvalidInput", "Invalid Input", "method: GET.")
        # params nested under queryParams leave the top level without a MarketplaceId
        _marketplace(item.get("MarketplaceId"))
        _enum(item.get("ItemCondition"), ITEM_CONDITIONS, "ItemCondition")
        if item.get("CustomerType") is not None:
            _enum(item.get("CustomerType"), CUSTOMER_TYPES, "CustomerType")
        parsed.append((match.group(1), item))
    asins = [asin for asin, _ in parsed]
    if len(set(asins)) != len(asins):
        raise _BadRequest(400, "InvalidInput", DUPLICATE_REQUESTS)
    return parsed
