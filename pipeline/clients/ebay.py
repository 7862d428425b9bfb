"""eBay over ``requests``: OAuth refresh, Sell Inventory API and Trading ReviseInventoryStatus.

Stage: load and listings pull. Reads: the eBay APIs (or the sandbox). Writes: nothing.

* Token: ``POST /identity/v1/oauth2/token`` with HTTP Basic client credentials and the
  refresh-token grant; eBay does not rotate its refresh token. A 401 (errorId 1001) on a
  data call refreshes once and repeats the call once.
* ``bulk_update_price_quantity``: at most 25 SKUs per call; 200 and 207 both carry one
  result per SKU, which :meth:`EbayClient.bulk_update` returns as :class:`SkuResult`.
* ``getInventoryItems`` (paged by following ``next``) and ``getOffers?sku=`` for pulls and
  for reading a listing's state back before a resend. A SKU may have several offers (an
  UNPUBLISHED draft besides the listing): :func:`published_offer` picks the PUBLISHED
  FIXED_PRICE one. A 400 about the SKU itself (errorId 25707, not a valid eBay SKU) is
  :class:`EbayRequestRejected`, so only that row fails.
* Trading ``ReviseInventoryStatus`` (XML, at most 4 listings per call, same OAuth token in
  ``X-EBAY-API-IAF-TOKEN``) for listings created outside the Inventory API, ``GetItem`` to
  read one back, and ``GetMyeBaySelling`` (``ActiveList``, 200 per page) for pulls: the only
  way to find those listings, since no Inventory API call shows them. Every Trading call
  counts against the Trading daily call limit (5,000 by default). ReviseInventoryStatus
  revises by ItemID only (a SKU identifies only listings tracked by SKU, not the default);
  an item is revised iff its ItemID is in the answer's ``InventoryStatus`` list and no
  error names it, whatever the ``Ack`` (Success, Warning, PartialFailure, Failure).
* Trading ``GetUserPreferences`` (``ShowOutOfStockControlPreference``):
  :meth:`EbayClient.out_of_stock_control`, whether quantity 0 keeps a listing alive (on) or
  ends it (off).
* An IAF-token error on a Trading call (931, 21916984 invalid, 21917053 expired: HTTP 200,
  Ack=Failure) refreshes the token once and repeats the call once.

Money crosses the wire as a decimal string (``"49.99"``); inside invsync it is integer
cents, converted exactly (no rounding: a value with more than 2 decimals is an error).
"""

from __future__ import annotations

import base64
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin
from xml.sax.saxutils import escape

import requests

from pipeline.clients.http import (
    AccessToken,
    RetryPolicy,
    json_body,
    refreshed_once,
    send,
    unusable_answer,
)
from pipeline.errors import EbayAuthError as EbayAuthError
from pipeline.errors import EbayQuotaError as EbayQuotaError
from pipeline.errors import EbayRequestRejected as EbayRequestRejected
from pipeline.errors import ReadBackUnavailable as ReadBackUnavailable

log = logging.getLogger("invsync.ebay")

LIVE_URL = "https://api.ebay.com"
INVENTORY = "/sell/inventory/v1"
TOKEN_PATH = "/identity/v1/oauth2/token"
TRADING_PATH = "/ws/api.dll"
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"
BULK_LIMIT = 25  # SKUs per bulk_update_price_quantity
TRADING_LIMIT = 4  # listings per ReviseInventoryStatus
TRADING_COMPATIBILITY = "1349"
TRADING_NS = "urn:ebay:apis:eBLBaseComponents"
TRADING_QUOTA_CODES = frozenset({"518"})  # "Call usage limit has been reached."
# invalid Auth'n'Auth token, invalid IAF token, expired IAF token
TRADING_AUTH_CODES = frozenset({"931", "21916984", "21917053"})
TRADING_GONE_CODES = frozenset({"17"})  # "Item cannot be accessed."
ACTIVE_LIST_PAGE = 200  # GetMyeBaySelling EntriesPerPage, the documented maximum
ACTIVE_LIST_CAP = 25_000  # GetMyeBaySelling lists at most this many items, whatever the paging
FIXED_PRICE_TYPES = frozenset({"FixedPriceItem", "StoresFixedPrice"})  # ReviseInventoryStatus


@dataclass(frozen=True)
class EbayCredentials:
    client_id: str
    client_secret: str
    refresh_token: str


@dataclass(frozen=True)
class PriceQuantity:
    """One listing's absolute target: what bulk_update / ReviseInventoryStatus sends."""

    sku: str
    price_cents: int  # US cents
    quantity: int
    currency: str = "USD"
    offer_id: str | None = None
    listing_id: str | None = None  # Trading ItemID


@dataclass(frozen=True)
class SkuResult:
    """eBay's answer for one SKU of a call."""

    sku: str
    ok: bool
    status: int | None  # per-item statusCode (Inventory) or None (Trading)
    code: str | None  # errorId / ErrorCode of the first error
    message: str | None


@dataclass(frozen=True)
class OfferState:
    """An offer (or a Trading listing) as eBay holds it now."""

    sku: str
    offer_id: str | None
    listing_id: str | None
    price_cents: int | None
    currency: str | None
    quantity: int | None
    status: str | None  # offer: PUBLISHED | UNPUBLISHED; Trading: ListingStatus (Active, ...)
    format: str | None = None  # FIXED_PRICE | AUCTION (offers)
    listing_status: str | None = None  # ACTIVE, OUT_OF_STOCK, ENDED, ... (published offers)

    @property
    def ended(self) -> bool:
        """The listing has ended (sold out without out-of-stock control, or ended by hand)."""
        return (self.listing_status or "").upper() in ENDED_LISTING_STATUSES or (
            self.status or ""
        ) in ("Completed", "Ended")


ENDED_LISTING_STATUSES = frozenset({"ENDED", "EBAY_ENDED"})


def published_offer(offers: list[OfferState]) -> OfferState | None:
    """The SKU's live listing among its offers: the PUBLISHED FIXED_PRICE one, never simply
    the first (an UNPUBLISHED draft or an auction may come before it)."""
    return next(
        (o for o in offers if o.offer_id and o.status == "PUBLISHED" and o.format == "FIXED_PRICE"),
        None,
    )


@dataclass(frozen=True)
class ActiveListing:
    """One ``ActiveList/ItemArray/Item`` of ``GetMyeBaySelling``."""

    item_id: str
    sku: str | None
    price_cents: int | None  # BuyItNowPrice, else StartPrice, else SellingStatus/CurrentPrice
    currency: str | None
    quantity: int | None  # QuantityAvailable: what a buyer can still buy
    listing_type: str | None  # FixedPriceItem, StoresFixedPrice, Chinese (auction), ...

    @property
    def fixed_price(self) -> bool:
        return self.listing_type is None or self.listing_type in FIXED_PRICE_TYPES


@dataclass(frozen=True)
class ActiveList:
    """Every page of a seller's ``GetMyeBaySelling`` ActiveList."""

    listings: list[ActiveListing]
    total_entries: int  # TotalNumberOfEntries (the largest any page reported)
    calls: int  # GetMyeBaySelling calls made
    stable: bool  # every page reported the same TotalNumberOfEntries

    @property
    def complete(self) -> bool:
        """Whether every active listing was read, so a listing missing from it has ended:
        the pages agreed on the total, all its entries came back, and eBay's 25,000-item cap
        was not reached (past it, a listing left out may still be active)."""
        read = len({listing.item_id for listing in self.listings})
        return self.stable and read >= self.total_entries and self.total_entries < ACTIVE_LIST_CAP


def cents_to_text(cents: int) -> str:
    """Integer cents → eBay's decimal string, exactly (``4999`` → ``"49.99"``)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def text_to_cents(value: Any) -> int | None:
    """eBay's decimal string → integer cents, exactly; None when absent or not 2-decimal."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value)) * 100
    except InvalidOperation:
        return None
    if amount != amount.to_integral_value():
        return None  # never round money silently
    return int(amount)


def _first_error(errors: Any) -> tuple[str | None, str | None]:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = first.get("errorId")
        return (str(code) if code is not None else None, first.get("message"))
    return None, None


class EbayClient:
    """The eBay APIs for one seller account."""

    def __init__(
        self,
        *,
        account_id: str,
        api_url: str,
        credentials: EbayCredentials,
        policy: RetryPolicy,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_id = account_id
        self._who = f"eBay account {account_id}"  # how messages name the account
        self.api_url = api_url.rstrip("/")
        self._credentials = credentials
        self.policy = policy
        self._session = session or requests.Session()
        self._clock = clock
        self._token = AccessToken()
        self.calls = 0

    def _send(self, method: str, url: str, operation: str, **kwargs: Any) -> requests.Response:
        def before() -> None:
            self.calls += 1

        return send(
            self._session,
            method,
            url,
            platform=f"eBay {self.account_id}",
            operation=operation,
            policy=self.policy,
            before_attempt=before,
            **kwargs,
        )

    # --- OAuth ------------------------------------------------------------------------

    def refresh(self) -> None:
        pair = f"{self._credentials.client_id}:{self._credentials.client_secret}"
        basic = base64.b64encode(pair.encode()).decode()
        response = self._send(
            "POST",
            f"{self.api_url}{TOKEN_PATH}",
            "oauth2/token",
            headers={"Authorization": f"Basic {basic}"},
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._credentials.refresh_token,
                "scope": SCOPE,
            },
        )
        body = json_body(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            code = str(body.get("error", "")) if isinstance(body, dict) else ""
            raise EbayAuthError(
                f"eBay account {self.account_id} refused the token refresh "
                f"({code or 'HTTP ' + str(response.status_code)}); check EBAY_CLIENT_ID, "
                "EBAY_CLIENT_SECRET and EBAY_REFRESH_TOKEN, or consent again.",
                code=code or f"http_{response.status_code}",
                http_status=response.status_code,
            )
        lifetime = float(body.get("expires_in") or 7200)  # seconds
        self._token = AccessToken.lasting(token, lifetime, self._clock(), self.policy)
        log.info("eBay %s: access token refreshed", self.account_id)

    def _access(self) -> str:
        if not self._token.usable(self._clock()):
            self.refresh()
        assert self._token.value is not None
        return self._token.value

    def _forget_token(self) -> None:
        self._token = AccessToken()

    def _authorised(
        self,
        method: str,
        url: str,
        operation: str,
        headers: Callable[[str], dict[str, str]],
        **kwargs: Any,
    ) -> requests.Response:
        """A data call; on 401 one refresh and one repeat, then an auth error."""
        response = refreshed_once(
            lambda: self._send(method, url, operation, headers=headers(self._access()), **kwargs),
            lambda answer: answer.status_code == 401,
            self._forget_token,
        )
        if response.status_code != 401:
            return response
        raise EbayAuthError(
            f"eBay account {self.account_id} refused a freshly refreshed access token on "
            f"{operation} (401); check the account's consent and EBAY_REFRESH_TOKEN.",
            code="1001",
            http_status=401,
        )

    def _rest(
        self, method: str, path_or_url: str, operation: str, **kwargs: Any
    ) -> requests.Response:
        url = path_or_url if "://" in path_or_url else f"{self.api_url}{path_or_url}"
        return self._authorised(
            method,
            url,
            operation,
            lambda token: {"Authorization": f"Bearer {token}", "Accept": "application/json"},
            **kwargs,
        )

    # --- Inventory API ----------------------------------------------------------------

    def bulk_update(self, items: list[PriceQuantity]) -> list[SkuResult]:
        """``bulk_update_price_quantity`` for ≤ 25 SKUs; one result per SKU sent."""
        if not 0 < len(items) <= BULK_LIMIT:
            raise ValueError(f"bulk_update takes 1 to {BULK_LIMIT} SKUs, got {len(items)}")
        requests_ = []
        for item in items:
            entry: dict[str, Any] = {
                "sku": item.sku,
                "shipToLocationAvailability": {"quantity": item.quantity},
            }
            if item.offer_id:
                entry["offers"] = [
                    {
                        "offerId": item.offer_id,
                        "availableQuantity": item.quantity,
                        "price": {
                            "value": cents_to_text(item.price_cents),
                            "currency": item.currency,
                        },
                    }
                ]
            requests_.append(entry)
        response = self._rest(
            "POST",
            f"{INVENTORY}/bulk_update_price_quantity",
            "bulk_update_price_quantity",
            json={"requests": requests_},
        )
        body = json_body(response)
        if response.status_code == 400:
            code, message = _first_error(body.get("errors") if isinstance(body, dict) else None)
            raise EbayRequestRejected(
                f"eBay account {self.account_id} rejected a bulk_update_price_quantity call "
                f"({code or 'HTTP 400'}).",
                code=code or "http_400",
                description=message or "",
                http_status=400,
            )
        if response.status_code not in (200, 207) or not isinstance(body, dict):
            raise unusable_answer(
                self._who,
                f"bulk_update_price_quantity with HTTP {response.status_code} and no usable body",
                operation="bulk_update_price_quantity",
                http_status=response.status_code,
            )
        by_sku: dict[str, SkuResult] = {}
        for answer in body.get("responses") or []:
            if not isinstance(answer, dict) or not answer.get("sku"):
                continue
            sku = str(answer["sku"])
            status = answer.get("statusCode")
            code, message = _first_error(answer.get("errors"))
            ok = status == 200 and code is None
            previous = by_sku.get(sku)
            if previous is not None and not previous.ok:
                continue  # several offers of one SKU: the first failure stands
            by_sku[sku] = SkuResult(sku, ok, status, code, message)
        return [
            by_sku.get(
                item.sku,
                SkuResult(
                    item.sku, False, None, "no_result", "eBay returned no result for this SKU"
                ),
            )
            for item in items
        ]

    def offers(self, sku: str) -> list[OfferState]:
        """``getOffers?sku=``: the SKU's offers as eBay holds them (empty when unknown)."""
        response = self._rest("GET", f"{INVENTORY}/offer", "getOffers", params={"sku": sku})
        if response.status_code == 404:
            return []
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            code, message = _first_error(body.get("errors") if isinstance(body, dict) else None)
            if response.status_code == 400 and code in ("25710", "25702"):
                return []  # resource not found / SKU not available
            if response.status_code == 400 and code is not None:
                # about this SKU (25707: not a valid eBay SKU): this row's problem only
                raise EbayRequestRejected(
                    f"eBay account {self.account_id} refused getOffers for SKU {sku} "
                    f"({code}: {message or 'no message'}).",
                    code=code,
                    description=message or "",
                    http_status=400,
                )
            raise unusable_answer(
                self._who,
                f"getOffers with HTTP {response.status_code}",
                operation="getOffers",
                http_status=response.status_code,
            )
        found = []
        for offer in body.get("offers") or []:
            if not isinstance(offer, dict):
                continue
            price = (offer.get("pricingSummary") or {}).get("price") or {}
            listing = offer.get("listing") or {}
            quantity = offer.get("availableQuantity")
            listing_status = listing.get("listingStatus")
            found.append(
                OfferState(
                    sku=str(offer.get("sku") or sku),
                    offer_id=str(offer["offerId"]) if offer.get("offerId") else None,
                    listing_id=str(listing["listingId"]) if listing.get("listingId") else None,
                    price_cents=text_to_cents(price.get("value")),
                    currency=price.get("currency"),
                    quantity=int(quantity) if isinstance(quantity, int) else None,
                    status=offer.get("status"),
                    format=offer.get("format"),
                    listing_status=str(listing_status) if listing_status else None,
                )
            )
        return found

    def inventory_items(self, page_size: int = 200) -> Iterator[dict[str, Any]]:
        """Every inventory item, following the ``next`` link (never computing offsets)."""
        url: str | None = f"{self.api_url}{INVENTORY}/inventory_item?limit={page_size}&offset=0"
        while url:
            response = self._rest("GET", url, "getInventoryItems")
            body = json_body(response)
            if response.status_code != 200 or not isinstance(body, dict):
                raise unusable_answer(
                    self._who,
                    f"getInventoryItems with HTTP {response.status_code}",
                    operation="getInventoryItems",
                    http_status=response.status_code,
                )
            items = body.get("inventoryItems") or []
            yield from (i for i in items if isinstance(i, dict))
            following = body.get("next")
            url = urljoin(f"{self.api_url}/", following) if following and items else None
            if url and "://" in url and not url.startswith(self.api_url):
                # eBay's next links name its own host; keep the configured one (sandbox, proxy)
                url = self.api_url + url[url.index("/", url.index("://") + 3) :]

    # --- Trading API ------------------------------------------------------------------

    def _trading(self, call: str, xml_body: str) -> ET.Element:
        """One Trading call; an IAF-token error (HTTP 200, Ack=Failure) refreshes once."""

        def answer() -> ET.Element:
            response = self._authorised(
                "POST",
                f"{self.api_url}{TRADING_PATH}",
                call,
                lambda token: {
                    "X-EBAY-API-CALL-NAME": call,
                    "X-EBAY-API-SITEID": "0",
                    "X-EBAY-API-COMPATIBILITY-LEVEL": TRADING_COMPATIBILITY,
                    "X-EBAY-API-IAF-TOKEN": token,
                    "Content-Type": "text/xml",
                },
                data=xml_body.encode("utf-8"),
            )
            try:
                return ET.fromstring(response.content)
            except ET.ParseError:
                raise unusable_answer(
                    self._who,
                    f"{call} with a body that is not XML (HTTP {response.status_code})",
                    operation=call,
                    http_status=response.status_code,
                ) from None

        def refused(root: ET.Element) -> bool:
            codes = {
                (e.text or "").strip()
                for e in root.findall(f"{{{TRADING_NS}}}Errors/{{{TRADING_NS}}}ErrorCode")
            }
            return bool(codes & TRADING_AUTH_CODES)

        root = refreshed_once(answer, refused, self._forget_token)
        if not refused(root):
            return root
        raise EbayAuthError(
            f"eBay account {self.account_id} refused a freshly refreshed token on {call}; "
            "check the account's consent and EBAY_REFRESH_TOKEN.",
            code="21916984",
            http_status=200,
        )

    def revise_inventory_status(self, items: list[PriceQuantity]) -> list[SkuResult]:
        """Trading ``ReviseInventoryStatus`` for ≤ 4 listings by ItemID; one result each.

        A listing is revised iff its ItemID comes back in an ``InventoryStatus`` and no
        error names it: ``Ack`` alone cannot say which (Warning and PartialFailure mix
        revised and refused items, and an error may name no item at all)."""
        if not 0 < len(items) <= TRADING_LIMIT:
            raise ValueError(f"ReviseInventoryStatus takes 1 to {TRADING_LIMIT} listings")
        if any(not item.listing_id for item in items):
            raise ValueError("ReviseInventoryStatus revises by ItemID: every item needs one")
        nodes = [
            f"<InventoryStatus><ItemID>{escape(str(item.listing_id))}</ItemID>"
            f"<StartPrice>{cents_to_text(item.price_cents)}</StartPrice>"
            f"<Quantity>{item.quantity}</Quantity></InventoryStatus>"
            for item in items
        ]
        xml_body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<ReviseInventoryStatusRequest xmlns="{TRADING_NS}">{"".join(nodes)}'
            "</ReviseInventoryStatusRequest>"
        )
        root = self._trading("ReviseInventoryStatus", xml_body)
        ns = {"e": TRADING_NS}
        named, general = self._trading_errors(root, ns)
        revised = {
            (node.findtext("e:ItemID", default="", namespaces=ns) or "").strip()
            for node in root.findall("e:InventoryStatus", ns)
        }
        ack = (root.findtext("e:Ack", default="", namespaces=ns) or "").strip()
        results = []
        for item in items:
            found = named.get(str(item.listing_id)) or named.get(item.sku)
            if found is None and str(item.listing_id) not in revised:
                found = general or (
                    ack or "no_ack",
                    f"eBay answered Ack={ack or 'none'} without revising it",
                )
            if found is None:
                results.append(SkuResult(item.sku, True, None, None, None))
            else:
                results.append(SkuResult(item.sku, False, None, found[0], found[1]))
        return results

    def _trading_errors(
        self, root: ET.Element, ns: dict[str, str]
    ) -> tuple[dict[str, tuple[str, str]], tuple[str, str] | None]:
        """The Error-severity ``Errors`` of a Trading answer: by the ItemID or SKU each names,
        and the first that names none. ErrorCode 518 (the call quota) raises."""
        named: dict[str, tuple[str, str]] = {}
        general: tuple[str, str] | None = None
        for error in root.findall("e:Errors", ns):
            if (error.findtext("e:SeverityCode", default="", namespaces=ns) or "") == "Warning":
                continue
            code = (error.findtext("e:ErrorCode", default="", namespaces=ns) or "").strip()
            message = (error.findtext("e:LongMessage", default="", namespaces=ns) or "").strip()
            message = (
                message
                or (error.findtext("e:ShortMessage", default="", namespaces=ns) or "").strip()
            )
            if code in TRADING_QUOTA_CODES:
                raise EbayQuotaError(
                    f"eBay account {self.account_id} reached the Trading API call limit "
                    f"(ErrorCode {code}); the rest waits — run the command again tomorrow.",
                    code=code,
                    http_status=200,  # Trading answers failures with HTTP 200 too
                )
            values = [
                (v.text or "").strip()
                for v in error.findall("e:ErrorParameters/e:Value", ns)
                if (v.text or "").strip()
            ]
            for value in values:
                named.setdefault(value, (code, message))
            if not values and general is None:
                general = (code, message)
        return named, general

    def out_of_stock_control(self) -> bool:
        """Trading ``GetUserPreferences``: whether the seller's Out-of-Stock Control
        preference is on (quantity 0 keeps a listing alive) or off (quantity 0 ends it)."""
        xml_body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<GetUserPreferencesRequest xmlns="{TRADING_NS}">'
            "<ShowOutOfStockControlPreference>true</ShowOutOfStockControlPreference>"
            "</GetUserPreferencesRequest>"
        )
        root = self._trading("GetUserPreferences", xml_body)
        ns = {"e": TRADING_NS}
        self._trading_errors(root, ns)  # 518 raises
        ack = (root.findtext("e:Ack", default="", namespaces=ns) or "").strip()
        value = (
            (root.findtext("e:OutOfStockControlPreference", default="", namespaces=ns) or "")
            .strip()
            .lower()
        )
        if ack in ("Success", "Warning") and value in ("true", "false"):
            return value == "true"
        codes = [(c.text or "").strip() for c in root.findall("e:Errors/e:ErrorCode", ns)]
        raise unusable_answer(
            self._who,
            f"GetUserPreferences with Ack={ack or 'none'} and no OutOfStockControlPreference "
            f"(ErrorCode {', '.join(c for c in codes if c) or 'none'})",
            operation="GetUserPreferences",
            http_status=200,
            next_step="run the load again",
        )

    def trading_item(self, listing_id: str) -> OfferState | None:
        """Trading ``GetItem``: a Trading listing's price and quantity available (or None)."""
        xml_body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<GetItemRequest xmlns="{TRADING_NS}"><ItemID>{escape(listing_id)}</ItemID>'
            "</GetItemRequest>"
        )
        root = self._trading("GetItem", xml_body)
        ns = {"e": TRADING_NS}
        item = root.find("e:Item", ns)
        if item is None:
            codes = {(c.text or "").strip() for c in root.findall("e:Errors/e:ErrorCode", ns)}
            if codes & TRADING_GONE_CODES:
                return None
            raise ReadBackUnavailable(
                f"eBay account {self.account_id} did not answer GetItem for listing "
                f"{listing_id} (ErrorCode {', '.join(sorted(codes)) or 'none'})."
            )
        price = item.find("e:StartPrice", ns)
        quantity = item.findtext("e:Quantity", default=None, namespaces=ns)
        sold = item.findtext("e:SellingStatus/e:QuantitySold", default="0", namespaces=ns)
        # Trading's Quantity is available + sold: what a buyer can still buy is the difference
        available = int(quantity) - int(sold or 0) if quantity is not None else None
        return OfferState(
            sku=item.findtext("e:SKU", default="", namespaces=ns) or "",
            offer_id=None,
            listing_id=listing_id,
            price_cents=text_to_cents(price.text if price is not None else None),
            currency=price.get("currencyID") if price is not None else None,
            quantity=available,
            status=item.findtext("e:SellingStatus/e:ListingStatus", default=None, namespaces=ns),
        )

    def active_list_page(
        self, page: int, entries_per_page: int = ACTIVE_LIST_PAGE
    ) -> tuple[list[ActiveListing], int, int]:
        """One ``GetMyeBaySelling`` ActiveList page: its listings, TotalNumberOfPages and
        TotalNumberOfEntries."""
        xml_body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<GetMyeBaySellingRequest xmlns="{TRADING_NS}"><ActiveList><Include>true</Include>'
            f"<Pagination><EntriesPerPage>{int(entries_per_page)}</EntriesPerPage>"
            f"<PageNumber>{int(page)}</PageNumber></Pagination></ActiveList>"
            "</GetMyeBaySellingRequest>"
        )
        root = self._trading("GetMyeBaySelling", xml_body)
        ns = {"e": TRADING_NS}
        ack = (root.findtext("e:Ack", default="", namespaces=ns) or "").strip()
        codes = [
            (c.text or "").strip()
            for c in root.findall("e:Errors/e:ErrorCode", ns)
            if (c.text or "").strip()
        ]
        if TRADING_QUOTA_CODES & set(codes):
            raise EbayQuotaError(
                f"eBay account {self.account_id} reached the Trading API daily call limit "
                "(ErrorCode 518) while reading its active listings; nothing was pulled for it "
                "— run the pull again after midnight PST.",
                code="518",
                http_status=200,  # Trading answers failures with HTTP 200 too
            )
        active = root.find("e:ActiveList", ns)
        if ack not in ("Success", "Warning") or active is None:
            if ack in ("Success", "Warning"):
                return [], 0, 0  # no active listings: eBay leaves the container out
            raise unusable_answer(
                self._who,
                f"GetMyeBaySelling page {page} with Ack={ack or 'none'} "
                f"(ErrorCode {', '.join(codes) or 'none'})",
                operation="GetMyeBaySelling",
                http_status=200,
                next_step="run the pull again",
            )
        listings = [_active_listing(item, ns) for item in active.findall("e:ItemArray/e:Item", ns)]
        pages = active.findtext("e:PaginationResult/e:TotalNumberOfPages", "0", ns) or "0"
        entries = active.findtext("e:PaginationResult/e:TotalNumberOfEntries", "0", ns) or "0"
        if not pages.strip().isdigit() or not entries.strip().isdigit():
            raise unusable_answer(
                self._who,
                f"GetMyeBaySelling page {page} without a usable PaginationResult",
                operation="GetMyeBaySelling",
                http_status=200,
                next_step="run the pull again",
            )
        return [x for x in listings if x is not None], int(pages), int(entries)

    def active_listings(self, entries_per_page: int = ACTIVE_LIST_PAGE) -> ActiveList:
        """Every page of the ActiveList, 1 to TotalNumberOfPages (Inventory-API listings are
        in it too: eBay's My eBay view lists every active listing)."""
        listings: list[ActiveListing] = []
        page, total_pages, calls = 1, 1, 0
        totals: set[int] = set()
        while page <= total_pages:
            found, total_pages, total_entries = self.active_list_page(page, entries_per_page)
            calls += 1
            totals.add(total_entries)
            listings.extend(found)
            if not found:
                break  # no active listings, or a page past the end: nothing more to read
            page += 1
        # a listing that started or ended between two pages shifts the rest by one: the
        # changed TotalNumberOfEntries says so, and such a list cannot prove a listing gone
        stable = len(totals) == 1
        return ActiveList(listings, max(totals), calls, stable)


def _active_listing(item: ET.Element, ns: dict[str, str]) -> ActiveListing | None:
    item_id = (item.findtext("e:ItemID", default="", namespaces=ns) or "").strip()
    if not item_id:
        return None
    price, currency = None, None
    for path in ("e:BuyItNowPrice", "e:StartPrice", "e:SellingStatus/e:CurrentPrice"):
        node = item.find(path, ns)
        cents = text_to_cents(node.text.strip() if node is not None and node.text else None)
        if node is not None and cents is not None and cents > 0:
            price, currency = cents, node.get("currencyID")
            break
    available = (item.findtext("e:QuantityAvailable", default="", namespaces=ns) or "").strip()
    sku = (item.findtext("e:SKU", default="", namespaces=ns) or "").strip()
    listing_type = (item.findtext("e:ListingType", default="", namespaces=ns) or "").strip()
    return ActiveListing(
        item_id=item_id,
        sku=sku or None,
        price_cents=price,
        currency=currency,
        quantity=int(available) if available.isdigit() else None,
        listing_type=listing_type or None,
    )
