"""Keeps secrets inside the process: replaces every known secret value in a text.

Used by the CLI on error messages and tracebacks and by the log handlers, as a
last line of defence; messages are built from our own values in the first place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pipeline.config import BASE_SECRETS, EBAY_SECRETS, SPAPI_SECRETS

MASK = "***"
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words
# Token-looking material that may come from an API rather than from our environment.
_TOKEN_PATTERNS = (
    re.compile(r"(Atz[ar]\|)[A-Za-z0-9%|_\-.+/=]+"),  # LWA access / refresh tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-|]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)(client_secret[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
    re.compile(r"(?i)(x-amz-access-token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"),
)


def secret_names(env: Mapping[str, str]) -> list[str]:
    """Names of variables that hold secrets: the known ones and any *_TOKEN / *_SECRET."""
    known = set(SPAPI_SECRETS) | set(BASE_SECRETS) | set(EBAY_SECRETS)
    return [
        name
        for name in env
        if name in known
        or name.endswith(("_TOKEN", "_SECRET", "_CLIENT_SECRET", "_PASSWORD"))
        or name.endswith("_REFRESH_TOKEN")
    ]


def secret_values(env: Mapping[str, str], extra: Iterable[str] = ()) -> list[str]:
    values = {env[n] for n in secret_names(env) if len(env.get(n, "")) >= _MIN_SECRET_LENGTH}
    values |= {v for v in extra if len(v) >= _MIN_SECRET_LENGTH}
    # longest first, so a secret that contains another is masked whole
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value and token-looking string replaced by ``***``."""
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
