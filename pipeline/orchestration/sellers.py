"""Many sellers: ``sellers.toml``, and each seller's own workspace, sealed from the others.

Stage: none (what the Dagster code location and the bench read). Reads ``sellers.toml`` and
the files it names; never Dagster, so the registry is tested and used without it.

```toml
# sellers.toml: one [sellers.<id>] table per seller account
[orchestration]                  # optional: how Dagster runs them (defaults shown)
schedule = "0 * * * *"           # each seller's cron, unless its own table says otherwise
max_retries = 2                  # retries of a run that failed on an outside API (exit 4)
retry_delay = "60s"              # the first retry's wait; doubles per retry

[sellers.acme]
config = "acme/invsync.toml"     # relative to this file; or an inline [sellers.acme.settings]
data_dir = "acme/data"           # default: "<id>/data" beside this file
env_prefix = "ACME_"             # default: the id upper-cased, "-" as "_", then "_"
env_file = "acme/.env"           # optional: the seller's own .env (names without the prefix)
schedule = "*/30 * * * *"        # optional
budget = "15m"                   # optional: budgeted runs ([fetch] budget when omitted)
```

Isolation (docs/orchestration.md, "Each seller's secrets"): a seller's workspace sees only
the variables that carry its prefix (the prefix stripped: ``ACME_SP_API_REFRESH_TOKEN`` is its
``SP_API_REFRESH_TOKEN``) and its own ``env_file``, never the process environment as such, so
another seller's keys (or unprefixed ones) are not in it to be read. Its warehouse, token
store, logs and local history live in its own data directory. Two sellers may not share a
data directory (nor nest one in another), a prefix (nor one that begins another, which would
hand one seller the other's variables), an ``env_file`` or a history URL: the file is refused
whole, naming both sellers.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.config import (
    Settings,
    Workspace,
    describe_validation_error,
    dotenv_problem,
    load_settings,
    parse_budget,
    parse_duration,
    parse_settings,
)
from pipeline.errors import ConfigError

SELLERS_ENV = "INVSYNC_SELLERS"  # where the code location finds sellers.toml
DEFAULT_SELLERS_NAME = "sellers.toml"
_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_CRON = re.compile(r"^\S+( \S+){4}$")


class Orchestration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str = "0 * * * *"
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_delay: float = 60.0

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _cron(value)

    @field_validator("retry_delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> float:
        return parse_duration(value)


class SellerEntry(BaseModel):
    """One ``[sellers.<id>]`` table as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str | None = None
    settings: dict[str, Any] | None = None
    data_dir: str | None = None
    env_prefix: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*_$")
    env_file: str | None = None
    schedule: str | None = None
    budget: str | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else _cron(value)


def _cron(value: str) -> str:
    if not _CRON.match(value.strip()):
        raise ValueError(
            f"expected a cron expression of five fields such as '0 * * * *', got {value!r}"
        )
    return value.strip()


@dataclass(frozen=True)
class Seller:
    """One seller account: its settings, its data directory and where its secrets come from."""

    id: str
    settings: Settings
    config_path: Path | None
    data_dir: Path
    env_prefix: str
    env_file: Path | None
    schedule: str
    budget: float | None = None  # seconds of quota time; None: the settings' [fetch] budget
    budgeted: bool = False  # whether ``budget`` was given (``"all"`` gives None, a full pass)

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """This seller's variables only: its ``env_file``, then the process variables that carry
        its prefix (prefix stripped; the environment wins, as ``.env`` does for one seller)."""
        env: dict[str, str] = {}
        if self.env_file is not None and self.env_file.is_file():
            problem = dotenv_problem(self.env_file)
            if problem:
                raise ConfigError(f"Seller {self.id!r}: {problem}")
            env.update({k: v for k, v in dotenv_values(self.env_file).items() if v is not None})
        prefix = self.env_prefix
        env.update({k[len(prefix) :]: v for k, v in environ.items() if k.startswith(prefix)})
        return env

    def workspace(self, environ: Mapping[str, str]) -> Workspace:
        """The workspace a run of this seller uses: the same object ``invsync sync`` builds,
        with this seller's variables only."""
        return Workspace(
            settings=self.settings,
            config_path=self.config_path,
            data_dir=self.data_dir,
            env=self.environment(environ),
            env_prefix=self.env_prefix,
        )

    @property
    def history_url(self) -> str | None:
        """Where ``[history] url`` keeps this seller's history (with a closing "/"), if set."""
        url = getattr(getattr(self.settings, "history", None), "url", None)
        return url.rstrip("/") + "/" if url else None

    @property
    def sync_budget(self) -> float | str | None:
        """What :func:`pipeline.sync.run` takes as ``budget``."""
        return self.budget if self.budgeted else "settings"


@dataclass(frozen=True)
class Registry:
    """Every seller of one ``sellers.toml`` (or the built-in demo), in file order."""

    sellers: tuple[Seller, ...]
    orchestration: Orchestration = field(default_factory=Orchestration)
    source: str = DEFAULT_SELLERS_NAME

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.sellers]

    def seller(self, seller_id: str) -> Seller:
        for seller in self.sellers:
            if seller.id == seller_id:
                return seller
        raise ConfigError(
            f"Seller {seller_id!r} is not in {self.source}; add a [sellers.{seller_id}] table "
            "or use one of: " + (", ".join(self.ids) or "(none)") + "."
        )


def prefix_for(seller_id: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", seller_id.upper()) + "_"


def load_registry(path: Path) -> Registry:
    """Read and check ``sellers.toml``; a bad file is refused whole with a sentence."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist; write one [sellers.<id>] table per seller "
            f"(docs/orchestration.md) or unset {SELLERS_ENV} for the demo sellers."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid UTF-8 TOML ({exc}); fix it there.") from None
    return parse_registry(document, path.parent, str(path))


def parse_registry(document: Mapping[str, Any], base: Path, source: str) -> Registry:
    unknown = set(document) - {"sellers", "orchestration"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown table {sorted(unknown)[0]!r}; it holds [orchestration] and "
            "[sellers.<id>] tables (docs/orchestration.md)."
        )
    try:
        orchestration = Orchestration.model_validate(document.get("orchestration", {}))
    except ValidationError as exc:
        raise ConfigError(
            _located(describe_validation_error(exc, source), "orchestration")
        ) from None
    tables = document.get("sellers", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{source} names no seller; add a [sellers.<id>] table per seller.")
    sellers = [
        _seller(seller_id, table, base, source, orchestration)
        for seller_id, table in tables.items()
    ]
    _check_isolated(sellers, source)
    return Registry(tuple(sellers), orchestration, source)


def _located(message: str, where: str) -> str:
    return message.replace("key '", f"key '{where}.", 1)


def _seller(
    seller_id: str, table: Any, base: Path, source: str, orchestration: Orchestration
) -> Seller:
    if not re.match(_ID, seller_id):
        raise ConfigError(
            f"{source}: seller id {seller_id!r} must be 1 to 40 lower-case letters, digits, "
            "'-' or '_' (it names the seller's Dagster partition and folders)."
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: sellers.{seller_id} must be a table.")
    try:
        entry = SellerEntry.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(
            _located(describe_validation_error(exc, source), f"sellers.{seller_id}")
        ) from None
    if entry.config and entry.settings is not None:
        raise ConfigError(f"{source}: sellers.{seller_id} has both config and settings; keep one.")
    config_path = (base / entry.config) if entry.config else None
    if entry.settings is not None:
        settings = parse_settings(entry.settings, f"{source} [sellers.{seller_id}.settings]")
    else:
        settings = load_settings(config_path)  # None: the sandbox demo defaults
    budget, budgeted = None, False
    if entry.budget is not None:
        try:
            budget, budgeted = parse_budget(entry.budget), True
        except ValueError:
            raise ConfigError(
                f"{source}: sellers.{seller_id}.budget {entry.budget!r} is not 'all' or a "
                "duration above zero such as 15m."
            ) from None
    return Seller(
        id=seller_id,
        settings=settings,
        config_path=config_path,
        data_dir=base / (entry.data_dir or f"{seller_id}/data"),
        env_prefix=entry.env_prefix or prefix_for(seller_id),
        env_file=(base / entry.env_file) if entry.env_file else None,
        schedule=entry.schedule or orchestration.schedule,
        budget=budget,
        budgeted=budgeted,
    )


def _check_isolated(sellers: list[Seller], source: str) -> None:
    """No two sellers share what keeps them apart (see the module docstring)."""
    for index, one in enumerate(sellers):
        for other in sellers[index + 1 :]:
            both = f"sellers {one.id!r} and {other.id!r}"
            a, b = one.data_dir.resolve(), other.data_dir.resolve()
            if a == b or a.is_relative_to(b) or b.is_relative_to(a):
                raise ConfigError(
                    f"{source}: {both} share the data directory {a if a == b else min(a, b)}; "
                    "give each its own data_dir (its warehouse, tokens and history)."
                )
            p, q = sorted((one.env_prefix, other.env_prefix), key=len)
            if q.startswith(p):
                raise ConfigError(
                    f"{source}: {both} have env prefixes {p!r} and {q!r}: every variable of "
                    f"one would also be read by the other; give each a prefix of its own."
                )
            if (
                one.env_file
                and other.env_file
                and one.env_file.resolve() == other.env_file.resolve()
            ):
                raise ConfigError(
                    f"{source}: {both} read the same env_file {one.env_file}; give each its own."
                )
            h, k = sorted((one.history_url or "", other.history_url or ""), key=len)
            if h and k.startswith(h):
                raise ConfigError(
                    f"{source}: {both} keep their history at {h} and {k}: one would read the "
                    "other's; give each a prefix of its own."
                )


def demo_registry(
    root: Path,
    count: int = 3,
    *,
    n_asins: int = 300,
    time_scale: float = 50.0,
    first_seed: int = 101,
) -> Registry:
    """``count`` sandbox demo sellers under ``root`` (``demo-1``, ``demo-2``, …), each with
    its own world (seed), its own in-process sandbox and quotas, and its own data directory:
    what ``dagster dev`` serves when no ``sellers.toml`` is found."""
    document = {
        "sellers": {
            f"demo-{i}": {
                "data_dir": f"demo-{i}/data",
                "settings": {
                    "mode": "sandbox",
                    "sandbox": {
                        "seed": first_seed + i,
                        "n_asins": n_asins,
                        "time_scale": time_scale,
                    },
                },
            }
            for i in range(1, count + 1)
        }
    }
    return parse_registry(document, root, f"the demo sellers under {root}")


def find_registry(environ: Mapping[str, str], cwd: Path | None = None) -> Registry:
    """``$INVSYNC_SELLERS``, else ``./sellers.toml``, else the demo sellers under
    ``./data/sellers`` (as ``make sync`` runs the demo without a configuration)."""
    here = cwd or Path.cwd()
    if environ.get(SELLERS_ENV):
        return load_registry(Path(environ[SELLERS_ENV]))
    default = here / DEFAULT_SELLERS_NAME
    if default.is_file():
        return load_registry(default)
    return demo_registry(here / "data" / "sellers")
