"""Keeps secrets inside the process: replaces every secret the process holds in a text.

Used by the CLI on error messages and tracebacks, by the log handlers, by the push journal
(error messages from a platform's answer) and by the run book (a run's message), as a last
line of defence; messages are built from our own values in the first place.

Two kinds of secret are masked:

* the values of the environment's secret variables (the known names, any ``*_TOKEN`` /
  ``*_SECRET`` name, and every variable an account names in ``refresh_token_env``);
* every token the process has held since it started: the clients call :func:`remember`
  with each access and refresh token they obtain (an OAuth refresh, the token store, the
  authorization-code exchange), and the workspace with every secret it hands out. A token
  a platform echoes back in an error body is therefore masked wherever the text goes —
  logs, ``push_journal.error_message`` and its exports, the run's message, tracebacks —
  whatever its shape.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping

MASK = "***"
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words
# Token-looking material that may come from an API rather than from our environment.
_TOKEN_PATTERNS = (
    re.compile(r"(Atz[ar]\|)[A-Za-z0-9%|_\-.+/=]+"),  # LWA access / refresh tokens
    re.compile(r"(v\^1\.1#i\^1#)[A-Za-z0-9%|_\-.+/=#^]+"),  # eBay user access / refresh tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-|]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)(client_secret[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)(x-amz-access-token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)(x-ebay-api-iaf-token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}<]+"),
    re.compile(r"(?i)(<eBayAuthToken>)[^<]+"),
)

_held: set[str] = set()
_held_lock = threading.Lock()


def remember(*values: str | None) -> None:
    """Hold ``values`` (tokens and secrets this process obtained): every later
    :func:`redact` masks them, wherever they turn up."""
    fresh = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH}
    if fresh:
        with _held_lock:
            _held.update(fresh)


def held() -> frozenset[str]:
    """Every secret value :func:`remember` was given in this process."""
    with _held_lock:
        return frozenset(_held)


def secret_names(env: Mapping[str, str], also: Iterable[str] = ()) -> list[str]:
    """Names of variables that hold secrets: the known ones, any *_TOKEN / *_SECRET, and
    ``also`` (the variables the configuration names, e.g. ``refresh_token_env``)."""
    from pipeline.config import BASE_SECRETS, EBAY_SECRETS, SPAPI_SECRETS

    known = set(SPAPI_SECRETS) | set(BASE_SECRETS) | set(EBAY_SECRETS) | set(also)
    return [
        name
        for name in env
        if name in known or name.endswith(("_TOKEN", "_SECRET", "_CLIENT_SECRET", "_PASSWORD"))
    ]


def secret_values(env: Mapping[str, str], extra: Iterable[str] = ()) -> list[str]:
    """The secret values of ``env`` and ``extra`` (held values are added by :func:`redact`)."""
    values = {env[n] for n in secret_names(env) if len(env.get(n, "")) >= _MIN_SECRET_LENGTH}
    values |= {v for v in extra if len(v) >= _MIN_SECRET_LENGTH}
    return _longest_first(values)


def _longest_first(values: Iterable[str]) -> list[str]:
    # longest first, so a secret that contains another is masked whole
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value (``secrets`` and every held one) and every
    token-looking string replaced by ``***``."""
    for value in _longest_first([*secrets, *held()]):
        if value:
            text = text.replace(value, MASK)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
