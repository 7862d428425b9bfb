"""The request gate every sandbox API shares: one order of checks, each API's own spelling.

Stage: sandbox. Reads :class:`~pipeline.sandbox.state.SandboxState` (fault knobs, clock,
seeded generator); writes its ledger (one record per request, whatever the answer).

Every request to SP-API (and LWA), BASE, eBay Inventory (and its OAuth) and eBay Trading
passes, in this order:

1. ``slow_ms``: the extra latency, slept WITHOUT the state lock;
2. an ``outage`` window → :meth:`Dialect.outage` (a 503; no quota spent);
3. the caller → :meth:`Dialect.authenticate` (raises :class:`Refused`);
4. a ``throttle_storm`` window → :meth:`Dialect.storm` (no quota spent);
5. the quota → :meth:`Dialect.spend_quota` (rate bucket, hour/day windows; raises);
6. the ``error_rate`` / ``html_rate`` faults → :meth:`Dialect.server_error` or the HTML 503;
7. the handler → a :class:`Reply` (or raises :class:`Refused`); a reply whose status is in
   :attr:`Dialect.malformable` is cut in half by the ``malformed_rate`` fault; with the
   ``echo_token`` fault every error answer repeats the token the caller presented in its
   message (as some live error bodies do), so tests can prove invsync never stores it;
8. the ledger, then :meth:`Dialect.respond` puts the reply on the wire.

A :class:`Dialect` says how its API spells each answer: SP-API's JSON ``errors``, BASE's
HTTP 400 ``{"error", "error_description"}``, eBay's JSON ``errors``, Trading's XML with an
``Ack``. Steps a dialect does not have (an OAuth endpoint has no storm and no quota) are
hooks left at their defaults.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import flask

from pipeline.sandbox.state import SandboxState

OUTAGE_HTML = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "</body>\r\n</html>\r\n"
)
JSON = "application/json"
HTML = "text/html; charset=utf-8"  # what Flask sends for mimetype="text/html"


@dataclass
class Reply:
    """One HTTP answer and what the ledger should say about it."""

    status: int
    body: Any  # str: sent as is; anything else: JSON, as the dialect encodes it
    outcome: str = "ok"  # the ledger's word: ok, throttled, fault:outage, ...
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)  # per-item outcomes for the ledger


@dataclass
class Call:
    """The request being answered, as the ledger will record it."""

    operation: str
    admitted: float  # clock seconds when the gate took the lock (bucket and ledger agree)
    items: list[str] = field(default_factory=list)  # ASINs, item ids or SKUs it is about
    account: str | None = None


class Refused(Exception):
    """Answer ``reply`` instead of going on (a bad token, an exhausted quota, a bad request)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.outcome)
        self.reply = reply


def truncated(body: str) -> str:
    """A body cut off half-way, as a dropped connection or a broken proxy delivers it."""
    return body[: max(1, len(body) // 2)]


class Dialect:
    """How one API spells the gate's answers; override the hooks the API has."""

    api = ""  # the ledger's api name: spapi, lwa, base, ebay, trading
    malformable: frozenset[int] = frozenset({200})  # handler statuses malformed_rate may cut
    html_type = HTML  # Content-Type of the load balancer's HTML 503

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def outage(self, call: Call, html: bool) -> Reply:
        """The 503 inside an outage window: the HTML page, or the API's own body."""
        if html:
            return Reply(503, OUTAGE_HTML, "fault:outage", content_type=self.html_type)
        return self.unavailable(call)

    def unavailable(self, call: Call) -> Reply:
        """The API's own 503 body (an outage without ``outage_html``)."""
        raise NotImplementedError

    def authenticate(self, call: Call) -> None:
        """Raise :class:`Refused` unless the caller may call; may set ``call.account``."""

    def storm(self, call: Call) -> Reply | None:
        """The answer inside a throttle-storm window; None: this endpoint has no storm."""
        return None

    def spend_quota(self, call: Call) -> None:
        """Take one unit of the caller's quota, or raise :class:`Refused` (throttled)."""

    def fault_after_quota(self, call: Call) -> str | None:
        """``"error"``, ``"html"`` or None, by the fault rates (the call spent its quota)."""
        return self.state.fault_after_quota(call.operation)

    def server_error(self, call: Call) -> Reply:
        """The API's answer to the ``error_rate`` fault."""
        raise NotImplementedError

    def encode(self, body: Any) -> str:
        return json.dumps(body)

    def text(self, reply: Reply) -> str:
        return reply.body if isinstance(reply.body, str) else self.encode(reply.body)

    def respond(self, reply: Reply, call: Call) -> flask.Response:
        """The reply on the wire (called without the state lock)."""
        return flask.Response(
            self.text(reply),
            status=reply.status,
            headers=reply.headers,
            content_type=reply.content_type,
        )


# Calls whose answer a client stores for the next run: a persisted world (the demo's) is
# written before they are answered, so a client killed right after still finds its token.
# BASE hands out a new refresh token with every access token, and the old one stops working.
SAVED_AT_ONCE = frozenset({"oauth/token"})


class Gate:
    """One API's gate: ``gate.answer(operation, handler)`` runs a request through it."""

    def __init__(self, state: SandboxState, dialect: Dialect) -> None:
        self.state = state
        self.dialect = dialect

    def answer(
        self,
        operation: str,
        handler: Callable[[Call], Reply],
        *,
        items: list[str] | None = None,
        account: str | None = None,
        authenticate: bool = True,
    ) -> flask.Response:
        """Answer one request; ``handler`` runs only if every check lets the call through
        (it may set ``call.items`` and ``call.account`` for the ledger)."""
        state, dialect = self.state, self.dialect
        delay = state.slow_seconds()
        if delay:
            time.sleep(delay)  # outside the lock: a slow answer must not stall the others
        with state.lock:
            changes_before = len(state.ledger.changes)
            call = Call(operation, state.now(), list(items or []), account)
            try:
                reply = self._checks(call, authenticate)
                if reply is None:
                    reply = handler(call)
                    if reply.status in dialect.malformable and state.malformed():
                        reply.body = truncated(dialect.text(reply))
                        reply.outcome = "fault:malformed"
            except Refused as refused:
                reply = refused.reply
            if state.faults.echo_token:
                _echo_token(reply)
            state.ledger.record_call(
                dialect.api,
                operation,
                reply.status,
                reply.outcome,
                call.items,
                call.account,
                detail=reply.detail,
                at=call.admitted,
            )
            if len(state.ledger.changes) > changes_before:
                state.unsaved_changes = True
        if operation in SAVED_AT_ONCE and reply.status == 200:
            state.save()  # a persisted world must know the token the client is about to keep
        return dialect.respond(reply, call)

    def _checks(self, call: Call, authenticate: bool) -> Reply | None:
        """Steps 2–6 (state lock held); a Reply means "answer this instead"."""
        state, dialect = self.state, self.dialect
        before = state.fault_before_quota()
        if before == "outage":
            return dialect.outage(call, state.faults.outage_html)
        if authenticate:
            dialect.authenticate(call)
        if before == "throttle_storm":
            stormed = dialect.storm(call)
            if stormed is not None:
                return stormed
        dialect.spend_quota(call)
        after = dialect.fault_after_quota(call)
        if after == "error":
            return dialect.server_error(call)
        if after == "html":
            return Reply(503, OUTAGE_HTML, "fault:html", content_type=dialect.html_type)
        return None


# Where an error answer says what went wrong, per API: JSON keys, Trading's XML elements.
_MESSAGE_KEYS = ("message", "longMessage", "error_description", "details")
_XML_MESSAGES = ("</ShortMessage>", "</LongMessage>")


def presented_token() -> str | None:
    """The token the caller sent: a bearer or IAF access token, SP-API's
    ``x-amz-access-token``, or the refresh token of a token request."""
    headers = flask.request.headers
    bearer = headers.get("Authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip() or None
    for name in ("X-EBAY-API-IAF-TOKEN", "x-amz-access-token"):
        if headers.get(name):
            return headers[name]
    return flask.request.form.get("refresh_token") or None


def _echo_token(reply: Reply) -> None:
    """The ``echo_token`` fault: an error answer repeats the caller's token in its message."""
    token = presented_token()
    if not token:
        return
    said = f" (token presented: {token})"
    if isinstance(reply.body, str):
        if any(tag in reply.body for tag in _XML_MESSAGES):  # Trading: Ack Failure / Warning
            for tag in _XML_MESSAGES:
                reply.body = reply.body.replace(tag, escape(said) + tag)
        return
    if reply.status < 400 and reply.status != 207:  # 207: eBay's per-SKU errors
        return

    def echo(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _MESSAGE_KEYS and isinstance(value, str):
                    node[key] = value + said
                else:
                    echo(value)
        elif isinstance(node, list):
            for value in node:
                echo(value)

    echo(reply.body)
