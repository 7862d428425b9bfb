"""One retry policy for the BASE and eBay clients (``requests`` + tenacity).

Stage: load and listings pull (the platform clients). Reads: nothing. Writes: nothing.

Transient answers are retried with capped exponential backoff: HTTP 429, every 5xx, a
dropped connection and a timeout. A ``Retry-After`` header (seconds) wins over the
backoff, capped like it. Every other status goes back to the caller, which knows the
platform's error body. When the attempts run out the last problem is raised as one of
two types, so callers tell "not processed, try later" from "we do not know":

* :class:`~pipeline.errors.ThrottledError` — the platform kept answering 429 (nothing
  was processed);
* :class:`~pipeline.errors.TransientApiError` — 5xx or no answer at all (the call may
  have been applied).

Both are :class:`~pipeline.errors.RetryableApiError` and are defined in
:mod:`pipeline.errors` (re-exported here under their old home). :func:`unusable_answer`
builds the same TransientApiError for an answer a client cannot read, so every "the
platform answered, but not usably" sentence has one shape.

Messages are built from our own values (platform, operation, status): never ``str()``
of a ``requests`` exception, which can carry URLs and headers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from pipeline.errors import ThrottledError as ThrottledError
from pipeline.errors import TransientApiError as TransientApiError
from pipeline.redact import remember

log = logging.getLogger("invsync.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TOKEN_MARGIN = 300.0  # seconds: refresh an access token this long before it expires

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry. Times are seconds of real time; ``time_scale`` divides every wait
    (the sandbox runs its clocks N times faster, so its clients wait N times shorter)."""

    max_attempts: int = 5
    backoff_base: float = 1.0  # seconds, first wait; doubles each attempt
    backoff_max: float = 60.0  # seconds, cap of one wait (and of Retry-After)
    timeout: float = 30.0  # seconds, connect and read, every call
    time_scale: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def wait_seconds(self, attempt: int, retry_after: float | None) -> float:
        cap = self.backoff_max / self.time_scale
        if retry_after is not None:
            return min(max(retry_after, 0.0), cap)
        backoff = self.backoff_base * 2 ** (attempt - 1) / self.time_scale
        # full jitter keeps several shops from retrying in lock step
        return min(cap, backoff * (0.5 + random.random() / 2))


class _RetryableAnswer(Exception):
    """Internal: a 429 or 5xx answer, raised so tenacity retries it; never leaves :func:`send`."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    platform: str,
    operation: str,
    policy: RetryPolicy,
    before_attempt: Callable[[], None] | None = None,
    transient: Callable[[requests.Response], bool] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One HTTP call with the retry policy; returns the first non-retryable response.

    ``before_attempt`` runs before every attempt (BASE counts each one against the
    shop's hourly budget, and may raise to stop). ``transient`` marks other answers the
    platform's own error body calls transient (BASE's ``server_error`` in its HTTP 400);
    they are retried and run out like a 5xx.
    """

    def attempt() -> requests.Response:
        if before_attempt is not None:
            before_attempt()
        response = session.request(method, url, timeout=policy.timeout, **kwargs)
        if response.status_code in RETRY_STATUSES or (transient and transient(response)):
            raise _RetryableAnswer(response)
        return response

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = _retry_after(exc.response) if isinstance(exc, _RetryableAnswer) else None
        seconds = policy.wait_seconds(state.attempt_number, after)
        status = exc.response.status_code if isinstance(exc, _RetryableAnswer) else "no answer"
        log.info(
            "%s %s: %s, retrying in %.3f s (attempt %d)",
            platform,
            operation,
            status,
            seconds,
            state.attempt_number,
        )
        return seconds

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception_type(
            (_RetryableAnswer, requests.ConnectionError, requests.Timeout)
        ),
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _RetryableAnswer as exc:
        status = exc.response.status_code
        if status == 429:
            raise ThrottledError(
                f"{platform} kept answering 429 (too many requests) to {operation} after "
                f"{policy.max_attempts} attempts; run the command again later.",
                operation=operation,
                retry_after=_retry_after(exc.response),
            ) from None
        raise TransientApiError(
            f"{platform} answered HTTP {status} to {operation} after {policy.max_attempts} "
            "attempts; check the platform's status and run the command again.",
            operation=operation,
            http_status=status,
        ) from None
    except (requests.ConnectionError, requests.Timeout):
        raise TransientApiError(
            f"{platform} did not answer {operation} after {policy.max_attempts} attempts "
            "(connection failed or timed out); check the network or the endpoint and run "
            "the command again.",
            operation=operation,
            http_status=None,
        ) from None


@dataclass
class AccessToken:
    """An OAuth access token and when to stop using it (seconds on the client's clock).

    BASE and eBay both hand out an access token with a lifetime, both are refreshed
    :data:`TOKEN_MARGIN` early, and both drop it when the platform refuses it."""

    value: str | None = field(default=None, repr=False)  # a secret: never in a repr
    expires_at: float = 0.0

    @classmethod
    def lasting(cls, value: str, lifetime: float, now: float, policy: RetryPolicy) -> AccessToken:
        """A token issued at ``now`` for ``lifetime`` seconds, to be used until the margin.
        The value is held for redaction (:func:`pipeline.redact.remember`) from now on."""
        remember(value)
        return cls(value, now + lifetime - TOKEN_MARGIN / policy.time_scale)

    def usable(self, now: float) -> bool:
        return self.value is not None and now < self.expires_at


def refreshed_once(
    call: Callable[[], Answer],
    refused: Callable[[Answer], bool],
    forget_token: Callable[[], None],
) -> Answer:
    """``call()``; when its answer says the access token was refused, forget the token (the
    next call refreshes it) and call once more. Returns the last answer: the client says what
    a second refusal means, since each platform refuses in its own words."""
    answer = call()
    if refused(answer):
        forget_token()
        answer = call()
    return answer


def unusable_answer(
    who: str,
    said: str,
    *,
    operation: str,
    http_status: int | None,
    next_step: str = "run the command again",
) -> TransientApiError:
    """``<who> answered <said>; <next_step>.`` as a :class:`TransientApiError`: the platform
    answered, but not with anything we can use (e.g. ``who="BASE shop s1"``, ``said="items/edit
    for item 5 without the item"``)."""
    return TransientApiError(
        f"{who} answered {said}; {next_step}.", operation=operation, http_status=http_status
    )


def json_body(response: requests.Response) -> Any:
    """The JSON body, or None when the body is not JSON (an HTML error page, a cut-off body)."""
    try:
        return response.json()
    except ValueError:
        return None
