"""The refresh-token store: tokens ``invsync auth`` obtained, and BASE's rotated ones.

Stage: auth (``invsync auth`` writes a consent's refresh token), load and listings pull (the
BASE client rotates; the client factory reads). Reads and writes
``<data_dir>/secrets/refresh_tokens.json`` (mode 0600, folder 0700), one entry per
``<platform>:<account>`` key (:func:`token_key`).

BASE rotates the refresh token on each use and the old one stops working, so the new
one is written here — atomically (temp file, fsync, rename, fsync of the folder) — the
moment it arrives and before anything uses it: a crash at any instant leaves either the
old token (still valid, nothing was used) or the new one on disk, never neither.

Which token wins, the stored one or the environment's (``.env``): the newest consent.
Each entry remembers a fingerprint of the environment token that was set when it was
written (``seed``; None when none was): the token ``invsync auth`` stored beside it, or the
one BASE rotated it into. So

* no environment token: the stored one is used (``invsync auth`` without ``.env``);
* the same environment token as then: the stored one is used (it is newer: a consent made
  after that ``.env``, or a rotation of it);
* another environment token (the operator pasted a fresh consent into ``.env`` since): the
  environment's is used, and the next rotation stores its descendant.

This file is the one place a secret is written to disk; nothing else under the data
directory ever holds one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.files import write_text_atomic
from pipeline.redact import remember

STORE_DIR = "secrets"
STORE_NAME = "refresh_tokens.json"
_TOKEN_FIELDS = ("refresh_token", "access_token")


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_DIR / STORE_NAME


def token_key(platform: str, account_id: str) -> str:
    """The store's key of one account's token: ``base:shop1``, ``ebay:ebay-main``."""
    return f"{platform}:{account_id}"


def _fingerprint(seed: str) -> str:
    # A short digest of the environment's token: tells a fresh consent from the one we
    # rotated from, without keeping the seed itself.
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def _newer_than_env(entry: object, seed: str) -> bool:
    """The stored entry wins over the environment's token ``seed`` ("" when none is set)."""
    return isinstance(entry, dict) and (not seed or entry.get("seed") == _fingerprint(seed))


class RefreshTokenStore:
    """Refresh tokens by key (:func:`token_key`), persisted before use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # A damaged store must not stop a run that has a usable environment token.
            return {}
        if not isinstance(data, dict):
            return {}
        # every token read from the store is held for redaction from now on
        for entry in data.values():
            if isinstance(entry, dict):
                remember(
                    *(v for k, v in entry.items() if k in _TOKEN_FIELDS and isinstance(v, str))
                )
        return data

    def current(self, key: str, seed: str) -> str:
        """The token to use now: the stored one unless the environment's ``seed`` is newer
        (see the module docstring), else ``seed`` ("" when there is neither)."""
        entry = self._read().get(key)
        if _newer_than_env(entry, seed):
            assert isinstance(entry, dict)
            token = entry.get("refresh_token")
            if isinstance(token, str) and token:
                return token
        return seed

    def holds(self, key: str) -> bool:
        """Whether a refresh token is stored under ``key`` (what live mode may use instead of
        the environment's variable)."""
        entry = self._read().get(key)
        return isinstance(entry, dict) and bool(entry.get("refresh_token"))

    def access(self, key: str, seed: str, now: float) -> tuple[str, float] | None:
        """The stored access token and its expiry (unix seconds) while it is still valid."""
        entry = self._read().get(key)
        if not _newer_than_env(entry, seed):
            return None
        assert isinstance(entry, dict)
        token, expires_at = entry.get("access_token"), entry.get("access_expires_at")
        valid = isinstance(expires_at, int | float) and now < float(expires_at)
        if isinstance(token, str) and token and valid:
            return token, float(expires_at)  # type: ignore[arg-type]
        return None

    def save(
        self,
        key: str,
        token: str,
        seed: str,
        *,
        access_token: str | None = None,
        access_expires_at: float | None = None,
    ) -> None:
        """Write ``token`` (and the access token that came with it) for ``key`` atomically
        with mode 0600; returns once it is on disk. ``seed`` is the environment's token now
        ("" when none is set: the entry keeps the fingerprint it had).

        The access token is kept so that a restarted process reuses it for the rest of its
        hour instead of refreshing: every refresh rotates the refresh token, and the moment
        between BASE rotating it and this file holding the new one is the one window a
        ``kill -9`` could lose it in. Fewer refreshes, fewer such moments.
        """
        remember(token, access_token)
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        data = self._read()
        before = data.get(key)
        kept = before.get("seed") if isinstance(before, dict) else None
        entry: dict[str, object] = {
            "refresh_token": token,
            "seed": _fingerprint(seed) if seed else kept,
        }
        if access_token is not None and access_expires_at is not None:
            entry["access_token"] = access_token
            entry["access_expires_at"] = access_expires_at
        data[key] = entry
        # mode 0600 before any byte of a secret is written; fsynced, renamed, folder fsynced
        write_text_atomic(self.path, json.dumps(data), mode=0o600)
