"""Sandbox eBay: OAuth refresh and the Sell Inventory API (plus Trading via ``ebay_trading``).

Stage: sandbox. Reads: ``state.apis["catalogue"]`` (demo listings and reference prices),
``state.faults``. Writes: ``state.apis["ebay"]`` (an :class:`EbayWorld`: inventory items,
offers, Trading listings, access tokens, daily call counters, revisions per listing per
day) and ``state.ledger`` (every call, every applied change).

Wire contract: ``tests/contracts/ebay/sell_inventory_v1_oas3.json`` (Inventory API 1.18.4)
and NOTES-platforms.md §A. Money on the wire is an ``Amount`` (``value`` a decimal string,
``currency``); inside, integer cents. Access tokens live ``token_lifetime`` clock seconds
(default twice ``state.token_lifetime``: eBay's 2 h against the sandbox's 1 h); an
expired or unknown one gets 401 errorId 1001. A daily call quota (sandbox day: 86400/
time_scale seconds, turning at midnight PST) and ``faults.ebay_429_rate`` give 429 errorId
2001. Each listing takes at most ``revisions_per_day`` (250) revisions a day; the next one
fails for that SKU inside a 207. About one listing in ten is a Trading-API listing: it has
an ItemID, is no Inventory-API object, and only ``ReviseInventoryStatus`` revises it.

Out-of-stock control: the seller's preference (``EbayWorld.oos_control``, on for the demo;
off with ``faults.ebay_oos_control_off`` or ``POST /_sandbox/ebay/limits {"oos_control":
false}``). With it off, a revision that leaves a listing nothing to sell ENDS it, as live
eBay does; an ended listing refuses every later revision (25019 inside the 207, Trading
21916750) and its change in the ledger carries ``"ended": true``. Every eighth
Inventory-API SKU also has an UNPUBLISHED offer, which ``getOffers`` lists first; a SKU
that is no valid eBay SKU (over 50 characters, or a character other than letters, digits,
``-``, ``_``, ``.``) gets 400 errorId 25707 from ``getOffers``.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from pipeline.sandbox.credentials import DEMO_ENV, EBAY_ACCOUNT
from pipeline.sandbox.gate import Call, Dialect, Gate, Refused, Reply
from pipeline.sandbox.platform_limits import PST_OFFSET, ScaledCalendar, WindowCounter
from pipeline.sandbox.state import SandboxState

INVENTORY_DAILY_LIMIT = 2_000_000  # Inventory API calls per application per day
TRADING_DAILY_LIMIT = 5_000  # Trading API calls per application per day (default keys)
REVISIONS_PER_DAY = 250  # "Each listing can be revised up to 250 times in one calendar day"
BULK_MAX_REQUESTS = 25  # requests[] per bulk_update_price_quantity
PAGE_LIMIT_MAX = 200  # getInventoryItems limit
PRICE_MIN_CENTS = 99  # USD 0.99, eBay US's fixed-price minimum
PRICE_MAX_CENTS = 99_999_999  # USD
JPY_PER_USD = 150  # the demo's conversion of reference prices, JPY per USD
TRADING_SHARE = 10  # every 10th demo listing is a Trading-API listing
SKU_TRACKED_SHARE = 3  # every 3rd Trading listing was listed with InventoryTrackingMethod=SKU
DRAFT_OFFER_SHARE = 8  # every 8th Inventory listing also has an UNPUBLISHED offer
SKU_MAX_LENGTH = 50  # eBay's SKU limit
ACTIVE, ENDED = "ACTIVE", "ENDED"  # a listing's status (Trading's ListingStatus Active/Completed)
MARKETPLACE = "EBAY_US"
CURRENCY = "USD"
INVENTORY_SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"

_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
# eBay's words are "only alphanumeric characters ... up to 50"; live SKUs with hyphens and
# underscores are accepted, so the sandbox accepts those and the dot, and nothing else.
_VALID_SKU = re.compile(rf"^[A-Za-z0-9._-]{{1,{SKU_MAX_LENGTH}}}$")


@dataclass
class EbayListing:
    """One eBay listing. ``api`` says which API owns it: inventory or trading."""

    sku: str
    asin: str
    title: str
    api: str  # inventory | trading
    listing_id: str  # the eBay item id (Trading ItemID, Inventory listing.listingId)
    offer_id: str | None  # inventory listings only
    price_cents: int  # integer cents of CURRENCY
    quantity: int  # inventory: shipToLocationAvailability.quantity; trading: available
    available_quantity: int  # the offer's availableQuantity (inventory); = quantity for trading
    sold_quantity: int
    status: str = ACTIVE  # ACTIVE | ENDED (out of stock while out-of-stock control was off)
    sku_tracked: bool = False  # trading: InventoryTrackingMethod=SKU (ItemID is eBay's default)
    draft_offer_id: str | None = None  # inventory: an UNPUBLISHED offer of the same SKU

    def price_value(self) -> str:
        return cents_to_value(self.price_cents)

    @property
    def ended(self) -> bool:
        return self.status == ENDED

    def buyable(self) -> int:
        """What a buyer can buy now: an Inventory offer is capped by the item's quantity."""
        return min(self.quantity, self.available_quantity)


def valid_sku(sku: str) -> bool:
    """Whether eBay takes ``sku`` as a SKU at all (length and characters)."""
    return bool(_VALID_SKU.match(sku))


def cents_to_value(cents: int) -> str:
    """Integer cents as eBay's decimal string: 4999 -> "49.99"."""
    return f"{cents // 100}.{cents % 100:02d}"


def value_to_cents(value: Any) -> int | None:
    """eBay's decimal string as integer cents (exact), None if it is no money amount."""
    if not isinstance(value, str) or not _DECIMAL.match(value):
        return None
    try:
        return int(Decimal(value) * 100)
    except InvalidOperation:
        return None


class EbayWorld:
    """Everything the sandbox's eBay knows: ``state.apis["ebay"]``.

    Knobs (attributes, also ``POST /_sandbox/ebay/limits``): ``daily_call_limit``,
    ``trading_daily_call_limit``, ``revisions_per_day``, ``token_lifetime`` (clock seconds;
    None = 2 × ``state.token_lifetime``), ``oos_control`` (the seller's Out-of-Stock Control
    preference, on for the demo).
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.calendar = ScaledCalendar(state)
        self.client_id = DEMO_ENV["EBAY_CLIENT_ID"]
        self.client_secret = DEMO_ENV["EBAY_CLIENT_SECRET"]
        self.refresh_tokens = {DEMO_ENV["EBAY_REFRESH_TOKEN"]}  # eBay does not rotate them
        self.access_tokens: dict[str, float] = {}  # token -> expiry on state.clock, seconds
        self.account = EBAY_ACCOUNT
        self.daily_call_limit = INVENTORY_DAILY_LIMIT
        self.trading_daily_call_limit = TRADING_DAILY_LIMIT
        self.revisions_per_day = REVISIONS_PER_DAY
        self.token_lifetime: float | None = None
        self.oos_control = True
        self.inventory_calls = WindowCounter()
        self.trading_calls = WindowCounter()
        self.revisions: dict[str, WindowCounter] = {}  # listing_id -> revisions today
        self._listings: dict[str, EbayListing] | None = None  # by sku, built lazily

    # ---- listings ---------------------------------------------------------------------

    @property
    def listings(self) -> dict[str, EbayListing]:
        if self._listings is None:
            self._listings = build_demo_listings(self.state)
        return self._listings

    def inventory_listings(self) -> list[EbayListing]:
        return [listing for listing in self.listings.values() if listing.api == "inventory"]

    def by_offer_id(self, offer_id: str) -> EbayListing | None:
        for listing in self.listings.values():
            if listing.offer_id == offer_id:
                return listing
        return None

    def by_item_id(self, item_id: str) -> EbayListing | None:
        for listing in self.listings.values():
            if listing.listing_id == item_id:
                return listing
        return None

    def out_of_stock_control(self) -> bool:
        """The seller's Out-of-Stock Control preference as eBay applies it now."""
        return self.oos_control and not self.state.faults.ebay_oos_control_off

    def end_if_sold_out(self, listing: EbayListing) -> bool:
        """A revision left ``listing`` nothing to sell: without out-of-stock control eBay
        ends it (True); with it the listing stays, out of stock (False)."""
        if listing.buyable() > 0 or self.out_of_stock_control():
            return False
        listing.status = ENDED
        return True

    def lifetime(self) -> float:
        if self.token_lifetime is not None:
            return self.token_lifetime
        return 2 * self.state.token_lifetime

    def day(self) -> int:
        return self.calendar.day_index(PST_OFFSET)

    def revisions_today(self, listing: EbayListing) -> int:
        counter = self.revisions.get(listing.listing_id)
        return counter.current(self.day()) if counter else 0

    def add_revision(self, listing: EbayListing) -> None:
        self.revisions.setdefault(listing.listing_id, WindowCounter()).add(self.day())

    # ---- persistence ------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """JSON-ready world: listings with current price/quantity, counters, knobs."""
        return {
            "listings": [asdict(listing) for listing in self.listings.values()],
            "revisions": {key: c.dump() for key, c in self.revisions.items()},
            "inventory_calls": self.inventory_calls.dump(),
            "trading_calls": self.trading_calls.dump(),
            "limits": {
                "daily_call_limit": self.daily_call_limit,
                "trading_daily_call_limit": self.trading_daily_call_limit,
                "revisions_per_day": self.revisions_per_day,
                "token_lifetime": self.token_lifetime,
                "oos_control": self.oos_control,
            },
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore a world written by :meth:`dump` (access tokens do not survive a restart)."""
        self._listings = {row["sku"]: EbayListing(**row) for row in data.get("listings", [])}
        self.revisions = {k: WindowCounter.load(v) for k, v in data.get("revisions", {}).items()}
        self.inventory_calls = WindowCounter.load(data.get("inventory_calls"))
        self.trading_calls = WindowCounter.load(data.get("trading_calls"))
        limits = data.get("limits", {})
        self.daily_call_limit = int(limits.get("daily_call_limit", INVENTORY_DAILY_LIMIT))
        self.trading_daily_call_limit = int(
            limits.get("trading_daily_call_limit", TRADING_DAILY_LIMIT)
        )
        self.revisions_per_day = int(limits.get("revisions_per_day", REVISIONS_PER_DAY))
        self.token_lifetime = limits.get("token_lifetime")
        self.oos_control = bool(limits.get("oos_control", True))
        self.access_tokens = {}

    def reset_counters(self) -> None:
        """Forget the daily call counts and revisions (for ``POST /_sandbox/reset``)."""
        self.inventory_calls, self.trading_calls = WindowCounter(), WindowCounter()
        self.revisions = {}

    def usage(self) -> dict[str, Any]:
        day = self.day()
        return {
            "inventory_calls_today": self.inventory_calls.current(day),
            "trading_calls_today": self.trading_calls.current(day),
            "daily_call_limit": self.daily_call_limit,
            "trading_daily_call_limit": self.trading_daily_call_limit,
            "revisions_per_day": self.revisions_per_day,
            "oos_control": self.oos_control,
            "out_of_stock_control": self.out_of_stock_control(),
            "ended_skus": [x.sku for x in self.listings.values() if x.ended],
            "seconds_to_next_day": self.calendar.real_seconds_to_next_day(PST_OFFSET),
        }

    def access_token_valid(self, token: str) -> bool:
        expires_at = self.access_tokens.get(token)
        if expires_at is None or self.state.faults.expired_tokens:
            return False
        return self.state.now() < expires_at


def build_demo_listings(state: SandboxState) -> dict[str, EbayListing]:
    """The demo eBay account from the catalogue: SKU ``s-<ASIN>-<yyyymmdd_hhmm>``, a USD price
    at a markup of the reference price with seeded noise, every 10th listing on Trading (every
    3rd of those tracked by SKU), every 8th Inventory listing with an extra UNPUBLISHED offer."""
    catalogue = state.apis.get("catalogue")
    if catalogue is None:
        raise RuntimeError(
            "the sandbox has no catalogue in state.apis['catalogue']; create the app with "
            "pipeline.sandbox.server.create_app so the catalogue is registered first"
        )
    asins: list[str] = catalogue.demo_listings().get(EBAY_ACCOUNT, [])
    rng = random.Random(f"{state.seed}:ebay:{EBAY_ACCOUNT}")
    listings: dict[str, EbayListing] = {}
    for n, asin in enumerate(asins):
        listed = f"2025{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}_{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}"
        sku = f"s-{asin}-{listed}"
        trading = n % TRADING_SHARE == TRADING_SHARE - 1
        quantity = rng.choice((0, 1, 1, 2, 3, 5))
        draft = not trading and n % DRAFT_OFFER_SHARE == 2
        listings[sku] = EbayListing(
            sku=sku,
            asin=asin,
            title=f"Japan import sandbox item {asin}",
            api="trading" if trading else "inventory",
            listing_id=str(110_000_000_000 + rng.randint(0, 9_999_999) * 10 + n % 10),
            offer_id=None if trading else str(5_000_000_000 + n * 7919),
            price_cents=demo_price_cents(catalogue.reference_price(asin), rng),
            quantity=quantity,
            available_quantity=quantity,
            sold_quantity=rng.choice((0, 0, 0, 1, 2)),
            sku_tracked=trading
            and (n // TRADING_SHARE) % SKU_TRACKED_SHARE == SKU_TRACKED_SHARE - 1,
            draft_offer_id=str(6_000_000_000 + n * 7919) if draft else None,
        )
    return listings


def demo_price_cents(reference_jpy: int | None, rng: random.Random) -> int:
    """USD cents as a cross-border seller would have priced the item when listing it:
    (cost + 2,200 yen shipping and packing) / 0.72 (fees and margin), at JPY_PER_USD,
    times 0.90–1.10 of seeded noise (prices have drifted since), rounded half up."""
    if reference_jpy is None:
        reference_jpy = rng.randint(800, 20_000)
    noise_permille = rng.randint(900, 1100)
    # cents = (ref + 2200) / 0.72 / JPY_PER_USD × 100 × noise/1000, in integers
    numerator = (reference_jpy + 2200) * 100 * 100 * noise_permille
    denominator = 72 * JPY_PER_USD * 1000
    return max(PRICE_MIN_CENTS, (2 * numerator + denominator) // (2 * denominator))


def world_of(state: SandboxState) -> EbayWorld:
    """The eBay world in ``state.apis["ebay"]``, created on first use."""
    return state.api_world("ebay", EbayWorld)


# ---- error bodies ------------------------------------------------------------------------


def error(
    error_id: int,
    message: str,
    *,
    domain: str = "API_INVENTORY",
    category: str = "REQUEST",
    long_message: str | None = None,
    parameters: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """One eBay ``Error`` object."""
    body: dict[str, Any] = {
        "errorId": error_id,
        "domain": domain,
        "subdomain": "Selling" if domain == "API_INVENTORY" else None,
        "category": category,
        "message": message,
    }
    if body["subdomain"] is None:
        del body["subdomain"]
    if long_message:
        body["longMessage"] = long_message
    if parameters:
        body["parameters"] = [{"name": n, "value": v} for n, v in parameters]
    return body


INVALID_TOKEN = error(
    1001,
    "Invalid access token",
    domain="OAuth",
    long_message="Invalid access token. Check the value of the Authorization HTTP request header.",
)
TOO_MANY_REQUESTS = error(
    2001,
    "Too many requests.",
    domain="ACCESS",
    long_message="The request limit has been reached for the resource.",
)
SYSTEM_ERROR = error(
    25001, "A system error has occurred. Please try again later.", category="APPLICATION"
)


class EbayError(Refused):
    """A call-level eBay error: HTTP ``status`` with ``{"errors": [...]}``."""

    def __init__(self, status: int, errors: list[dict[str, Any]], outcome: str = "error") -> None:
        super().__init__(Reply(status, {"errors": errors}, outcome))


class InventoryDialect(Dialect):
    """The Inventory API's spelling: JSON ``{"errors": [...]}``; 401 errorId 1001 for a bad
    token; 429 errorId 2001 for a storm, the daily quota or ``ebay_429_rate``; 500 25001."""

    api = "ebay"
    malformable = frozenset({200, 207})

    def __init__(self, world: EbayWorld) -> None:
        super().__init__(world.state)
        self.world = world

    def unavailable(self, call: Call) -> Reply:
        return Reply(503, {"errors": [SYSTEM_ERROR]}, "fault:outage")

    def authenticate(self, call: Call) -> None:
        _authenticate(self.world)

    def storm(self, call: Call) -> Reply | None:
        return EbayError(429, [TOO_MANY_REQUESTS], "fault:throttle_storm").reply

    def spend_quota(self, call: Call) -> None:
        world = self.world
        day = world.day()
        if world.inventory_calls.current(day) >= world.daily_call_limit:
            raise EbayError(429, [TOO_MANY_REQUESTS], "throttled")
        if self.state.roll(self.state.faults.ebay_429_rate):
            raise EbayError(429, [TOO_MANY_REQUESTS], "throttled")
        world.inventory_calls.add(day)

    def server_error(self, call: Call) -> Reply:
        return EbayError(500, [SYSTEM_ERROR], "fault:error").reply


class OAuthDialect(Dialect):
    """eBay's token endpoint: an outage is always the HTML page; no storm, no quota and
    no fault rates (the client authenticates in the request; the handler checks it)."""

    api = "ebay"
    malformable = frozenset()

    def outage(self, call: Call, html: bool) -> Reply:
        return super().outage(call, True)

    def fault_after_quota(self, call: Call) -> str | None:
        return None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


# ---- HTTP ------------------------------------------------------------------------------


def blueprint(state: SandboxState) -> Blueprint:
    """Flask routes at eBay's real paths (token, Inventory API, Trading ``/ws/api.dll``)."""
    from pipeline.sandbox import ebay_trading  # Trading lives beside; one blueprint for eBay

    bp = Blueprint("ebay", __name__)
    world = world_of(state)
    gate = Gate(state, InventoryDialect(world))
    oauth = Gate(state, OAuthDialect(state))

    def answer(
        operation: str, handler: Callable[[], tuple[dict[str, Any], int, list[str], str]]
    ) -> Response:
        """One Inventory API call through the shared gate."""

        def handle(call: Call) -> Reply:
            body, status, call.items, outcome = handler()
            return Reply(status, body, outcome)

        return gate.answer(operation, handle, account=world.account)

    @bp.route("/identity/v1/oauth2/token", methods=["POST"])
    def oauth_token() -> Response:
        def handle(call: Call) -> Reply:
            body, status, outcome = _refresh(world)
            return Reply(status, body, outcome)

        return oauth.answer("oauth2/token", handle, account=world.account)

    def route(operation: str, handler: Callable[..., Any]) -> Callable[..., Response]:
        def view(**path: str) -> Response:
            return answer(operation, lambda: handler(world, **path))

        return view

    for method, rule, operation, handler in INVENTORY_ROUTES:
        bp.add_url_rule(rule, operation, route(operation, handler), methods=[method])

    ebay_trading.add_routes(bp, state, world)

    @bp.route("/_sandbox/ebay/listings", methods=["GET"])
    def all_listings() -> Response:
        """Sandbox control (not eBay): every listing, Trading ones included, for tests that
        compare what a pull found with the sandbox's own world."""
        with state.lock:
            rows = [
                {
                    "account_id": world.account,
                    "sku": row.sku,
                    "asin": row.asin,
                    "api": row.api,
                    "listing_id": row.listing_id,
                    "offer_id": row.offer_id,
                    "price_cents": row.price_cents,
                    "currency": CURRENCY,
                    "quantity": row.quantity,
                    "status": row.status,
                    "sku_tracked": row.sku_tracked,
                }
                for row in world.listings.values()
            ]
            return _json({"listings": rows})

    @bp.route("/_sandbox/ebay/limits", methods=["GET", "POST"])
    def limits() -> Response:
        """Sandbox control (not eBay): read usage or set the quota knobs live."""
        with state.lock:
            if request.method == "POST":
                knobs = request.get_json(force=True, silent=True) or {}
                for name in ("daily_call_limit", "trading_daily_call_limit", "revisions_per_day"):
                    if name in knobs:
                        setattr(world, name, int(knobs[name]))
                if "token_lifetime" in knobs:
                    lifetime = knobs["token_lifetime"]
                    world.token_lifetime = None if lifetime is None else float(lifetime)
                if "oos_control" in knobs:
                    world.oos_control = bool(knobs["oos_control"])
            return _json(world.usage())

    return bp


def _authenticate(world: EbayWorld) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not world.access_token_valid(token):
        outcome = "expired_token" if token in world.access_tokens else "unauthorized"
        raise EbayError(401, [INVALID_TOKEN], outcome)


def _refresh(world: EbayWorld) -> tuple[dict[str, Any], int, str]:
    """``POST /identity/v1/oauth2/token``: Basic client auth, form body; the refresh grant
    here, the authorization-code grant in the consent module."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    client = ""
    if scheme.lower() == "basic":
        try:
            client = base64.b64decode(encoded.strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            client = ""
    if client != f"{world.client_id}:{world.client_secret}":
        body = {"error": "invalid_client", "error_description": "client authentication failed"}
        return body, 401, "unauthorized"
    form = request.form
    if form.get("grant_type") == "authorization_code":  # a consent page's code, used once
        from pipeline.sandbox import consent

        return consent.exchange_ebay_code(world, form)
    if form.get("grant_type") != "refresh_token":
        body = {
            "error": "unsupported_grant_type",
            "error_description": "grant type in request is not supported by the authorization server",
        }
        return body, 400, "error"
    token = form.get("refresh_token")
    if not token:
        body = {
            "error": "invalid_request",
            "error_description": "request is missing a required parameter or malformed.",
        }
        return body, 400, "error"
    if token not in world.refresh_tokens:
        body = {
            "error": "invalid_grant",
            "error_description": "the provided authorization refresh token is invalid or was issued to another client",
        }
        return body, 400, "unauthorized"
    scopes = (form.get("scope") or INVENTORY_SCOPE).split()
    allowed = {
        INVENTORY_SCOPE,
        INVENTORY_SCOPE + ".readonly",
        "https://api.ebay.com/oauth/api_scope",
    }
    if any(scope not in allowed for scope in scopes):
        body = {
            "error": "invalid_scope",
            "error_description": "The requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client",
        }
        return body, 400, "error"
    access = "v^1.1#i^1#r^0#sandbox#" + secrets.token_urlsafe(24)
    lifetime = world.lifetime()
    world.access_tokens[access] = world.state.now() + lifetime
    granted: dict[str, Any] = {
        "access_token": access,
        "expires_in": int(lifetime),
        "token_type": "User Access Token",
    }
    return granted, 200, "ok"


# ---- Inventory API reads ------------------------------------------------------------------


def _page_args(default_limit: int) -> tuple[int, int]:
    """``limit`` 1–200 and ``offset`` ≥ 0 (a record offset, as eBay's own ``next`` links use)."""
    raw_limit = request.args.get("limit", str(default_limit))
    raw_offset = request.args.get("offset", "0")
    if not raw_limit.isdigit() or not raw_offset.isdigit():
        raise EbayError(400, [_pagination_error()])
    limit, offset = int(raw_limit), int(raw_offset)
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise EbayError(400, [_pagination_error()])
    return limit, offset


def _pagination_error() -> dict[str, Any]:
    return error(
        25706,
        "You have provided invalid pagination values. limit must be 1 to 200 and offset 0 or more.",
    )


def _page_url(path: str, **params: Any) -> str:
    return request.host_url.rstrip("/") + path + "?" + urlencode(params)


def inventory_item_json(listing: EbayListing) -> dict[str, Any]:
    """An ``InventoryItemWithSkuLocaleGroupid`` for a listing."""
    return {
        "sku": listing.sku,
        "locale": "en_US",
        "product": {
            "title": listing.title,
            "imageUrls": [],
        },
        "condition": "NEW",
        "availability": {"shipToLocationAvailability": {"quantity": listing.quantity}},
    }


def _offer_fields(listing: EbayListing, offer_id: str | None) -> dict[str, Any]:
    """What a published offer and its draft share: the SKU, format, quantity and price."""
    return {
        "offerId": offer_id,
        "sku": listing.sku,
        "marketplaceId": MARKETPLACE,
        "format": "FIXED_PRICE",
        "listingDuration": "GTC",
        "availableQuantity": listing.available_quantity,
        "categoryId": "261068",
        "merchantLocationKey": "JP-WAREHOUSE",
    }


def offer_json(listing: EbayListing) -> dict[str, Any]:
    """An ``EbayOfferDetailsWithAll`` for a published fixed-price offer (its listing ENDED
    when it sold out while out-of-stock control was off)."""
    return {
        **_offer_fields(listing, listing.offer_id),
        "includeCatalogProductDetails": True,
        "pricingSummary": {"price": {"value": listing.price_value(), "currency": CURRENCY}},
        "listingPolicies": {
            "fulfillmentPolicyId": "6196932000",
            "paymentPolicyId": "6196933000",
            "returnPolicyId": "6196934000",
        },
        "status": "PUBLISHED",
        "listing": {
            "listingId": listing.listing_id,
            "listingStatus": "ENDED" if listing.ended else "ACTIVE",
            "soldQuantity": listing.sold_quantity,
            "listingOnHold": False,
        },
    }


def draft_offer_json(listing: EbayListing) -> dict[str, Any]:
    """The SKU's UNPUBLISHED offer: a draft with no listing (``listing`` is only sent for a
    published offer), which ``bulkUpdatePriceQuantity`` does not take."""
    return {
        **_offer_fields(listing, listing.draft_offer_id),
        "pricingSummary": {"price": {"value": listing.price_value(), "currency": CURRENCY}},
        "status": "UNPUBLISHED",
    }


def _inventory_items(world: EbayWorld) -> tuple[dict[str, Any], int, list[str], str]:
    limit, offset = _page_args(25)
    listings = world.inventory_listings()
    page = listings[offset : offset + limit]
    path = "/sell/inventory/v1/inventory_item"
    body: dict[str, Any] = {"href": _page_url(path, limit=limit, offset=offset)}
    if offset + limit < len(listings):
        body["next"] = _page_url(path, limit=limit, offset=offset + limit)
    if offset > 0:
        body["prev"] = _page_url(path, limit=limit, offset=max(0, offset - limit))
    body.update(
        {
            "limit": limit,
            "size": len(page),
            "total": len(listings),
            "inventoryItems": [inventory_item_json(listing) for listing in page],
        }
    )
    return body, 200, [listing.sku for listing in page], "ok"


def _not_found_sku(sku: str) -> EbayError:
    return EbayError(
        404,
        [
            error(
                25710,
                "We didn't find the resource/entity you are requesting. Please verify the request",
                parameters=[("sku", sku)],
            )
        ],
    )


def _inventory_item(world: EbayWorld, sku: str) -> tuple[dict[str, Any], int, list[str], str]:
    listing = world.listings.get(sku)
    if listing is None or listing.api != "inventory":
        raise _not_found_sku(sku)
    return inventory_item_json(listing), 200, [sku], "ok"


def _offer_not_available(what: str) -> dict[str, Any]:
    return error(25713, f"This Offer is not available : {what}.")


def _invalid_sku(sku: str) -> EbayError:
    return EbayError(
        400,
        [
            error(
                25707,
                "This is an invalid value for a SKU. Only alphanumeric characters can be used "
                f"for SKUs, and their length must not exceed {SKU_MAX_LENGTH} characters.",
                parameters=[("sku", sku)],
            )
        ],
    )


def _offers(world: EbayWorld) -> tuple[dict[str, Any], int, list[str], str]:
    sku = request.args.get("sku")
    if not sku:
        raise EbayError(400, [error(25709, "Invalid value for sku. sku is required.")])
    if not valid_sku(sku):
        raise _invalid_sku(sku)
    limit, offset = _page_args(25)
    marketplace = request.args.get("marketplace_id", MARKETPLACE)
    listing = world.listings.get(sku)
    if listing is None or listing.api != "inventory" or marketplace != MARKETPLACE:
        raise EbayError(404, [_offer_not_available(f"sku={sku}")])
    every = [offer_json(listing)]
    if listing.draft_offer_id:
        every.insert(0, draft_offer_json(listing))  # eBay does not promise an order
    offers = every[offset : offset + limit]
    path = "/sell/inventory/v1/offer"
    body = {
        "href": _page_url(path, sku=sku, limit=limit, offset=offset),
        "limit": limit,
        "size": len(offers),
        "total": len(every),
        "offers": offers,
    }
    return body, 200, [sku], "ok"


def _offer(world: EbayWorld, offer_id: str) -> tuple[dict[str, Any], int, list[str], str]:
    listing = world.by_offer_id(offer_id)
    if listing is not None:
        return offer_json(listing), 200, [listing.sku], "ok"
    draft = next((x for x in world.listings.values() if x.draft_offer_id == offer_id), None)
    if draft is None:
        raise EbayError(404, [_offer_not_available(f"offerId={offer_id}")])
    return draft_offer_json(draft), 200, [draft.sku], "ok"


# ---- bulkUpdatePriceQuantity ---------------------------------------------------------------


def _bulk_update(world: EbayWorld) -> tuple[dict[str, Any], int, list[str], str]:
    """Validate the envelope whole (400), then each request entry on its own (200 / 207)."""
    if not (request.mimetype or "").endswith("json"):
        raise EbayError(
            415,
            [
                error(
                    2004,
                    "Invalid request",
                    domain="ACCESS",
                    long_message="The request has errors. Content-Type must be application/json.",
                )
            ],
        )
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise EbayError(
            400,
            [
                error(
                    2004,
                    "Invalid request",
                    domain="ACCESS",
                    long_message="The request has errors. The body is not valid JSON.",
                )
            ],
        )
    entries = payload.get("requests")
    if not isinstance(entries, list) or not entries:
        raise EbayError(400, [error(25709, "Invalid value for requests. requests is required.")])
    if len(entries) > BULK_MAX_REQUESTS:
        raise EbayError(
            400,
            [
                error(
                    25709,
                    f"Invalid value for requests. At most {BULK_MAX_REQUESTS} requests per call.",
                    parameters=[("requests", str(len(entries)))],
                )
            ],
        )
    responses: list[dict[str, Any]] = []
    skus: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        sku, entry_responses = _update_entry(world, entry, seen)
        if sku:
            skus.append(sku)
        responses.extend(entry_responses)
    failed = any(r["statusCode"] != 200 for r in responses)
    status = 207 if failed else 200
    return {"responses": responses}, status, skus, "partial" if failed else "ok"


def _item_response(
    status: int, sku: str | None, offer_id: str | None, errors: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"statusCode": status}
    if sku is not None:
        body["sku"] = sku
    if offer_id is not None:
        body["offerId"] = offer_id
    if errors:
        body["errors"] = errors
    return body


def _update_entry(
    world: EbayWorld, entry: Any, seen: set[str]
) -> tuple[str | None, list[dict[str, Any]]]:
    """Apply one ``PriceQuantity``; its per-offer (or per-SKU) responses."""
    if not isinstance(entry, dict):
        return None, [
            _item_response(400, None, None, [error(25709, "Invalid value for requests.")])
        ]
    raw_sku = entry.get("sku")
    sku = raw_sku if isinstance(raw_sku, str) else None
    offers = entry.get("offers")
    ship = entry.get("shipToLocationAvailability")
    offer_nodes = offers if isinstance(offers, list) else []
    offer_ids = [str(o.get("offerId")) if isinstance(o, dict) else None for o in offer_nodes]

    def fail_all(status: int, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if offer_ids:
            return [_item_response(status, sku, oid, errors) for oid in offer_ids]
        return [_item_response(status, sku, None, errors)]

    # Which listing the entry revises: the SKU's, else the first offer's.
    listing = world.listings.get(sku) if sku else None
    if sku is not None and (listing is None or listing.api != "inventory"):
        return sku, fail_all(
            400, [error(25702, f"SKU {sku} could not be found or is not available in the system.")]
        )
    if ship is not None and sku is None:
        return None, fail_all(
            400,
            [
                error(
                    25709, "Invalid value for sku. sku is required with shipToLocationAvailability."
                )
            ],
        )
    if ship is None and not offer_nodes:
        return sku, fail_all(
            400,
            [
                error(
                    25709, "Invalid value for requests. Send offers or shipToLocationAvailability."
                )
            ],
        )
    quantity: int | None = None
    if ship is not None:
        raw = ship.get("quantity") if isinstance(ship, dict) else None
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
            return sku, fail_all(
                400, [error(25004, "Invalid quantity. quantity must be 0 or more.")]
            )
        quantity = raw
    # Validate each offer node; collect what to apply.
    planned: list[tuple[str, EbayListing | None, int | None, int | None, list[dict[str, Any]]]] = []
    offer_seen: set[str] = set()
    for node, offer_id in zip(offer_nodes, offer_ids, strict=True):
        errors: list[dict[str, Any]] = []
        target: EbayListing | None = None
        price: int | None = None
        available: int | None = None
        if not isinstance(node, dict) or not node.get("offerId"):
            errors.append(error(25709, "Invalid value for offerId."))
        else:
            target = world.by_offer_id(str(node["offerId"]))
            if target is None or target.api != "inventory":
                errors.append(_offer_not_available(f"offerId={node['offerId']}"))
            elif sku is not None and target.sku != sku:
                errors.append(
                    error(
                        25709, f"Invalid value for offerId. The offer does not belong to SKU {sku}."
                    )
                )
            elif str(node["offerId"]) in offer_seen:
                errors.append(error(25709, "Invalid value for offerId. Duplicate offerId."))
            if "price" not in node and "availableQuantity" not in node:
                errors.append(
                    error(25709, "Invalid value for offers. Send price or availableQuantity.")
                )
            if "price" in node:
                amount = node["price"]
                cents = value_to_cents(amount.get("value")) if isinstance(amount, dict) else None
                currency = amount.get("currency") if isinstance(amount, dict) else None
                if cents is None or currency != CURRENCY:
                    errors.append(
                        error(
                            25003, "Invalid price. value must be a decimal string and currency USD."
                        )
                    )
                elif not PRICE_MIN_CENTS <= cents <= PRICE_MAX_CENTS:
                    errors.append(
                        error(25003, "Invalid price. The price must be at least 0.99 USD.")
                    )
                else:
                    price = cents
            if "availableQuantity" in node:
                raw = node["availableQuantity"]
                if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                    errors.append(
                        error(25004, "Invalid quantity. availableQuantity must be 0 or more.")
                    )
                else:
                    available = raw
            offer_seen.add(str(node["offerId"]))
        planned.append((offer_id or "", target, price, available, errors))
    key_listing = listing or next((p[1] for p in planned if p[1] is not None and not p[4]), None)
    key = key_listing.sku if key_listing else sku
    if key is not None and key in seen:
        return key, fail_all(
            400, [error(25709, f"Invalid value for sku. SKU {key} appears twice in this call.")]
        )
    if key is not None:
        seen.add(key)
    # An ended listing takes no revision; the 251st revision of a listing today fails; so
    # does a chosen partial-failure SKU.
    if key_listing is not None:
        if key_listing.ended:
            return key, fail_all(
                400,
                [
                    error(
                        25019,
                        f"Cannot revise listing. The listing {key_listing.listing_id} has ended "
                        "(it sold out while out-of-stock control was off); relist it.",
                        parameters=[("listingId", key_listing.listing_id)],
                    )
                ],
            )
        if world.revisions_today(key_listing) >= world.revisions_per_day:
            return key, fail_all(
                400,
                [
                    error(
                        25019,
                        "Cannot revise listing. This listing has been revised the maximum "
                        f"{world.revisions_per_day} times today; try again after midnight PST.",
                        parameters=[("listingId", key_listing.listing_id)],
                    )
                ],
            )
        faults = world.state.faults
        if key_listing.sku in faults.partial_failure_skus or world.state.roll(
            faults.partial_failure_rate
        ):
            return key, fail_all(500, [SYSTEM_ERROR])
    # Apply.
    responses: list[dict[str, Any]] = []
    changes: dict[str, Any] = {}
    if quantity is not None and listing is not None:
        listing.quantity = quantity
        changes["quantity"] = quantity
        if not offer_nodes:
            listing.available_quantity = quantity  # one marketplace: the offer follows
            responses.append(_item_response(200, sku, None, []))
    for offer_id, target, price, available, errors in planned:
        if errors or target is None:
            responses.append(
                _item_response(400, sku or (target.sku if target else None), offer_id, errors)
            )
            continue
        if price is not None:
            target.price_cents = price
            changes["price"] = price
            changes["currency"] = CURRENCY
        if available is not None:
            target.available_quantity = available
            changes["quantity"] = available if quantity is None else min(available, quantity)
        responses.append(_item_response(200, target.sku, offer_id, []))
    if changes and key_listing is not None:
        world.add_revision(key_listing)
        if "quantity" in changes and world.end_if_sold_out(key_listing):
            changes["ended"] = True
        world.state.ledger.record_change(
            "ebay", world.account, key_listing.sku, changes, "bulk_update_price_quantity"
        )
    return key, responses


# (method, rule, operationId, handler) of every Inventory API route; the path's variables
# go to the handler as keyword arguments.
INVENTORY_ROUTES: tuple[tuple[str, str, str, Callable[..., Any]], ...] = (
    ("GET", "/sell/inventory/v1/inventory_item", "getInventoryItems", _inventory_items),
    ("GET", "/sell/inventory/v1/inventory_item/<path:sku>", "getInventoryItem", _inventory_item),
    ("GET", "/sell/inventory/v1/offer", "getOffers", _offers),
    ("GET", "/sell/inventory/v1/offer/<offer_id>", "getOffer", _offer),
    (
        "POST",
        "/sell/inventory/v1/bulk_update_price_quantity",
        "bulkUpdatePriceQuantity",
        _bulk_update,
    ),
)
