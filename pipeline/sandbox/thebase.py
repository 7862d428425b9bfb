"""Sandbox BASE API (api.thebase.in ``/1/...``): OAuth refresh, items read and edit, limits.

Stage: sandbox. Reads: ``state.apis["catalogue"]`` (demo listings and reference prices),
``state.faults``. Writes: ``state.apis["base"]`` (a :class:`BaseWorld`: shops, items,
tokens, hourly and daily call counters) and ``state.ledger`` (every call, every change).

Wire contract: BASE's API documents (github baseinc/api-docs), summarised in tests/contracts/NOTES-platforms.md §B. Every error is
HTTP 400 ``{"error", "error_description"}`` with BASE's Japanese descriptions; 5,000
calls per shop per hour (reset on the hour) and 100,000 per day (reset at midnight JST),
both in sandbox time (an hour lasts 3600/time_scale clock seconds). Refresh tokens rotate:
the one just used stops working; access tokens expire on the sandbox clock. Every call
passes the shared gate (:mod:`pipeline.sandbox.gate`): infrastructure faults (outage, HTML
503, 500, slow, cut-off bodies) come from ``state.faults`` as on every sandbox API; a
throttling storm is BASE's ``hour_api_limit``.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Blueprint, Response, request

from pipeline.sandbox.credentials import BASE_SHOP_TOKENS, DEMO_ENV
from pipeline.sandbox.gate import Call, Dialect, Gate, Refused, Reply
from pipeline.sandbox.platform_limits import JST_OFFSET, ScaledCalendar, WindowCounter
from pipeline.sandbox.state import SandboxState

HOUR_LIMIT = 5000  # calls per shop per hour (README 「APIの利用制限」)
DAY_LIMIT = 100_000  # calls per shop per day
LIST_LIMIT_MAX = 100  # GET /1/items limit MAX
PRICE_MIN = 1  # JPY; BASE documents no bound, only validation_error (NOTES §B.3)
PRICE_MAX = 9_999_999  # JPY
STOCK_MAX = 999_999  # units
ITEM_ID_START = {"shop1": 71_000_001, "shop2": 72_000_001}  # first demo item_id per shop
VARIATION_SHARE = 0.04  # demo items with variations (seeded; 2-3 each)
VARIATION_NAMES = ("黒色", "白色", "赤色", "青色")
IMAGE_SIZES = ("origin", "76", "146", "300", "500", "640", "sp_480", "sp_640")

# (error, error_description) exactly as BASE's docs write them.
ERRORS: dict[str, tuple[str, str]] = {
    "not_post_token": ("access_denied", "POSTで送信してください。"),
    "bad_grant_type": ("invalid_request", "不正なgrant_typeです。"),
    "bad_params_token": ("invalid_request", "不正なパラメーターです。"),
    "no_client": ("invalid_request", "client_idもしくはclient_secretがありません。"),
    "unknown_client": ("unauthorized_client", "クライアントが見つかりませんでした。"),
    "bad_refresh_token": ("invalid_request", "不正なリフレッシュトークンです。"),
    "invalid_token": ("invalid_request", "アクセストークンが無効です。"),
    "not_post_method": ("not_post_method", "POSTで送信してください。"),
    "bad_item_id": ("bad_item_id", "不正なitem_idです。"),
    "bad_variation_id": ("bad_variation_id", "不正なvariation_idです。"),
    "validation_error": ("validation_error", "バリデーションエラーです。"),
    "bad_params": ("bad_params", "不正なパラメーターです。"),
    "no_item_id": ("no_item_id", "item_idは必須です。"),
    "no_item": ("no_item", "商品が見つかりませんでした。"),
    "hour_api_limit": (
        "hour_api_limit",
        "1時間のAPIの利用上限を超えました。時間が変わってからもう一度アクセスしてください。",
    ),
    "day_api_limit": (
        "day_api_limit",
        "1日のAPIの利用上限を超えました。日付が変わってからもう一度アクセスしてください。",
    ),
    "server_error": ("server_error", "DB error"),
}

_INT = re.compile(r"^[0-9]+$")
_FOUR_BYTE = re.compile(r"[\U00010000-\U0010FFFF]")  # emoji and friends: validation_error


@dataclass
class BaseItem:
    """One BASE item as the shop owner sees it (prices in JPY, tax included)."""

    item_id: int
    title: str
    detail: str
    price: int  # JPY
    stock: int  # units; with variations the sum of variation_stock
    visible: int  # 1 shown, 0 hidden
    list_order: int
    identifier: str | None  # 商品コード; the demo shops keep the ASIN here
    modified: int  # unix seconds, sandbox time
    created: int  # unix seconds, sandbox time
    proper_price: int | None = None
    variations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, images: list[str], *, detail: bool) -> dict[str, Any]:
        """The item's JSON in BASE's field order; ``images`` names the img* keys to include.

        The docs put ``modified`` after the images in ``/1/items`` and before them in
        ``items/detail``, ``items/edit`` and ``items/edit_stock``; so does the sandbox.
        """
        body: dict[str, Any] = {
            "item_id": self.item_id,
            "title": self.title,
            "detail": self.detail,
            "price": self.price,
            "proper_price": self.proper_price,
            "stock": self.stock,
            "visible": self.visible,
            "list_order": self.list_order,
            "identifier": self.identifier,
        }
        if detail:
            body["modified"] = self.modified
        for key in images:
            body[key] = None  # the sandbox hosts no images
        if not detail:
            body["modified"] = self.modified
        body["variations"] = [dict(v) for v in self.variations]
        return body


def image_keys(max_image_no: int, sizes: list[str]) -> list[str]:
    return [f"img{n}_{size}" for n in range(1, max_image_no + 1) for size in sizes]


DETAIL_IMAGES = image_keys(5, list(IMAGE_SIZES))  # items/detail, edit, edit_stock


@dataclass
class BaseShop:
    """One shop: its items, its deleted item ids and its call counters."""

    account: str
    items: dict[int, BaseItem] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    hour_calls: WindowCounter = field(default_factory=WindowCounter)
    day_calls: WindowCounter = field(default_factory=WindowCounter)
    next_variation_id: int = 1


class BaseWorld:
    """Everything the sandbox's BASE knows: ``state.apis["base"]``.

    Knobs (plain attributes, also ``POST /_sandbox/base/limits``): ``hour_limit``,
    ``day_limit``, ``token_lifetime`` (seconds of real time; None = ``state.token_lifetime``),
    ``price_min``/``price_max`` (JPY), ``stock_max``.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.calendar = ScaledCalendar(state)
        self.client_id = DEMO_ENV["BASE_CLIENT_ID"]
        self.client_secret = DEMO_ENV["BASE_CLIENT_SECRET"]
        self.redirect_uri = DEMO_ENV["BASE_REDIRECT_URI"]
        self.hour_limit = HOUR_LIMIT
        self.day_limit = DAY_LIMIT
        self.token_lifetime: float | None = None
        self.price_min = PRICE_MIN
        self.price_max = PRICE_MAX
        self.stock_max = STOCK_MAX
        self.shops: dict[str, BaseShop] | None = None  # built from the catalogue on first use
        # refresh token -> shop; rotated on every refresh (the used one is removed)
        self.refresh_tokens: dict[str, str] = {tok: shop for shop, tok in BASE_SHOP_TOKENS.items()}
        # access token -> (shop, expiry on state.clock, seconds)
        self.access_tokens: dict[str, tuple[str, float]] = {}

    # ---- demo shops -------------------------------------------------------------------

    def ensure_shops(self) -> dict[str, BaseShop]:
        """The shops, built from the catalogue's demo listings the first time they are needed."""
        if self.shops is None:
            self.shops = build_demo_shops(self.state, int(self.calendar.now()))
        return self.shops

    def shop(self, account: str) -> BaseShop:
        shops = self.ensure_shops()
        if account not in shops:
            shops[account] = BaseShop(account=account)
        return shops[account]

    def lifetime(self) -> float:
        return self.token_lifetime if self.token_lifetime is not None else self.state.token_lifetime

    # ---- persistence ------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """JSON-ready world: items with current price/stock, valid refresh tokens, counters."""
        shops = self.ensure_shops()
        return {
            "refresh_tokens": dict(self.refresh_tokens),
            "limits": {
                "hour_limit": self.hour_limit,
                "day_limit": self.day_limit,
                "token_lifetime": self.token_lifetime,
            },
            "shops": {
                account: {
                    "items": [asdict(item) for item in shop.items.values()],
                    "deleted": sorted(shop.deleted),
                    "hour_calls": shop.hour_calls.dump(),
                    "day_calls": shop.day_calls.dump(),
                    "next_variation_id": shop.next_variation_id,
                }
                for account, shop in shops.items()
            },
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore a world written by :meth:`dump` (access tokens do not survive a restart)."""
        self.refresh_tokens = dict(data.get("refresh_tokens", {}))
        limits = data.get("limits", {})
        self.hour_limit = int(limits.get("hour_limit", HOUR_LIMIT))
        self.day_limit = int(limits.get("day_limit", DAY_LIMIT))
        self.token_lifetime = limits.get("token_lifetime")
        self.access_tokens = {}
        self.shops = {}
        for account, raw in data.get("shops", {}).items():
            shop = BaseShop(account=account)
            for item in raw.get("items", []):
                shop.items[int(item["item_id"])] = BaseItem(**item)
            shop.deleted = {int(i) for i in raw.get("deleted", [])}
            shop.hour_calls = WindowCounter.load(raw.get("hour_calls"))
            shop.day_calls = WindowCounter.load(raw.get("day_calls"))
            shop.next_variation_id = int(raw.get("next_variation_id", 1))
            self.shops[account] = shop

    def reset_counters(self) -> None:
        """Forget the hour/day call counts of every shop (for ``POST /_sandbox/reset``)."""
        for shop in self.ensure_shops().values():
            shop.hour_calls, shop.day_calls = WindowCounter(), WindowCounter()

    def usage(self, account: str) -> dict[str, Any]:
        """Calls used in the current hour and day and real seconds until each resets."""
        shop = self.shop(account)
        return {
            "hour_calls": shop.hour_calls.current(self.calendar.hour_index()),
            "day_calls": shop.day_calls.current(self.calendar.day_index(JST_OFFSET)),
            "hour_limit": self.hour_limit,
            "day_limit": self.day_limit,
            "seconds_to_next_hour": self.calendar.real_seconds_to_next_hour(),
            "seconds_to_next_day": self.calendar.real_seconds_to_next_day(JST_OFFSET),
        }


def build_demo_shops(state: SandboxState, now: int) -> dict[str, BaseShop]:
    """Demo shops from the catalogue: one item per listed ASIN, priced at a markup of the
    catalogue's reference price with seeded noise, so a first sync finds real differences."""
    catalogue = state.apis.get("catalogue")
    if catalogue is None:
        raise RuntimeError(
            "the sandbox has no catalogue in state.apis['catalogue']; create the app with "
            "pipeline.sandbox.server.create_app so the catalogue is registered first"
        )
    listings: dict[str, list[str]] = catalogue.demo_listings()
    shops: dict[str, BaseShop] = {}
    for account in sorted(a for a in listings if a in ITEM_ID_START or a.startswith("shop")):
        rng = random.Random(f"{state.seed}:base:{account}")
        # its own generator, so seeding variations leaves every other item as it was
        variation_rng = random.Random(f"{state.seed}:base-variations:{account}")
        shop = BaseShop(account=account)
        first = ITEM_ID_START.get(account, 70_000_001 + 1_000_000 * len(shops))
        for n, asin in enumerate(listings[account]):
            reference = catalogue.reference_price(asin)
            price = demo_price_jpy(reference, rng)
            stock = rng.choice((0, 1, 1, 2, 3, 5))
            item_id = first + n
            created = now - rng.randint(86400, 86400 * 365)
            shop.items[item_id] = BaseItem(
                item_id=item_id,
                title=f"【新品】サンドボックス商品 {asin}",
                detail=f"Amazon.co.jp から仕入れる商品です（ASIN {asin}）。",
                price=price,
                stock=stock,
                visible=0 if stock == 0 and rng.random() < 0.5 else 1,
                list_order=n + 1,
                identifier=asin,
                modified=created + rng.randint(0, 86400),
                created=created,
            )
            if variation_rng.random() < VARIATION_SHARE:
                _add_demo_variations(shop, shop.items[item_id], variation_rng)
        shops[account] = shop
    return shops


def _add_demo_variations(shop: BaseShop, item: BaseItem, rng: random.Random) -> None:
    """Give ``item`` 2–3 variations (colours); its stock becomes their sum, as BASE does."""
    for name in rng.sample(VARIATION_NAMES, rng.randint(2, 3)):
        item.variations.append(
            {
                "variation_id": shop.next_variation_id,
                "variation": name,
                "variation_stock": rng.choice((0, 1, 2, 3)),
                "variation_identifier": None,
            }
        )
        shop.next_variation_id += 1
    item.stock = sum(int(v["variation_stock"]) for v in item.variations)
    item.visible = 1


def demo_price_jpy(reference: int | None, rng: random.Random) -> int:
    """A shop price: reference × 1.15–1.45, rounded half up to 10 yen (integer arithmetic)."""
    if reference is None:
        reference = rng.randint(800, 20_000)
    markup_permille = rng.randint(1150, 1450)
    raw = reference * markup_permille  # JPY × 1000
    return (raw + 5_000) // 10_000 * 10  # ROUND_HALF_UP to 10 yen


# ---- HTTP ------------------------------------------------------------------------------


def _error_body(key: str) -> dict[str, str]:
    error, description = ERRORS[key]
    return {"error": error, "error_description": description}


class BaseError(Refused):
    """An error BASE answers with HTTP 400 (or ``status``) and its JSON body."""

    def __init__(self, key: str, status: int = 400, outcome: str = "error") -> None:
        super().__init__(Reply(status, _error_body(key), outcome))
        self.key = key


class BaseDialect(Dialect):
    """BASE's spelling: every error a JSON ``{"error", "error_description"}`` (400, or 500
    for ``server_error``); a storm is ``hour_api_limit``; the quota is the shop's hour and
    day (the token endpoint, whose caller has no shop yet, counts against neither)."""

    api = "base"

    def __init__(self, world: BaseWorld) -> None:
        super().__init__(world.state)
        self.world = world

    def unavailable(self, call: Call) -> Reply:
        return Reply(503, _error_body("server_error"), "fault:outage")

    def authenticate(self, call: Call) -> None:
        call.account = _authenticate(self.world)

    def storm(self, call: Call) -> Reply | None:
        return BaseError("hour_api_limit", outcome="fault:throttle_storm").reply

    def spend_quota(self, call: Call) -> None:
        if call.account is not None:
            _count_call(self.world, call.account)

    def server_error(self, call: Call) -> Reply:
        return BaseError("server_error", status=500, outcome="fault:error").reply


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def world_of(state: SandboxState) -> BaseWorld:
    """The BASE world in ``state.apis["base"]``, created on first use."""
    return state.api_world("base", BaseWorld)


def blueprint(state: SandboxState) -> Blueprint:
    """Flask routes at BASE's real paths, answering from ``state``."""
    bp = Blueprint("thebase", __name__)
    world = world_of(state)
    gate = Gate(state, BaseDialect(world))

    def answer(
        operation: str,
        handler: Callable[[str | None], tuple[dict[str, Any], list[str]]],
        *,
        authenticated: bool = True,
    ) -> Response:
        """One call through the shared gate; ``handler(account)`` gives the body and the
        items the call was about (for the token endpoint: the token's shop)."""
        raw_id = (request.view_args or {}).get("item_id") or request.form.get("item_id")

        def handle(call: Call) -> Reply:
            body, items = handler(call.account)
            if authenticated:
                call.items = items
            else:
                call.account, call.items = (items[0] if items else None), []
            return Reply(200, body)

        items = [str(raw_id)] if raw_id else []  # what the call is about
        return gate.answer(operation, handle, items=items, authenticate=authenticated)

    @bp.route("/1/oauth/token", methods=["GET", "POST"])
    def oauth_token() -> Response:
        return answer("oauth/token", lambda _account: _token(world), authenticated=False)

    @bp.route("/1/users/me", methods=["GET"])
    def users_me() -> Response:
        return answer("users/me", lambda account: _me(world, account))

    @bp.route("/1/items", methods=["GET"])
    def items_list() -> Response:
        return answer("items", lambda account: _list_items(world, account))

    @bp.route("/1/items/detail/<item_id>", methods=["GET"])
    def items_detail(item_id: str) -> Response:
        return answer("items/detail", lambda account: _detail(world, account, item_id))

    @bp.route("/1/items/detail", methods=["GET"])
    def items_detail_missing() -> Response:
        return answer("items/detail", lambda account: _detail(world, account, ""))

    @bp.route("/1/items/edit", methods=["GET", "POST"])
    def items_edit() -> Response:
        return answer("items/edit", lambda account: _edit(world, account))

    @bp.route("/1/items/edit_stock", methods=["GET", "POST"])
    def items_edit_stock() -> Response:
        return answer("items/edit_stock", lambda account: _edit_stock(world, account))

    @bp.route("/1/items/delete", methods=["GET", "POST"])
    def items_delete() -> Response:
        return answer("items/delete", lambda account: _delete(world, account))

    @bp.route("/_sandbox/base/limits", methods=["GET", "POST"])
    def limits() -> Response:
        """Sandbox control (not BASE): read usage or set the limit knobs live."""
        with state.lock:
            if request.method == "POST":
                knobs = request.get_json(force=True, silent=True) or {}
                for name in ("hour_limit", "day_limit", "price_min", "price_max", "stock_max"):
                    if name in knobs:
                        setattr(world, name, int(knobs[name]))
                if "token_lifetime" in knobs:
                    lifetime = knobs["token_lifetime"]
                    world.token_lifetime = None if lifetime is None else float(lifetime)
            shops = world.ensure_shops()
            return _json({account: world.usage(account) for account in sorted(shops)})

    return bp


# ---- auth and limits --------------------------------------------------------------------


def _authenticate(world: BaseWorld) -> str:
    """The shop whose valid access token the request carries, else invalid_request."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise BaseError("invalid_token", outcome="unauthorized")
    found = world.access_tokens.get(token.strip())
    if found is None:
        raise BaseError("invalid_token", outcome="unauthorized")
    account, expires_at = found
    if world.state.faults.expired_tokens or world.state.now() >= expires_at:
        raise BaseError("invalid_token", outcome="expired_token")
    return account


def _count_call(world: BaseWorld, account: str) -> None:
    """Count one call against the shop's hour and day; refuse once a limit is reached."""
    shop = world.shop(account)
    hour = world.calendar.hour_index()
    day = world.calendar.day_index(JST_OFFSET)
    if shop.day_calls.current(day) >= world.day_limit:
        raise BaseError("day_api_limit", outcome="throttled")
    if shop.hour_calls.current(hour) >= world.hour_limit:
        raise BaseError("hour_api_limit", outcome="throttled")
    shop.hour_calls.add(hour)
    shop.day_calls.add(day)


def _token(world: BaseWorld) -> tuple[dict[str, Any], list[str]]:
    """``POST /1/oauth/token`` past the gate: BASE's own ``server_error`` (the BASE faults
    ``base_token_server_error`` / ``_calls``), else the grant."""
    faults = world.state.faults
    request_number = world.state.calls_since_faults - 1  # this request, counted by the gate
    if world.state.roll(faults.base_token_server_error) or any(
        w.contains(request_number) for w in faults.base_token_server_error_calls
    ):
        # the docs list server_error "DB error" for the token endpoint and send every error
        # as HTTP 400; nothing is checked or rotated, so the refresh token stays good
        raise BaseError("server_error", outcome="fault:server_error")
    return _refresh(world)


def _me(world: BaseWorld, account: str | None) -> tuple[dict[str, Any], list[str]]:
    """``GET /1/users/me``: the shop's user record (base_api_v1_users_me.md; no mail address:
    the sandbox grants no read_users_mail scope)."""
    assert account is not None
    return {"user": demo_user(account)}, []


def demo_user(account: str) -> dict[str, Any]:
    """The demo shop's ``user`` object, in the docs' field order."""
    return {
        "shop_id": f"sandbox-{account}",
        "shop_name": f"サンドボックス {account}",
        "shop_introduction": "invsync のサンドボックスショップです。",
        "shop_url": f"https://sandbox-{account}.thebase.in",
        "twitter_id": None,
        "facebook_id": None,
        "ameba_id": None,
        "instagram_id": None,
        "background": None,
        "display_background": 0,
        "repeat_background": 0,
        "logo": None,
        "display_logo": 0,
    }


def _refresh(world: BaseWorld) -> tuple[dict[str, Any], list[str]]:
    """``POST /1/oauth/token``: grant_type=refresh_token gives a new access and refresh token
    (the old refresh token stops working); authorization_code goes to the consent module."""
    if request.method != "POST":
        raise BaseError("not_post_token")
    form = request.form
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    basic = request.headers.get("Authorization", "")
    if basic.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(basic[6:].strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise BaseError("unknown_client", outcome="unauthorized") from None
        client_id, _, client_secret = decoded.partition(":")
    grant_type = form.get("grant_type")
    if grant_type not in ("refresh_token", "authorization_code"):
        raise BaseError("bad_grant_type")
    if not client_id or not client_secret:
        raise BaseError("no_client")
    if client_id != world.client_id or client_secret != world.client_secret:
        raise BaseError("unknown_client", outcome="unauthorized")
    if grant_type == "authorization_code":  # a code from the consent page, exchanged once
        from pipeline.sandbox import consent

        return consent.exchange_base_code(world, form)
    refresh_token = form.get("refresh_token")
    if not refresh_token or form.get("redirect_uri") != world.redirect_uri:
        raise BaseError("bad_params_token")
    account = world.refresh_tokens.pop(refresh_token, None)
    if account is None:
        raise BaseError("bad_refresh_token", outcome="unauthorized")
    access = secrets.token_hex(16)
    rotated = secrets.token_hex(16)
    world.refresh_tokens[rotated] = account
    lifetime = world.lifetime()
    world.access_tokens[access] = (account, world.state.now() + lifetime)
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(lifetime),
        "refresh_token": rotated,
    }
    return body, [account]


# ---- items --------------------------------------------------------------------------------


def _int_param(value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not _INT.match(value) or not low <= int(value) <= high:
        raise BaseError("bad_params")
    return int(value)


def _list_items(world: BaseWorld, account: str | None) -> tuple[dict[str, Any], list[str]]:
    """``GET /1/items``: one page of the shop's items, no total (page until a short page)."""
    assert account is not None
    args = request.args
    order = args.get("order") or "list_order"
    sort = args.get("sort") or "asc"
    if order not in ("list_order", "created", "modified") or sort not in ("asc", "desc"):
        raise BaseError("bad_params")
    limit = _int_param(args.get("limit"), 20, 1, LIST_LIMIT_MAX)
    offset = _int_param(args.get("offset"), 0, 0, 10**9)
    max_image_no = _int_param(args.get("max_image_no"), 5, 1, 20)
    sizes = [s for s in (args.get("image_size") or "origin").split(",") if s]
    if any(s not in IMAGE_SIZES for s in sizes):
        raise BaseError("bad_params")
    shop = world.shop(account)
    gone = shop.deleted | set(world.state.faults.bad_item_ids)
    ordered = sorted(
        (item for item in shop.items.values() if item.item_id not in gone),
        key=lambda item: (getattr(item, order), item.item_id),
        reverse=sort == "desc",
    )
    page = ordered[offset : offset + limit]
    images = image_keys(max_image_no, sizes)
    return {"items": [item.to_json(images, detail=False) for item in page]}, [
        str(i.item_id) for i in page
    ]


def _find_item(world: BaseWorld, account: str, raw_id: str | None) -> BaseItem:
    """The shop's live item, else bad_item_id (deleted, another shop's, or never existed)."""
    if raw_id is None or not _INT.match(raw_id):
        raise BaseError("bad_item_id")
    item_id = int(raw_id)
    shop = world.shop(account)
    item = shop.items.get(item_id)
    if item is None or item_id in shop.deleted or item_id in world.state.faults.bad_item_ids:
        raise BaseError("bad_item_id")
    return item


def _detail(world: BaseWorld, account: str | None, raw_id: str) -> tuple[dict[str, Any], list[str]]:
    assert account is not None
    if not raw_id:
        raise BaseError("no_item_id")
    try:
        item = _find_item(world, account, raw_id)
    except BaseError:
        raise BaseError("no_item") from None
    return {"item": item.to_json(DETAIL_IMAGES, detail=True)}, [str(item.item_id)]


def _require_post() -> None:
    if request.method != "POST":
        raise BaseError("not_post_method")


def _parse_int(value: str, low: int, high: int) -> int:
    """A form integer within bounds, else validation_error (no signs, decimals or spaces)."""
    if not _INT.match(value) or not low <= int(value) <= high:
        raise BaseError("validation_error")
    return int(value)


def _edit(world: BaseWorld, account: str | None) -> tuple[dict[str, Any], list[str]]:
    """``POST /1/items/edit``: validate every field first, then apply them all at once."""
    assert account is not None
    _require_post()
    form = request.form
    item = _find_item(world, account, form.get("item_id"))
    updates: dict[str, Any] = {}
    if "price" in form:
        updates["price"] = _parse_int(form["price"], world.price_min, world.price_max)
    if "stock" in form:
        updates["stock"] = _parse_int(form["stock"], 0, world.stock_max)
    if "visible" in form:
        if form["visible"] not in ("0", "1"):
            raise BaseError("validation_error")
        updates["visible"] = int(form["visible"])
    if "list_order" in form:
        updates["list_order"] = _parse_int(form["list_order"], 0, 10**9)
    for name in ("title", "detail", "identifier"):
        if name in form:
            if _FOUR_BYTE.search(form[name]) or (name == "title" and not form[name].strip()):
                raise BaseError("validation_error")
            updates[name] = form[name]
    variations = _variation_updates(world, account, item, form)
    # Everything validated: apply.
    for name, value in updates.items():
        setattr(item, name, value)
    if variations is not None:
        item.variations = variations
    if item.variations:
        # 「バリエーションの在庫数(variation_stock)の合計が自動で在庫数(stock)になります」
        item.stock = sum(int(v["variation_stock"]) for v in item.variations)
    item.modified = int(world.calendar.now())
    _record_change(world, account, item, form, variations is not None, "items/edit")
    return {"item": item.to_json(DETAIL_IMAGES, detail=True)}, [str(item.item_id)]


def _variation_updates(
    world: BaseWorld, account: str, item: BaseItem, form: Any
) -> list[dict[str, Any]] | None:
    """The item's variations after the ``variation_*[n]`` arrays, or None when none were sent."""
    pattern = re.compile(r"^variation(?:_id|_stock|_identifier)?\[(\d+)\]$")
    indices = sorted({int(m.group(1)) for key in form for m in [pattern.match(key)] if m})
    if not indices:
        return None
    shop = world.shop(account)
    current = {int(v["variation_id"]): dict(v) for v in item.variations}
    for n in indices:
        raw_id = form.get(f"variation_id[{n}]")
        if raw_id is None:
            raise BaseError("bad_variation_id")
        if raw_id == "":
            name = form.get(f"variation[{n}]", "")
            if not name.strip() or _FOUR_BYTE.search(name):
                raise BaseError("validation_error")
            variation_id = shop.next_variation_id
            shop.next_variation_id += 1
            current[variation_id] = {
                "variation_id": variation_id,
                "variation": name,
                "variation_stock": 0,
                "variation_identifier": None,
            }
        else:
            if not _INT.match(raw_id) or int(raw_id) not in current:
                raise BaseError("bad_variation_id")
            variation_id = int(raw_id)
        entry = current[variation_id]
        if f"variation[{n}]" in form:
            entry["variation"] = form[f"variation[{n}]"]
        if f"variation_stock[{n}]" in form:
            entry["variation_stock"] = _parse_int(form[f"variation_stock[{n}]"], 0, world.stock_max)
        if f"variation_identifier[{n}]" in form:
            entry["variation_identifier"] = form[f"variation_identifier[{n}]"] or None
    return list(current.values())


def _edit_stock(world: BaseWorld, account: str | None) -> tuple[dict[str, Any], list[str]]:
    """``POST /1/items/edit_stock``: the item's stock, or one variation's stock."""
    assert account is not None
    _require_post()
    form = request.form
    item = _find_item(world, account, form.get("item_id"))
    if form.get("variation_id"):
        if "variation_stock" not in form:
            raise BaseError("bad_params")
        raw_id = form["variation_id"]
        target = next(
            (v for v in item.variations if _INT.match(raw_id) and v["variation_id"] == int(raw_id)),
            None,
        )
        if target is None:
            raise BaseError("bad_variation_id")
        target["variation_stock"] = _parse_int(form["variation_stock"], 0, world.stock_max)
        item.stock = sum(int(v["variation_stock"]) for v in item.variations)
    else:
        if "stock" not in form:
            raise BaseError("bad_params")
        stock = _parse_int(form["stock"], 0, world.stock_max)
        if item.variations:
            raise BaseError("bad_params")  # an item with variations takes variation stock only
        item.stock = stock
    item.modified = int(world.calendar.now())
    world.state.ledger.record_change(
        "base", account, str(item.item_id), {"stock": item.stock}, "items/edit_stock"
    )
    return {"item": item.to_json(DETAIL_IMAGES, detail=True)}, [str(item.item_id)]


def _delete(world: BaseWorld, account: str | None) -> tuple[dict[str, Any], list[str]]:
    """``POST /1/items/delete``: the item is gone; later edits answer bad_item_id."""
    assert account is not None
    _require_post()
    item = _find_item(world, account, request.form.get("item_id"))
    world.shop(account).deleted.add(item.item_id)
    return {"result": True}, [str(item.item_id)]


def _record_change(
    world: BaseWorld, account: str, item: BaseItem, form: Any, variations: bool, via: str
) -> None:
    """Ledger one applied change: the price/stock/visible values the item now has."""
    changes: dict[str, Any] = {}
    if "price" in form:
        changes["price"] = item.price
    if "stock" in form or variations:
        changes["stock"] = item.stock
    if "visible" in form:
        changes["visible"] = item.visible
    if changes:
        world.state.ledger.record_change("base", account, str(item.item_id), changes, via)
