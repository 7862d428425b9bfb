"""Sandbox eBay Trading API: ``POST /ws/api.dll`` with ``ReviseInventoryStatus``, ``GetItem``,
``GetMyeBaySelling`` and ``GetUserPreferences`` (XML).

Stage: sandbox. Reads: the request XML, ``state.faults``. Writes: the Trading listings of
the eBay world (``state.apis["ebay"]``, see ``ebay.py``) and ``state.ledger`` (api
``trading``).

Wire contract (NOTES-platforms.md §A.4): 1–4 ``InventoryStatus`` nodes, each ``ItemID``
and/or ``SKU`` plus ``StartPrice`` and/or ``Quantity``; always HTTP 200 with ``Ack``
Success, Warning (some items failed) or Failure (all failed, or a call-level error); one
``Errors`` element per failing item whose ``ErrorParameters`` value names the ItemID (or
the SKU when no ItemID was sent). The response ``Quantity`` is available + already sold,
as eBay's InventoryStatusType says; the ``InventoryStatus`` list is what was revised. An
Inventory-API listing is refused (21919474); a SKU alone identifies only a listing tracked
by SKU (``InventoryTrackingMethod=SKU``), any other is not found by it (21676); an ended
listing refuses every revision (21916750). A revision to quantity 0 ends the listing when
the seller's Out-of-Stock Control preference is off (``GetUserPreferences`` with
``ShowOutOfStockControlPreference`` answers it). Knobs ``trading_unnamed_errors`` (per-item
errors without ``ErrorParameters``) and ``trading_partial_failure_ack`` (``Ack``
PartialFailure when some items were revised and some not) model what live eBay also sends.
Auth: ``X-EBAY-API-IAF-TOKEN`` (the OAuth user token) or ``RequesterCredentials``; an
expired token answers 21917053, an unknown one 21916984.

``GetMyeBaySelling`` answers the ``ActiveList`` (when the request has ``ActiveList/Include``
true): every active listing of the account, Inventory-API ones included, as real eBay's My
eBay view does, paged by ``ActiveList/Pagination`` (``EntriesPerPage`` 1–200, default 25;
``PageNumber`` from 1, default 1; a page past the last is empty). Each ``Item`` carries
``ItemID``, ``Title``, ``SKU``, ``ListingType`` FixedPriceItem, ``BuyItNowPrice`` and
``StartPrice`` (``currencyID``), ``Quantity`` (available + sold), ``QuantityAvailable`` and
``SellingStatus/CurrentPrice``; ``PaginationResult`` has ``TotalNumberOfPages`` and
``TotalNumberOfEntries``. Every call, whatever it is, counts against the Trading daily quota.

Error codes: 2 (unsupported call), 37 (invalid input), 17 (no such item), 518 (call quota),
10007 (internal error), 21916984 (invalid IAF token), 21917053 (expired IAF token),
21916750 (ended item), 21676 (no active item for the SKU) and 21919474 are eBay's; the
code for the daily revision cap (21919188) is the sandbox's choice — the real one is
unverified.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

from pipeline.sandbox.ebay import EbayListing, EbayWorld, value_to_cents
from pipeline.sandbox.gate import Call, Dialect, Gate, Refused, Reply
from pipeline.sandbox.state import SandboxState

NS = "urn:ebay:apis:eBLBaseComponents"
MAX_STATUSES = 4  # InventoryStatus nodes per ReviseInventoryStatus call
VERSION = "1349"
BUILD = "E1349_CORE_APISELLING_19187371_R1"
REVISION_CAP_CODE = "21919188"  # sandbox's choice (see the module docstring)
ENTRIES_PER_PAGE_DEFAULT = 25  # GetMyeBaySelling Pagination, as most Trading calls
ENTRIES_PER_PAGE_MAX = 200
# GetItem is the read a client needs to reconcile a revision it sent but never saw answered;
# GetMyeBaySelling is how a pull finds the listings no Inventory API call shows.
# GetUserPreferences is how a seller's tool learns the Out-of-Stock Control preference.
SUPPORTED_CALLS = ("ReviseInventoryStatus", "GetItem", "GetMyeBaySelling", "GetUserPreferences")
XML = "text/xml;charset=utf-8"
TEXT = "text/plain; charset=utf-8"  # what Flask sends for mimetype="text/plain"


@dataclass
class TradingError:
    """One ``Errors`` element."""

    code: str
    short: str
    long: str
    param: str | None = None  # ItemID or SKU the error is about
    classification: str = "RequestError"
    severity: str = "Error"

    def xml(self) -> str:
        param = (
            f'<ErrorParameters ParamID="0"><Value>{escape(self.param)}</Value></ErrorParameters>'
            if self.param is not None
            else ""
        )
        return (
            f"<Errors><ShortMessage>{escape(self.short)}</ShortMessage>"
            f"<LongMessage>{escape(self.long)}</LongMessage>"
            f"<ErrorCode>{self.code}</ErrorCode><SeverityCode>{self.severity}</SeverityCode>"
            f"{param}<ErrorClassification>{self.classification}</ErrorClassification></Errors>"
        )


def _response(
    call: str, ack: str, errors: list[TradingError], body: str = "", *, now: float
) -> str:
    """A ``<call>Response`` document; ``now`` is eBay's time (sandbox unix seconds)."""
    timestamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<{call}Response xmlns="{NS}"><Timestamp>{timestamp}</Timestamp><Ack>{ack}</Ack>'
        + "".join(e.xml() for e in errors)
        + f"<Version>{VERSION}</Version><Build>{BUILD}</Build>{body}</{call}Response>"
    )


def _child(node: ET.Element, name: str) -> str | None:
    found = node.find(f"{{{NS}}}{name}")
    if found is None:
        found = node.find(name)
    if found is None or found.text is None:
        return None
    return found.text.strip()


class TradingDialect(Dialect):
    """Trading's spelling: HTTP 200 with ``Ack`` Failure and one ``Errors`` element for every
    call-level refusal (unsupported call, bad IAF token, 518 for a storm or the daily quota,
    10007 for the error fault); outages and the HTML fault are 503s without XML."""

    api = "trading"

    def __init__(self, world: EbayWorld) -> None:
        super().__init__(world.state)
        self.world = world

    def unavailable(self, call: Call) -> Reply:
        return Reply(503, "Service Unavailable", "fault:outage", content_type=TEXT)

    def authenticate(self, call: Call) -> None:
        """An unsupported call name, then the IAF token (header or RequesterCredentials)."""
        name = _call_name()
        if name not in SUPPORTED_CALLS:
            error = TradingError(
                "2",
                "Unsupported API call.",
                f'The API call "{name}" is invalid or not supported in this release.',
            )
            raise Refused(self.failure(name or "Generic", error, "error"))
        token = request.headers.get("X-EBAY-API-IAF-TOKEN", "").strip()
        if not token:
            token = _auth_token_in_body(request.get_data())
        if not self.world.access_token_valid(token):
            expired = token in self.world.access_tokens
            invalid = (
                TradingError("21917053", "Expired IAF token.", "IAF token supplied is expired.")
                if expired
                else TradingError(
                    "21916984", "Invalid IAF token.", "IAF token supplied is invalid."
                )
            )
            raise Refused(
                self.failure(name, invalid, "expired_token" if expired else "unauthorized")
            )

    def storm(self, call: Call) -> Reply | None:
        return self.failure(_call_name(), _quota_error(), "fault:throttle_storm")

    def spend_quota(self, call: Call) -> None:
        world = self.world
        day = world.day()
        if world.trading_calls.current(day) >= world.trading_daily_call_limit:
            raise Refused(self.failure(_call_name(), _quota_error(), "throttled"))
        if self.state.roll(self.state.faults.ebay_429_rate):
            raise Refused(self.failure(_call_name(), _quota_error(), "throttled"))
        world.trading_calls.add(day)

    def server_error(self, call: Call) -> Reply:
        internal = TradingError(
            "10007",
            "Internal error to the application.",
            "Internal error to the application.",
            classification="SystemError",
        )
        return self.failure(_call_name(), internal, "fault:error")

    def failure(self, call: str, error: TradingError, outcome: str) -> Reply:
        """A call-level ``Ack`` Failure (HTTP 200)."""
        text = _response(call, "Failure", [error], now=self.world.calendar.now())
        return Reply(200, text, outcome, content_type=XML)


def _call_name() -> str:
    return request.headers.get("X-EBAY-API-CALL-NAME", "")


def _quota_error() -> TradingError:
    return TradingError(
        "518",
        "Call usage limit has been reached.",
        "Your application has exceeded usage limit on this call, please make call to "
        "Developer Analytics API to check your call usage.",
    )


def add_routes(bp: Blueprint, state: SandboxState, world: EbayWorld) -> None:
    """Register ``/ws/api.dll`` on the eBay blueprint."""
    gate = Gate(state, TradingDialect(world))

    def handle(call: Call) -> Reply:
        name = _call_name()
        if name == "GetItem":
            ack, errors, body, call.items = _get_item(world, request.get_data())
        elif name == "GetMyeBaySelling":
            ack, errors, body, call.items = _my_ebay_selling(world, request.get_data())
        elif name == "GetUserPreferences":
            ack, errors, body, call.items = _user_preferences(world, request.get_data())
        else:
            ack, errors, body, call.items = _revise(world, request.get_data())
        outcome = {
            "Success": "ok",
            "Warning": "partial",
            "PartialFailure": "partial",
            "Failure": "error",
        }[ack]
        text = _response(name, ack, errors, body, now=world.calendar.now())
        return Reply(200, text, outcome, content_type=XML)

    @bp.route("/ws/api.dll", methods=["POST"])
    def api_dll() -> Response:
        return gate.answer(_call_name() or "unknown", handle, account=world.account)


def _auth_token_in_body(raw: bytes) -> str:
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        return ""
    for node in root.iter():
        if node.tag.endswith("eBayAuthToken") and node.text:
            return node.text.strip()
    return ""


Answer = tuple[str, list[TradingError], str, list[str]]  # Ack, errors, body, ledger items


def _request_root(raw: bytes, tag: str) -> ET.Element | Answer:
    """The request's root element, or the Failure a malformed request or another root
    element gets (as eBay answers them)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        return "Failure", [_invalid("the request is not well-formed XML", tag)], "", []
    if not root.tag.endswith(tag):
        return "Failure", [_invalid(f"the root element must be {tag}", tag)], "", []
    return root


def _revise(world: EbayWorld, raw: bytes) -> tuple[str, list[TradingError], str, list[str]]:
    """Ack, errors, the InventoryStatus/Fees body and the item keys of one call."""
    root = _request_root(raw, "ReviseInventoryStatusRequest")
    if isinstance(root, tuple):
        return root
    nodes = [n for n in root if n.tag.endswith("InventoryStatus")]
    if not 1 <= len(nodes) <= MAX_STATUSES:
        message = f"send 1 to {MAX_STATUSES} InventoryStatus containers, not {len(nodes)}"
        return "Failure", [_invalid(message, tag="InventoryStatus")], "", []
    errors: list[TradingError] = []
    done: list[EbayListing] = []
    items: list[str] = []
    seen: set[str] = set()
    for node in nodes:
        item_id, sku = _child(node, "ItemID"), _child(node, "SKU")
        param = item_id or sku
        items.append(param or "")
        listing, problem = _validate(world, node, item_id, sku, seen)
        if problem is not None:
            problem.param = None if world.state.faults.trading_unnamed_errors else param
            errors.append(problem)
            continue
        assert listing is not None
        seen.add(listing.listing_id)
        price_text, quantity_text = _child(node, "StartPrice"), _child(node, "Quantity")
        changes: dict[str, object] = {}
        if price_text is not None:
            listing.price_cents = _cents(price_text) or listing.price_cents
            changes["price"] = listing.price_cents
            changes["currency"] = "USD"
        if quantity_text is not None:
            listing.quantity = listing.available_quantity = int(quantity_text)
            changes["quantity"] = listing.quantity
            if world.end_if_sold_out(listing):
                changes["ended"] = True
        world.add_revision(listing)
        world.state.ledger.record_change(
            "ebay", world.account, listing.sku, changes, "ReviseInventoryStatus"
        )
        done.append(listing)
    if not done:
        ack = "Failure"
    elif errors:
        ack = "PartialFailure" if world.state.faults.trading_partial_failure_ack else "Warning"
    else:
        ack = "Success"
    body = "".join(_status_xml(listing) for listing in done) + "".join(
        _fees_xml(listing) for listing in done
    )
    return ack, errors, body, items


def _get_item(world: EbayWorld, raw: bytes) -> tuple[str, list[TradingError], str, list[str]]:
    """``GetItem`` by ItemID: the listing's SKU, price, Quantity (available + sold, as
    eBay counts it), QuantitySold and ListingStatus. Any listing can be read this way."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        return "Failure", [_invalid("the request is not well-formed XML", "GetItemRequest")], "", []
    item_id = _child(root, "ItemID")
    if not root.tag.endswith("GetItemRequest") or not item_id:
        return "Failure", [_invalid("GetItem needs an ItemID", tag="ItemID")], "", []
    listing = world.by_item_id(item_id)
    if listing is None:
        error = TradingError(
            "17",
            "Item cannot be accessed.",
            f"This item cannot be accessed because the listing has been deleted or you are "
            f'not the seller ("{item_id}").',
            param=item_id,
        )
        return "Failure", [error], "", [item_id]
    body = (
        f"<Item><ItemID>{listing.listing_id}</ItemID><SKU>{escape(listing.sku)}</SKU>"
        f'<StartPrice currencyID="USD">{listing.price_value()}</StartPrice>'
        f"<Quantity>{listing.quantity + listing.sold_quantity}</Quantity>"
        f"<SellingStatus><QuantitySold>{listing.sold_quantity}</QuantitySold>"
        f"<ListingStatus>{'Completed' if listing.ended else 'Active'}</ListingStatus>"
        "</SellingStatus></Item>"
    )
    return "Success", [], body, [item_id]


def _my_ebay_selling(
    world: EbayWorld, raw: bytes
) -> tuple[str, list[TradingError], str, list[str]]:
    """``GetMyeBaySelling``: one page of the ActiveList (every active listing, in the
    world's order); the ItemIDs of the page for the ledger."""
    root = _request_root(raw, "GetMyeBaySellingRequest")
    if isinstance(root, tuple):
        return root
    active = root.find(f"{{{NS}}}ActiveList")
    if active is None:
        active = root.find("ActiveList")
    if active is None or (_child(active, "Include") or "").lower() != "true":
        return "Success", [], "", []  # only the ActiveList is simulated: nothing asked for
    pagination = active.find(f"{{{NS}}}Pagination")
    if pagination is None:
        pagination = active.find("Pagination")
    per_page_text = _child(pagination, "EntriesPerPage") if pagination is not None else None
    page_text = _child(pagination, "PageNumber") if pagination is not None else None
    per_page = _whole(per_page_text, ENTRIES_PER_PAGE_DEFAULT)
    page = _whole(page_text, 1)
    if per_page is None or not 1 <= per_page <= ENTRIES_PER_PAGE_MAX:
        why = f'EntriesPerPage "{per_page_text}" is not 1 to {ENTRIES_PER_PAGE_MAX}'
        return "Failure", [_invalid(why, "EntriesPerPage")], "", []
    if page is None or page < 1:
        return (
            "Failure",
            [_invalid(f'PageNumber "{page_text}" is not 1 or more', "PageNumber")],
            "",
            [],
        )
    listings = [listing for listing in world.listings.values() if not listing.ended]
    total_pages = -(-len(listings) // per_page)  # ceiling division
    shown = listings[(page - 1) * per_page : page * per_page]
    body = (
        "<ActiveList><ItemArray>"
        + "".join(_active_item_xml(listing) for listing in shown)
        + "</ItemArray><PaginationResult>"
        f"<TotalNumberOfPages>{total_pages}</TotalNumberOfPages>"
        f"<TotalNumberOfEntries>{len(listings)}</TotalNumberOfEntries>"
        "</PaginationResult></ActiveList>"
    )
    return "Success", [], body, [listing.listing_id for listing in shown]


def _user_preferences(
    world: EbayWorld, raw: bytes
) -> tuple[str, list[TradingError], str, list[str]]:
    """``GetUserPreferences``: only ``ShowOutOfStockControlPreference`` is simulated; it
    answers ``<OutOfStockControlPreference>true|false</OutOfStockControlPreference>``."""
    root = _request_root(raw, "GetUserPreferencesRequest")
    if isinstance(root, tuple):
        return root
    if (_child(root, "ShowOutOfStockControlPreference") or "").lower() != "true":
        return "Success", [], "", []  # nothing asked for that the sandbox knows
    value = "true" if world.out_of_stock_control() else "false"
    return "Success", [], f"<OutOfStockControlPreference>{value}</OutOfStockControlPreference>", []


def _whole(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    return int(text) if text.isdigit() else None


def _active_item_xml(listing: EbayListing) -> str:
    price = f'currencyID="USD">{listing.price_value()}'
    # what a buyer can buy now: an Inventory listing's offer is capped by the item's quantity
    available = min(listing.quantity, listing.available_quantity)
    return (
        f"<Item><BuyItNowPrice {price}</BuyItNowPrice><ItemID>{listing.listing_id}</ItemID>"
        "<ListingDuration>GTC</ListingDuration><ListingType>FixedPriceItem</ListingType>"
        f"<Quantity>{available + listing.sold_quantity}</Quantity>"
        f"<SellingStatus><CurrentPrice {price}</CurrentPrice></SellingStatus>"
        f"<StartPrice {price}</StartPrice><Title>{escape(listing.title)}</Title>"
        f"<QuantityAvailable>{available}</QuantityAvailable>"
        f"<SKU>{escape(listing.sku)}</SKU></Item>"
    )


def _validate(
    world: EbayWorld, node: ET.Element, item_id: str | None, sku: str | None, seen: set[str]
) -> tuple[EbayListing | None, TradingError | None]:
    if item_id is None and sku is None:
        return None, _invalid("each InventoryStatus needs an ItemID or a SKU", tag="ItemID")
    listing = world.by_item_id(item_id) if item_id else world.listings.get(sku or "")
    # a SKU alone finds only a listing tracked by SKU (InventoryTrackingMethod=SKU)
    if (
        listing is not None
        and item_id is None
        and listing.api == "trading"
        and not listing.sku_tracked
    ):
        return None, TradingError(
            "21676",
            f"Invalid SKU number: {sku}.",
            "Could not find an active item for the given SKU number. A valid ItemID or "
            "SKU number is required.",
        )
    if listing is None:
        missing = item_id or sku or ""
        return None, TradingError(
            "17",
            "Item cannot be accessed.",
            f"This item cannot be accessed because the listing has been deleted or you are "
            f'not the seller ("{missing}").',
        )
    if listing.api != "trading":
        return None, TradingError(
            "21919474",
            "Inventory API listing",
            "This listing was created with the Inventory API and can only be revised with the "
            "Inventory API.",
        )
    if listing.ended:
        return None, TradingError(
            "21916750",
            "FixedPrice item ended.",
            f'You are not allowed to revise an ended item "{listing.listing_id}".',
        )
    if listing.listing_id in seen:
        return None, _invalid("the same listing appears twice in this request", tag="ItemID")
    price_text, quantity_text = _child(node, "StartPrice"), _child(node, "Quantity")
    if price_text is None and quantity_text is None:
        return None, _invalid("send StartPrice or Quantity (or both)", tag="StartPrice")
    if price_text is not None:
        cents = _cents(price_text)
        if cents is None or cents < 99:
            return None, _invalid(
                f'StartPrice "{price_text}" is not a price of 0.99 or more', tag="StartPrice"
            )
    if quantity_text is not None and not quantity_text.isdigit():
        return None, _invalid(
            f'Quantity "{quantity_text}" is not a whole number of 0 or more', tag="Quantity"
        )
    if world.revisions_today(listing) >= world.revisions_per_day:
        return None, TradingError(
            REVISION_CAP_CODE,
            "Revision limit reached.",
            f"This listing has been revised the maximum {world.revisions_per_day} times today; "
            "try again after midnight PST.",
        )
    faults = world.state.faults
    if listing.sku in faults.partial_failure_skus or world.state.roll(faults.partial_failure_rate):
        return None, TradingError(
            "10007",
            "Internal error to the application.",
            "Internal error to the application.",
            classification="SystemError",
        )
    return listing, None


def _invalid(why: str, tag: str = "ReviseInventoryStatusRequest") -> TradingError:
    return TradingError(
        "37", "Input data is invalid.", f"Input data for tag <{tag}> is invalid or missing: {why}."
    )


def _cents(text: str) -> int | None:
    whole, _, fraction = text.partition(".")
    if fraction and len(fraction) > 2 and set(fraction[2:]) <= {"0"}:
        text = f"{whole}.{fraction[:2]}"  # "20.000" is 20.00
    return value_to_cents(text)


def _status_xml(listing: EbayListing) -> str:
    # Quantity echoes available + sold, as eBay's InventoryStatusType documents.
    return (
        f"<InventoryStatus><SKU>{escape(listing.sku)}</SKU><ItemID>{listing.listing_id}</ItemID>"
        f'<StartPrice currencyID="USD">{listing.price_value()}</StartPrice>'
        f"<Quantity>{listing.quantity + listing.sold_quantity}</Quantity></InventoryStatus>"
    )


def _fees_xml(listing: EbayListing) -> str:
    fees = "".join(
        f'<Fee><Name>{name}</Name><Fee currencyID="USD">0.0</Fee></Fee>'
        for name in ("AuctionLPFee", "InsertionFee", "ListingFee")
    )
    return f"<Fees><ItemID>{listing.listing_id}</ItemID>{fees}</Fees>"
