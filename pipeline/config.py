"""Settings: ``invsync.toml`` plus the environment (and ``.env``). Nothing is read at import.

Where things come from, first match wins:

* the configuration file: ``--config``, else ``INVSYNC_CONFIG``, else ``./invsync.toml``;
  with none of them invsync runs the sandbox demo on the built-in demo accounts;
* the data directory: ``--data-dir``, else ``INVSYNC_DATA_DIR``, else ``./data``;
* secrets: the process environment, else a ``.env`` file in the working directory.
  Secrets are never stored in :class:`Settings`; the settings only name the
  variables, so printing or hashing the settings can never leak one.

Every key is documented in docs/configuration.md. An unknown, missing or malformed
key raises :class:`~pipeline.errors.ConfigError` naming the key and the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError, MissingCredentialError

CONFIG_ENV = "INVSYNC_CONFIG"
DATA_DIR_ENV = "INVSYNC_DATA_DIR"
DEFAULT_CONFIG_NAME = "invsync.toml"


@dataclass(frozen=True)
class Marketplace:
    """What python-amazon-sp-api needs to reach one marketplace (duck-typed by the library)."""

    code: str
    marketplace_id: str
    endpoint: str
    region: str


MARKETPLACES: dict[str, Marketplace] = {
    "JP": Marketplace(
        "JP", "A1VC38T7YXB528", "https://sellingpartnerapi-fe.amazon.com", "us-west-2"
    ),
}
LWA_DEFAULT_ENDPOINT = "https://api.amazon.com"

# Secrets by name. Per-shop BASE refresh tokens are named by each account's refresh_token_env.
SPAPI_SECRETS = ("SP_API_REFRESH_TOKEN", "LWA_APP_ID", "LWA_CLIENT_SECRET")
BASE_SECRETS = ("BASE_CLIENT_ID", "BASE_CLIENT_SECRET")
EBAY_SECRETS = ("EBAY_CLIENT_ID", "EBAY_CLIENT_SECRET", "EBAY_REFRESH_TOKEN")
# Endpoint overrides (not secrets): the same code reaches Amazon, BASE, eBay or the sandbox.
ENDPOINT_VARS = ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL", "EBAY_API_URL")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '24h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"expected a duration such as '90s', '30m', '24h' or '7d', got {value!r}")


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OfferPolicy(_Section):
    """Which Amazon offers count as a source (``item_offers`` only)."""

    require_prime: bool = False
    require_fba: bool = False
    availability: list[Literal["NOW", "FUTURE_WITHOUT_DATE", "FUTURE_WITH_DATE"]] = ["NOW"]
    max_shipping_hours: int | None = Field(default=72, ge=0)
    condition: Literal["New", "Used", "Collectible", "Refurbished", "Club"] = "New"


class AmazonSettings(_Section):
    marketplace: Literal["JP"] = "JP"
    operation: Literal["item_offers", "competitive_pricing"] = "item_offers"
    offer_policy: OfferPolicy = OfferPolicy()
    batch_size: int = Field(default=20, ge=1, le=20)
    max_fallback_age: Seconds = 24 * 3600.0  # seconds
    endpoint: str | None = None  # overrides the marketplace's regional endpoint
    lwa_endpoint: str | None = None

    @property
    def market(self) -> Marketplace:
        return MARKETPLACES[self.marketplace]


class Account(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    platform: Literal["base", "ebay"]
    refresh_token_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    # How a pulled listing names its ASIN: BASE item field, or a regex over the eBay SKU.
    asin_field: str = "identifier"
    sku_pattern: str = r"(?P<asin>B[0-9A-Z]{9}|[0-9]{9}[0-9X])"


class SandboxSettings(_Section):
    time_scale: float = Field(default=100.0, gt=0)
    seed: int = 42


DEMO_ACCOUNTS: tuple[Account, ...] = (
    Account(id="shop1", platform="base", refresh_token_env="BASE_SHOP1_REFRESH_TOKEN"),
    Account(id="shop2", platform="base", refresh_token_env="BASE_SHOP2_REFRESH_TOKEN"),
    Account(id="ebay-main", platform="ebay"),
)


class Settings(_Section):
    mode: Literal["sandbox", "live"] = "sandbox"
    amazon: AmazonSettings = AmazonSettings()
    accounts: list[Account] = Field(default_factory=lambda: list(DEMO_ACCOUNTS))
    sandbox: SandboxSettings = SandboxSettings()

    @model_validator(mode="after")
    def _accounts_are_unique(self) -> Settings:
        seen: set[str] = set()
        for account in self.accounts:
            if account.id in seen:
                raise ValueError(f"account id {account.id!r} is declared twice")
            seen.add(account.id)
        for account in self.accounts:
            if account.platform == "base" and not account.refresh_token_env:
                raise ValueError(
                    f"BASE account {account.id!r} needs refresh_token_env "
                    "(the variable holding its refresh token)"
                )
        return self

    def account(self, account_id: str) -> Account:
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise ConfigError(
            f"Account {account_id!r} is not declared in the configuration; "
            "add an [[accounts]] entry or use one of: "
            + ", ".join(a.id for a in self.accounts)
            + "."
        )

    def accounts_on(self, platform: str) -> list[Account]:
        return [a for a in self.accounts if a.platform == platform]

    def required_secrets(self) -> list[str]:
        """Every variable live mode needs for the accounts configured."""
        names = list(SPAPI_SECRETS)
        if self.accounts_on("base"):
            names += BASE_SECRETS
            names += [a.refresh_token_env for a in self.accounts_on("base") if a.refresh_token_env]
        if self.accounts_on("ebay"):
            names += EBAY_SECRETS
        return names

    def digest(self) -> str:
        """A short hash of the effective settings, recorded with each run."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Workspace:
    """Everything a command needs: settings, where they came from, data dir, environment."""

    settings: Settings
    config_path: Path | None
    data_dir: Path
    env: Mapping[str, str] = field(repr=False)  # process env over .env; holds secrets

    @property
    def is_sandbox(self) -> bool:
        return self.settings.mode == "sandbox"

    def secret(self, name: str) -> str:
        """A secret from the environment or .env; in sandbox mode the sandbox's demo
        credential stands in for a missing one. Live mode never falls back."""
        value = self.env.get(name, "")
        if not value and self.is_sandbox:
            from pipeline.sandbox.credentials import DEMO_ENV

            value = DEMO_ENV.get(name, "")
        if not value:
            raise MissingCredentialError(
                f"{name} is not set; put it in the environment or in .env (see .env.example)."
            )
        return value

    def endpoint(self, name: str) -> str | None:
        """An endpoint override (``SP_API_ENDPOINT``, ``LWA_ENDPOINT``, ``BASE_API_URL``,
        ``EBAY_API_URL``) from the environment, else None (the platform default)."""
        value = self.env.get(name, "").strip()
        return value.rstrip("/") or None

    def with_env(self, extra: Mapping[str, str]) -> Workspace:
        """The same workspace with more variables (e.g. an in-process sandbox's endpoints)."""
        return Workspace(
            settings=self.settings,
            config_path=self.config_path,
            data_dir=self.data_dir,
            env={**self.env, **extra},
        )

    def require_live_credentials(self) -> None:
        missing = [n for n in self.settings.required_secrets() if not self.env.get(n)]
        if missing:
            where = self.config_path or DEFAULT_CONFIG_NAME
            raise MissingCredentialError(
                f"{where} asks for live mode but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set; add "
                f"{'it' if len(missing) == 1 else 'them'} to the environment or .env "
                '(see .env.example), or set mode = "sandbox".'
            )


def read_environment(
    environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
) -> dict[str, str]:
    """The process environment over ``.env`` (the environment wins)."""
    environ = os.environ if environ is None else environ
    path = Path(".env") if dotenv_path is None else dotenv_path
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(environ)
    return merged


def resolve_config_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"Configuration file {explicit} does not exist; check --config.")
        return explicit
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(
                f"Configuration file {path} (from {CONFIG_ENV}) does not exist; "
                f"fix or unset {CONFIG_ENV}."
            )
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def resolve_data_dir(explicit: Path | None, env: Mapping[str, str]) -> Path:
    if explicit is not None:
        return explicit
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV])
    return Path("data")


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One sentence for the first problem of a pydantic error, naming key and file."""
    errors = exc.errors()
    first = errors[0]
    key = _key_path(tuple(first["loc"]))
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    kind = first["type"]
    if kind == "extra_forbidden":
        what = f"unknown key '{key}'"
    elif kind == "missing":
        what = f"missing key '{key}'"
    elif key:
        message = str(first["msg"]).removeprefix("Value error, ")
        what = f"key '{key}' is malformed: {message}"
    else:
        what = str(first["msg"]).removeprefix("Value error, ")
    return f"{source}: {what}{more}; see docs/configuration.md for the accepted keys."


def parse_settings(document: Mapping[str, Any], source: str = DEFAULT_CONFIG_NAME) -> Settings:
    try:
        return Settings.model_validate(dict(document))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def load_settings(path: Path | None) -> Settings:
    """Read and validate one TOML file; ``None`` gives the sandbox demo defaults."""
    if path is None:
        return Settings()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the syntax there.") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror}); check the path.") from None
    return parse_settings(document, str(path))


def open_workspace(
    config: Path | None = None,
    data_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> Workspace:
    env = read_environment(environ, dotenv_path)
    path = resolve_config_path(config, env)
    settings = load_settings(path)
    return Workspace(
        settings=settings, config_path=path, data_dir=resolve_data_dir(data_dir, env), env=env
    )


def describe_settings(ws: Workspace) -> dict[str, Any]:
    """The effective configuration for ``config check``: settings plus which variables are set.

    Secret values are never included, only ``"set"`` or ``"not set"``.
    """
    names = list(dict.fromkeys([*SPAPI_SECRETS, *BASE_SECRETS, *EBAY_SECRETS]))
    names += [a.refresh_token_env for a in ws.settings.accounts if a.refresh_token_env]
    return {
        "config_file": str(ws.config_path) if ws.config_path else "(none: sandbox demo defaults)",
        "data_dir": str(ws.data_dir),
        "settings": ws.settings.model_dump(mode="json"),
        "secrets": {n: ("set" if ws.env.get(n) else "not set") for n in dict.fromkeys(names)},
        "endpoints": {n: ws.env.get(n, "(default)") for n in ENDPOINT_VARS},
    }
