"""History on an S3-compatible object store (``[history] url``): the store is the system of
record of the data directory's Parquet history, the data directory its local working copy.

Stage: publish (the end of every sync, ``invsync warehouse rebuild``) and every reader of the
analysts' views. Reads the local history files (snapshots, diffs, listings as they stood,
dry-run plans, exports; :data:`HISTORY_FILES`); writes each as one object under the URL's
prefix at the same relative key (``s3://bucket/prefix/snapshots/amazon/dt=…/run_id=…/
part-0.parquet``). Never uploads ``staging/``, the warehouse, the token store, the sandbox's
files, logs or locks: they stay local to the worker.

How it is used:

* :func:`upload_history` (``views.publish``): every history file the store lacks, or holds in
  another size or older than the local file, is uploaded whole (one PUT, or a multipart upload
  that appears only when complete: a reader never sees half an object); the exports, rewritten
  at every publish, always. A file that fails the local footer check
  (:func:`pipeline.warehouse.readable_parquet`, which names it in a warning) is never uploaded,
  so the store holds only files read sound here. A failed upload raises one sentence and
  removes nothing: the next publish uploads what is missing.
* :func:`register` puts the store's filesystem into a DuckDB connection: DuckDB reaches
  ``s3://`` through fsspec (``register_filesystem``; no httpfs extension is needed), and the
  views of ``analytics.duckdb`` name ``s3://`` paths only, never a credential.

Credentials come only from the workspace's environment mapping (``Workspace.env``: the process
environment over ``.env``, or whatever mapping an orchestrator gives each seller):
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (both required), ``AWS_ENDPOINT_URL``
(any S3-compatible store; AWS's regional endpoint when unset) and ``AWS_REGION`` (default
``us-east-1``). The botocore session is built with every environment lookup switched off and
no config or credentials file, so one seller never picks up another's keys, profile or
endpoint from the process environment.

Every caller that publishes or reads the views holds the workspace and passes its
:func:`store` (None: the history is local), so which store a connection reads is always the
one its own workspace names.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import (
    ApiAuthError,
    ConfigError,
    ExternalApiError,
    MissingCredentialError,
    TransientApiError,
)
from pipeline.layout import DIFF_FILES, DRY_RUN_PLANS, LISTING_FILES, SNAPSHOT_FILES

if TYPE_CHECKING:
    import duckdb

    from pipeline.config import Workspace

log = logging.getLogger("invsync.history_store")

KEY_ID_VAR = "AWS_ACCESS_KEY_ID"
SECRET_KEY_VAR = "AWS_SECRET_ACCESS_KEY"
ENDPOINT_VAR = "AWS_ENDPOINT_URL"
REGION_VAR = "AWS_REGION"
SECRET_VARS = (KEY_ID_VAR, SECRET_KEY_VAR)  # masked wherever text leaves the process
DEFAULT_REGION = "us-east-1"

EXPORT_FILES = ("exports", "*/*.parquet")  # rewritten at every publish: always uploaded
# (folder, glob below it, what the footer check calls it), uploaded in this order: the
# history first, the exports last, so a reader of the exports finds the runs they name
HISTORY_FILES: tuple[tuple[str, str, str], ...] = (
    (*SNAPSHOT_FILES, "snapshot"),
    (*DIFF_FILES, "diff"),
    (*LISTING_FILES, "listing history"),
    (".", DRY_RUN_PLANS, "dry-run plan"),
    (*EXPORT_FILES, "export"),
)
# S3 keeps LastModified in whole seconds: a local file written in the same second as its
# upload must not look newer than the object
_MTIME_SLACK = 1.0  # seconds
_CONNECT_TIMEOUT = 10  # seconds
_READ_TIMEOUT = 60  # seconds
_ATTEMPTS = 3  # per request, botocore's standard retry mode (connection errors, 5xx, throttling)


@dataclass(frozen=True)
class Uploaded:
    """What one :func:`upload_history` did: the keys it wrote (relative to the prefix), their
    bytes, the files the store already held, and the seconds it took."""

    keys: tuple[str, ...]
    bytes: int
    kept: int
    seconds: float


@dataclass(frozen=True)
class HistoryStore:
    """One ``[history] url`` with the credentials of the workspace that named it."""

    url: str  # s3://bucket/prefix, no trailing slash
    env: Mapping[str, str] = field(repr=False, compare=False)  # the workspace's; holds secrets
    _fs: list[Any] = field(default_factory=list, repr=False, compare=False)  # built once

    @property
    def bucket(self) -> str:
        return self.url.removeprefix("s3://").split("/", 1)[0]

    @property
    def root(self) -> str:
        """``bucket/prefix``: the path s3fs takes."""
        return self.url.removeprefix("s3://")

    @property
    def endpoint(self) -> str:
        region = self.env.get(REGION_VAR, "").strip() or DEFAULT_REGION
        given = self.env.get(ENDPOINT_VAR, "").strip().rstrip("/")
        # named even for AWS itself, so botocore never takes one from the process environment
        return given or f"https://s3.{region}.amazonaws.com"

    def remote(self, relative: str | Path) -> str:
        """The ``s3://`` URL of a path relative to the data directory."""
        text = Path(relative).as_posix()
        return self.url if text in ("", ".") else f"{self.url}/{text}"

    def filesystem(self) -> Any:
        """The store as an s3fs filesystem, built from the workspace's variables only."""
        if not self._fs:
            self._fs.append(_build_filesystem(self))
        return self._fs[0]

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let ``con`` read ``s3://`` paths through this store. DuckDB holds filesystems per
        database instance, and a process shares one instance per file, so a filesystem an
        earlier connection registered is replaced by this one (the same workspace's)."""
        fs = self.filesystem()
        if "s3" in con.list_filesystems():
            con.unregister_filesystem("s3")
        con.register_filesystem(fs)

    def matching(self, folder: str, pattern: str) -> list[str]:
        """The objects under ``folder`` whose key matches ``pattern``, relative to the prefix."""
        base = self.root if folder in ("", ".") else f"{self.root}/{folder}"
        with self.talking("list the history in"):
            found = self.filesystem().glob(f"{base}/{pattern}")
        return sorted(str(path).removeprefix(self.root + "/") for path in found)

    def held(self, doing: str = "list the history in") -> dict[str, dict[str, Any]]:
        """Every object under the prefix: its key relative to the prefix → s3fs's details."""
        with self.talking(doing):
            found = self.filesystem().find(self.root, detail=True)
        return {str(path).removeprefix(self.root + "/"): info for path, info in found.items()}

    def upload(self, data_dir: Path) -> Uploaded:
        """Upload every local history file the store lacks or holds stale, and every export."""
        from pipeline.warehouse import readable_parquet

        started = time.monotonic()
        held = self.held("upload the history to")
        fs = self.filesystem()
        keys: list[str] = []
        sent = kept = 0
        for folder, pattern, kind in HISTORY_FILES:
            local = sorted((data_dir / folder).glob(pattern))
            for path in readable_parquet(local, kind):
                key = path.relative_to(data_dir).as_posix()
                if folder != EXPORT_FILES[0] and _same(path, held.get(key)):
                    kept += 1
                    continue
                with self.talking("upload the history to"):
                    fs.put_file(str(path), f"{self.root}/{key}")
                keys.append(key)
                sent += path.stat().st_size
        uploaded = Uploaded(tuple(keys), sent, kept, time.monotonic() - started)
        log.info(
            "History uploaded to %s: %d file(s), %.1f MB in %.1f s; %d were there already.",
            self.url, len(keys), sent / 1e6, uploaded.seconds, kept,
        )  # fmt: skip
        return uploaded

    @contextmanager
    def talking(self, doing: str) -> Iterator[None]:
        """A failure of the store as one sentence naming the URL, the cause and the next
        step (never ``str()`` of the library's exception: it may quote a request)."""
        try:
            yield
        except (MissingCredentialError, ConfigError, ExternalApiError):
            raise
        except Exception as exc:
            raise _failure(self, doing, exc) from None


def _same(path: Path, info: dict[str, Any] | None) -> bool:
    """The store already holds ``path`` as it is: same size, uploaded after its last write."""
    if info is None or int(info.get("size") or info.get("Size") or -1) != path.stat().st_size:
        return False
    modified = info.get("LastModified")
    if not isinstance(modified, datetime):
        return False
    return path.stat().st_mtime <= modified.timestamp() + _MTIME_SLACK


_AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403")


def _failure(store: HistoryStore, doing: str, exc: BaseException) -> ExternalApiError | ConfigError:
    cause = _cause(exc)
    keep = "the files stay in the data directory and the next sync uploads what is missing"
    if isinstance(exc, PermissionError) or any(code in cause for code in _AUTH_CODES):
        return ApiAuthError(
            f"The history store refused the credentials to {doing} {store.url} ({cause}); "
            f"{keep}: check {KEY_ID_VAR} and {SECRET_KEY_VAR} in the environment or .env.",
            code=cause, operation="s3",
        )  # fmt: skip
    if "NoSuchBucket" in cause or isinstance(exc, FileNotFoundError):
        return ConfigError(
            f"The bucket {store.bucket} of [history] url {store.url} does not exist at "
            f"{store.endpoint} ({cause}); create it or correct the url, and sync again ({keep})."
        )
    return TransientApiError(
        f"Could not {doing} {store.url} at {store.endpoint} ({cause}); {keep}: check that the "
        f"store answers there ({ENDPOINT_VAR}) and sync again.",
        code=cause, operation="s3",
    )  # fmt: skip


def _cause(exc: BaseException) -> str:
    """The error's class and, for an answer of the store, its error code: never its text."""
    code = None
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
    if code is None and isinstance(exc, OSError) and exc.errno is not None:
        code = str(exc.errno)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def _build_filesystem(store: HistoryStore) -> Any:
    try:
        import s3fs
        from aiobotocore.session import AioSession
        from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES
    except ImportError:
        raise ConfigError(
            f"[history] url {store.url} needs s3fs, which is not installed; install invsync's "
            "s3 extra (pip install 'invsync[s3]') or remove [history] url."
        ) from None
    missing = [name for name in SECRET_VARS if not store.env.get(name)]
    if missing:
        raise MissingCredentialError(
            f"[history] url {store.url} needs {' and '.join(missing)}; put "
            f"{'it' if len(missing) == 1 else 'them'} in the environment or .env (the store's "
            "access key), or remove [history] url to keep the history local."
        )
    # every session variable without its environment name, and no ~/.aws files: the
    # workspace's mapping is the only source (AWS_PROFILE, AWS_CONFIG_FILE, … are ignored)
    variables = {
        name: (config_name, None, default, convert)
        for name, (config_name, _env, default, convert) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    session = AioSession(session_vars=variables)
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    region = store.env.get(REGION_VAR, "").strip() or DEFAULT_REGION
    return s3fs.S3FileSystem(
        key=store.env[KEY_ID_VAR],
        secret=store.env[SECRET_KEY_VAR],
        token=None,
        endpoint_url=store.endpoint,
        session=session,
        client_kwargs={"region_name": region},
        config_kwargs={
            "connect_timeout": _CONNECT_TIMEOUT,
            "read_timeout": _READ_TIMEOUT,
            "retries": {"max_attempts": _ATTEMPTS, "mode": "standard"},
        },
        skip_instance_cache=True,  # never share a client (and its keys) between workspaces
        use_listings_cache=False,  # another process uploads too: list afresh every time
    )


# --- the workspace's store -------------------------------------------------------------------


def store(ws: Workspace) -> HistoryStore | None:
    """The workspace's ``[history]`` store, or None when its history stays local."""
    url = ws.settings.history.url
    return HistoryStore(url, dict(ws.env)) if url else None


def filesystem(ws: Workspace) -> Any:
    """The workspace's store as an s3fs filesystem (for pyarrow, polars through fsspec, …)."""
    found = store(ws)
    if found is None:
        raise ConfigError("[history] url is not set; the history is local to the data directory.")
    return found.filesystem()


def upload_history(ws: Workspace) -> Uploaded | None:
    """Upload the workspace's missing or changed history and its exports; None when local."""
    found = store(ws)
    return found.upload(ws.data_dir) if found else None


def remote_url(ws: Workspace) -> str | None:
    """``s3://bucket/prefix`` of the workspace's history, or None when it is local."""
    return ws.settings.history.url


def register(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """Let ``con`` read the workspace's remote history (nothing to do when it is local)."""
    found = store(ws)
    if found is not None:
        found.register(con)
