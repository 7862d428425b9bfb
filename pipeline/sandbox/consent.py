"""Sandbox consent pages: BASE's and eBay's authorization-code grant, where a seller logs in
and allows the app, and the code exchange both token endpoints hand over to.

Stage: sandbox. Reads: ``state.apis["base"]`` (the shops, the app's client id and registered
redirect URI) and ``state.apis["ebay"]`` (the app, the seller account). Writes:
``state.apis["consent"]`` (a :class:`ConsentWorld`: codes issued and not yet exchanged, the
eBay RuName's accept and decline URLs, the eBay refresh tokens consent issued), the tokens an
exchange issues into the BASE and eBay worlds (so they open that shop's data calls at once),
and the ledger (one call per consent answer: ``base oauth/authorize``, ``ebay
oauth2/authorize``).

Wire contract:

* BASE — ``GET /1/oauth/authorize`` (base_api_v1_oauth_authorize.md): ``response_type=code``,
  ``client_id``, ``redirect_uri`` (must equal the app's registered callback URL), ``scope``
  (space separated, default ``read_users``), ``state``. An unknown client or another redirect
  URI is an error page (never a redirect to an unchecked URL); a bad ``response_type`` or
  scope comes back to the callback as ``error=…``. The page names the shop (``shop=`` picks
  it, else a choice of the sandbox's shops) with Allow and Deny buttons that ``POST`` to the
  same URL; Allow redirects (302) to ``redirect_uri?code=…&state=…``, Deny to
  ``redirect_uri?error=access_denied&state=…``. The code (32 hex digits, like BASE's
  example) lives :data:`BASE_CODE_LIFETIME` seconds and is exchanged once at ``POST
  /1/oauth/token`` (base_api_v1_oauth_access_token.md); a reused or unknown code is
  ``不正な認可コードです。``, an expired one ``認可コードの有効期限が切れています。``.
* eBay — ``GET /oauth2/authorize`` (developer.ebay.com, "Getting user access tokens"; live
  host auth.ebay.com): ``client_id``, ``redirect_uri`` = the app's RuName (a name, not a
  URL), ``response_type=code``, ``scope`` (space separated), ``state``. Agree redirects to
  the RuName's accept URL with ``state``, ``code`` (URL-encoded: eBay's codes hold ``^`` and
  ``#``) and ``expires_in=299``; Disagree to its decline URL with ``error=access_denied``.
  ``POST /identity/v1/oauth2/token`` with ``grant_type=authorization_code`` exchanges the code
  once for an access token and a refresh token (``refresh_token_expires_in`` 47,304,000 s,
  about 18 months); anything wrong with the code is ``invalid_grant``.

Codes expire on ``state.clock.unix()`` so a persisted world keeps them across a restart (the
in-process sandbox of ``invsync auth`` lives only while the command runs). Control routes (not
the platforms'): ``GET|POST /_sandbox/consent/apps`` reads or registers the BASE app's
redirect URI and the eBay RuName's accept and decline URLs (what a developer sets in the
platforms' developer settings), ``POST /_sandbox/consent/revoke`` revokes one refresh token
(what a seller does in the platform's app settings).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, request

from pipeline.sandbox import ebay, thebase
from pipeline.sandbox.credentials import DEMO_ENV, EBAY_ACCEPT_URL, EBAY_DECLINE_URL
from pipeline.sandbox.gate import HTML, Call, Gate, Refused, Reply
from pipeline.sandbox.state import SandboxState

BASE_CODE_LIFETIME = 600.0  # seconds; BASE documents none, OAuth 2.0 advises at most 10 minutes
EBAY_CODE_LIFETIME = 299  # seconds: eBay's redirect says expires_in=299
EBAY_REFRESH_LIFETIME = 47_304_000  # seconds (18 months): refresh_token_expires_in
BASE_SCOPES = frozenset(
    {
        "read_users", "read_users_mail", "read_items", "write_items", "read_orders",
        "write_orders", "read_savings", "write_users",
    }
)  # fmt: skip
EBAY_SCOPE_ROOT = "https://api.ebay.com/oauth/api_scope"
EBAY_SCOPES = frozenset(
    {
        EBAY_SCOPE_ROOT,
        f"{EBAY_SCOPE_ROOT}/sell.inventory",
        f"{EBAY_SCOPE_ROOT}/sell.inventory.readonly",
        f"{EBAY_SCOPE_ROOT}/sell.account",
        f"{EBAY_SCOPE_ROOT}/sell.account.readonly",
    }
)
# BASE's two code errors, exactly as base_api_v1_oauth_access_token.md writes them.
BASE_BAD_CODE = ("invalid_request", "不正な認可コードです。")
BASE_EXPIRED_CODE = ("invalid_request", "認可コードの有効期限が切れています。")
EBAY_BAD_CODE = {
    "error": "invalid_grant",
    "error_description": "the provided authorization grant code is invalid or was issued to "
    "another client",
}


@dataclass
class Grant:
    """One authorization code a seller's Allow issued, until it is exchanged."""

    platform: str  # base | ebay
    account: str  # the shop (BASE) or seller account (eBay) that allowed
    client_id: str
    redirect_uri: str  # BASE: the callback URL; eBay: the RuName
    scopes: list[str]
    expires_at: float  # unix seconds on the sandbox clock


class ConsentWorld:
    """``state.apis["consent"]``: open codes, the RuName's URLs, eBay tokens consent issued."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.codes: dict[str, Grant] = {}
        self.ebay_ru_name = DEMO_ENV["EBAY_RU_NAME"]  # the eBay app's one RuName
        self.ebay_accept_url = EBAY_ACCEPT_URL
        self.ebay_decline_url = EBAY_DECLINE_URL
        self.ebay_refresh_tokens: set[str] = set()  # eBay's world does not persist these

    def issue(self, platform: str, account: str, redirect_uri: str, scopes: list[str]) -> str:
        """A fresh single-use code for ``account``'s consent."""
        if platform == "base":
            code, lifetime = secrets.token_hex(16), BASE_CODE_LIFETIME
            client_id = thebase.world_of(self.state).client_id
        else:
            code = "v^1.1#i^1#f^0#r^1#I^3#p^3#t^" + secrets.token_urlsafe(36)
            lifetime, client_id = float(EBAY_CODE_LIFETIME), ebay.world_of(self.state).client_id
        expires_at = self.state.clock.unix() + lifetime
        self.codes[code] = Grant(platform, account, client_id, redirect_uri, scopes, expires_at)
        return code

    def take(self, platform: str, code: str) -> tuple[Grant | None, bool]:
        """The code's grant, consumed whatever happens next (a code is tried once), and
        whether it had expired. None: unknown, already used, or another platform's."""
        grant = self.codes.pop(code, None)
        if grant is None or grant.platform != platform:
            return None, False
        return grant, self.state.clock.unix() >= grant.expires_at

    def dump(self) -> dict[str, Any]:
        return {
            "codes": {code: asdict(grant) for code, grant in self.codes.items()},
            "ebay_accept_url": self.ebay_accept_url,
            "ebay_decline_url": self.ebay_decline_url,
            "ebay_refresh_tokens": sorted(self.ebay_refresh_tokens),
            "base_redirect_uri": thebase.world_of(self.state).redirect_uri,
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore :meth:`dump`; the eBay tokens and BASE's registered redirect URI go back
        into those worlds (their own dumps do not keep them)."""
        self.codes = {code: Grant(**grant) for code, grant in data.get("codes", {}).items()}
        self.ebay_accept_url = data.get("ebay_accept_url", EBAY_ACCEPT_URL)
        self.ebay_decline_url = data.get("ebay_decline_url", EBAY_DECLINE_URL)
        self.ebay_refresh_tokens = set(data.get("ebay_refresh_tokens", []))
        ebay.world_of(self.state).refresh_tokens |= self.ebay_refresh_tokens
        if data.get("base_redirect_uri"):
            thebase.world_of(self.state).redirect_uri = data["base_redirect_uri"]


def world_of(state: SandboxState) -> ConsentWorld:
    """The consent world in ``state.apis["consent"]``, created on first use."""
    return state.api_world("consent", ConsentWorld)


# ---- the code exchange (called by the token endpoints' authorization_code branch) ---------


def _base_refused(error: tuple[str, str], outcome: str = "unauthorized") -> Refused:
    return Refused(Reply(400, {"error": error[0], "error_description": error[1]}, outcome))


def exchange_base_code(world: thebase.BaseWorld, form: Any) -> tuple[dict[str, Any], list[str]]:
    """``grant_type=authorization_code`` at BASE's token endpoint (client already checked):
    an access and a refresh token for the shop that allowed, or BASE's error."""
    code, redirect_uri = form.get("code"), form.get("redirect_uri")
    if not code or not redirect_uri:
        raise thebase.BaseError("bad_params_token")
    grant, expired = world_of(world.state).take("base", code)
    if grant is None or grant.client_id != form.get("client_id", grant.client_id):
        raise _base_refused(BASE_BAD_CODE)
    if expired:
        raise _base_refused(BASE_EXPIRED_CODE, "expired_code")
    if redirect_uri != grant.redirect_uri:
        raise thebase.BaseError("bad_params_token")
    access, refresh = secrets.token_hex(16), secrets.token_hex(16)
    lifetime = world.lifetime()
    world.refresh_tokens[refresh] = grant.account
    world.access_tokens[access] = (grant.account, world.state.now() + lifetime)
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(lifetime),
        "refresh_token": refresh,
    }
    return body, [grant.account]


def exchange_ebay_code(world: ebay.EbayWorld, form: Any) -> tuple[dict[str, Any], int, str]:
    """``grant_type=authorization_code`` at eBay's token endpoint (client already checked):
    a user access token and an 18-month refresh token, or eBay's OAuth error."""
    code, redirect_uri = form.get("code"), form.get("redirect_uri")
    if not code or not redirect_uri:
        body = {
            "error": "invalid_request",
            "error_description": "request is missing a required parameter or malformed.",
        }
        return body, 400, "error"
    grant, expired = world_of(world.state).take("ebay", code)
    if grant is None or expired or redirect_uri != grant.redirect_uri:
        return dict(EBAY_BAD_CODE), 400, "expired_code" if expired else "unauthorized"
    access = "v^1.1#i^1#r^0#sandbox#" + secrets.token_urlsafe(24)
    refresh = "v^1.1#i^1#r^1#sandbox#" + secrets.token_urlsafe(32)
    lifetime = world.lifetime()
    world.access_tokens[access] = world.state.now() + lifetime
    world.refresh_tokens.add(refresh)
    world_of(world.state).ebay_refresh_tokens.add(refresh)
    granted: dict[str, Any] = {
        "access_token": access,
        "expires_in": int(lifetime),
        "refresh_token": refresh,
        "refresh_token_expires_in": EBAY_REFRESH_LIFETIME,
        "token_type": "User Access Token",
    }
    return granted, 200, "ok"


# ---- the pages -------------------------------------------------------------------------------


def _with_query(url: str, params: list[tuple[str, str]]) -> str:
    joiner = "&" if "?" in url else "?"
    return url + joiner + urlencode(params, quote_via=quote)


def _redirect(url: str, params: list[tuple[str, str]], outcome: str = "ok") -> Reply:
    return Reply(
        302, "", outcome, content_type=HTML, headers={"Location": _with_query(url, params)}
    )


def _error_page(message: str) -> Reply:
    page = f"<!doctype html><title>Error</title><p>{escape(message)}</p>"
    return Reply(400, page, "error", content_type=HTML)


def _state_param() -> list[tuple[str, str]]:
    state = request.values.get("state")
    return [("state", state)] if state is not None else []


def _consent_page(title: str, app: str, accounts: list[str], chosen: str | None) -> Reply:
    """The "log in and allow" page: the account (named, or a choice), Allow and Deny."""
    if chosen is not None:
        who = (
            f'<p>Shop: <b>{escape(chosen)}</b></p><input type="hidden" name="shop" '
            f'value="{escape(chosen)}">'
        )
    else:
        options = "".join(f'<option value="{escape(a)}">{escape(a)}</option>' for a in accounts)
        who = f'<label>Shop <select name="shop">{options}</select></label>'
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(app)} asks to access your account.</p>"
        f'<form method="post">{who}'
        '<button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form></body></html>"
    )
    return Reply(200, page, "ok", content_type=HTML)


def _scopes(default: str, allowed: frozenset[str]) -> list[str] | None:
    """The requested scopes, None when any is unknown."""
    scopes = (request.values.get("scope") or default).split()
    return scopes if all(s in allowed for s in scopes) else None


def _base_authorize(call: Call, state: SandboxState) -> Reply:
    base = thebase.world_of(state)
    args = request.args
    if args.get("client_id") != base.client_id:
        return _error_page("クライアントが見つかりませんでした。 (unknown client_id)")
    redirect_uri = args.get("redirect_uri") or ""
    if redirect_uri != base.redirect_uri:
        return _error_page("redirect_uri が登録されたコールバックURLと一致しません。")
    if args.get("response_type") != "code":
        return _redirect(redirect_uri, [("error", "unsupported_response_type"), *_state_param()])
    scopes = _scopes("read_users", BASE_SCOPES)
    if scopes is None:
        return _redirect(redirect_uri, [("error", "invalid_scope"), *_state_param()])
    shops = sorted(base.ensure_shops())
    if request.method == "GET":
        chosen = args.get("shop")
        return _consent_page(
            "BASE: アプリ連携の許可", "invsync", shops, chosen if chosen in shops else None
        )
    shop = request.form.get("shop")
    if shop not in shops:
        return _error_page("ショップが見つかりませんでした。 (unknown shop)")
    call.account = shop
    if request.form.get("decision") != "allow":
        return _redirect(redirect_uri, [("error", "access_denied"), *_state_param()], "denied")
    code = world_of(state).issue("base", shop, redirect_uri, scopes)
    return _redirect(redirect_uri, [("code", code), *_state_param()])


def _ebay_authorize(call: Call, state: SandboxState) -> Reply:
    world, consent = ebay.world_of(state), world_of(state)
    args = request.args
    if args.get("client_id") != world.client_id:
        return _error_page("invalid_client: the client_id is not known to eBay.")
    ru_name = args.get("redirect_uri") or ""
    if ru_name != consent.ebay_ru_name:
        return _error_page("invalid_request: redirect_uri is not a RuName of this application.")
    accept = consent.ebay_accept_url
    if args.get("response_type") != "code":
        return _redirect(accept, [*_state_param(), ("error", "unsupported_response_type")])
    scopes = _scopes(EBAY_SCOPE_ROOT, EBAY_SCOPES)
    if scopes is None:
        return _redirect(accept, [*_state_param(), ("error", "invalid_scope")])
    call.account = world.account
    if request.method == "GET":
        return _consent_page("eBay: Grant application access", "invsync", [], world.account)
    if request.form.get("decision") != "allow":
        decline = consent.ebay_decline_url
        return _redirect(decline, [*_state_param(), ("error", "access_denied")], "denied")
    code = consent.issue("ebay", world.account, ru_name, scopes)
    expires = ("expires_in", str(EBAY_CODE_LIFETIME))
    return _redirect(accept, [*_state_param(), ("code", code), expires])


def blueprint(state: SandboxState) -> Blueprint:
    """The consent pages at the platforms' paths and the ``/_sandbox/consent`` controls."""
    bp = Blueprint("consent", __name__)
    world_of(state)  # exists before a persisted world loads, so its load finds it
    base_gate = Gate(state, thebase.BaseDialect(thebase.world_of(state)))
    ebay_gate = Gate(state, ebay.OAuthDialect(state))

    @bp.route("/1/oauth/authorize", methods=["GET", "POST"])
    def base_authorize() -> Response:
        return base_gate.answer(
            "oauth/authorize", lambda call: _base_authorize(call, state), authenticate=False
        )

    @bp.route("/oauth2/authorize", methods=["GET", "POST"])
    def ebay_authorize() -> Response:
        return ebay_gate.answer("oauth2/authorize", lambda call: _ebay_authorize(call, state))

    @bp.route("/_sandbox/consent/apps", methods=["GET", "POST"])
    def apps() -> Response:
        """Sandbox control: the apps' registered redirect URI and the RuName's URLs."""
        consent, base = world_of(state), thebase.world_of(state)
        with state.lock:
            if request.method == "POST":
                knobs = request.get_json(force=True, silent=True) or {}
                base.redirect_uri = str(knobs.get("base_redirect_uri") or base.redirect_uri)
                consent.ebay_accept_url = str(
                    knobs.get("ebay_accept_url") or consent.ebay_accept_url
                )
                consent.ebay_decline_url = str(
                    knobs.get("ebay_decline_url") or consent.ebay_decline_url
                )
            body = {
                "base_redirect_uri": base.redirect_uri,
                "ebay_ru_name": consent.ebay_ru_name,
                "ebay_accept_url": consent.ebay_accept_url,
                "ebay_decline_url": consent.ebay_decline_url,
            }
        return Response(json.dumps(body), mimetype="application/json")

    @bp.route("/_sandbox/consent/revoke", methods=["POST"])
    def revoke() -> Response:
        """Sandbox control: a seller revokes one refresh token (the app loses that grant)."""
        knobs = request.get_json(force=True, silent=True) or {}
        token = str(knobs.get("refresh_token") or "")
        with state.lock:
            if knobs.get("platform") == "ebay":
                tokens = ebay.world_of(state).refresh_tokens
                revoked = token in tokens
                tokens.discard(token)
                world_of(state).ebay_refresh_tokens.discard(token)
            else:
                revoked = thebase.world_of(state).refresh_tokens.pop(token, None) is not None
        return Response(json.dumps({"revoked": revoked}), mimetype="application/json")

    return bp
