"""The rotated refresh-token store: BASE hands out a new refresh token on every refresh.

Stage: load and listings pull (the BASE client). Reads and writes
``<data_dir>/secrets/refresh_tokens.json`` (mode 0600, folder 0700).

BASE rotates the refresh token on each use and the old one stops working, so the new
one is written here — atomically (temp file, fsync, rename, fsync of the folder) — the
moment it arrives and before anything uses it: a crash at any instant leaves either the
old token (still valid, nothing was used) or the new one on disk, never neither.

The stored token wins over the environment's initial one. Each entry remembers a
fingerprint of the environment token it descends from: when the operator puts a new
token in the environment (a fresh consent), the fingerprint no longer matches and the
environment's token is used again. This file is the one place a secret is written to
disk; nothing else under the data directory ever holds one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.files import write_text_atomic

STORE_DIR = "secrets"
STORE_NAME = "refresh_tokens.json"


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_DIR / STORE_NAME


def _fingerprint(seed: str) -> str:
    # A short digest of the environment's token: tells a fresh consent from the one we
    # rotated from, without keeping the seed itself.
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


class RefreshTokenStore:
    """Refresh tokens by key (``base:<account>``), persisted before use."""

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
        return data if isinstance(data, dict) else {}

    def current(self, key: str, seed: str) -> str:
        """The token to use now: the stored one if it descends from ``seed``, else ``seed``."""
        entry = self._read().get(key)
        if isinstance(entry, dict) and entry.get("seed") == _fingerprint(seed):
            token = entry.get("refresh_token")
            if isinstance(token, str) and token:
                return token
        return seed

    def access(self, key: str, seed: str, now: float) -> tuple[str, float] | None:
        """The stored access token and its expiry (unix seconds) while it is still valid."""
        entry = self._read().get(key)
        if not isinstance(entry, dict) or entry.get("seed") != _fingerprint(seed):
            return None
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
        with mode 0600; returns once it is on disk.

        The access token is kept so that a restarted process reuses it for the rest of its
        hour instead of refreshing: every refresh rotates the refresh token, and the moment
        between BASE rotating it and this file holding the new one is the one window a
        ``kill -9`` could lose it in. Fewer refreshes, fewer such moments.
        """
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        data = self._read()
        entry: dict[str, object] = {"refresh_token": token, "seed": _fingerprint(seed)}
        if access_token is not None and access_expires_at is not None:
            entry["access_token"] = access_token
            entry["access_expires_at"] = access_expires_at
        data[key] = entry
        # mode 0600 before any byte of a secret is written; fsynced, renamed, folder fsynced
        write_text_atomic(self.path, json.dumps(data), mode=0o600)
