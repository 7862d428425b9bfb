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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.display import DEFAULT_TIMEZONE, zone_problem
from pipeline.errors import ConfigError, MissingCredentialError
from pipeline.platforms import Platform
from pipeline.redact import remember, secret_names

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
# Not secret, but live BASE needs it: the token endpoint wants the app's redirect_uri on refresh.
BASE_REDIRECT_VAR = "BASE_REDIRECT_URI"
EBAY_SECRETS = ("EBAY_CLIENT_ID", "EBAY_CLIENT_SECRET", "EBAY_REFRESH_TOKEN")
# The [history] store's access key pair (pipeline.history_store), secret when a url is set.
HISTORY_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
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
    # spread a fetch over every operation answering with the same facts, each paced at its
    # own quota (pipeline/pool.py): item_offers adds getItemOffers to getItemOffersBatch
    pool: bool = True
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
    platform: Platform
    refresh_token_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    # How a pulled listing names its ASIN: BASE item field, or a regex over the eBay SKU.
    asin_field: str = "identifier"
    sku_pattern: str = r"(?P<asin>B[0-9A-Z]{9}|[0-9]{9}[0-9X])"

    @field_validator("sku_pattern")
    @classmethod
    def _sku_pattern_compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"is not a valid regular expression ({exc}); write it in Python's re syntax, "
                "e.g. '(?P<asin>B[0-9A-Z]{9})'"
            ) from None
        if compiled.groups and "asin" not in compiled.groupindex:
            raise ValueError(
                "has groups but none named 'asin'; name the group that holds the ASIN (?P<asin>...)"
            )
        return value


class SandboxSettings(_Section):
    time_scale: float = Field(default=50.0, gt=0)
    seed: int = 42
    # ASINs in the sandbox's catalogue; None keeps the full-size demo (about 1,900 ASINs).
    # Tests use a few hundred for fast end-to-end runs.
    n_asins: int | None = Field(default=None, ge=20, le=200_000)


class LoadSettings(_Section):
    """How load and listings pull talk to BASE and eBay (issue 6; docs/load.md)."""

    base_calls_per_hour: int = Field(default=4900, ge=1, le=5000)  # BASE allows 5,000/h/shop
    base_calls_per_day: int = Field(default=99_000, ge=1, le=100_000)  # BASE allows 100,000/day
    ebay_revisions_per_day: int = Field(default=250, ge=1, le=250)  # per listing, eBay's cap
    ebay_batch_size: int = Field(default=25, ge=1, le=25)  # SKUs per bulk_update_price_quantity
    trading_batch_size: int = Field(default=4, ge=1, le=4)  # listings per ReviseInventoryStatus
    http_timeout: Seconds = 30.0  # seconds, connect and read, every call
    max_attempts: int = Field(default=5, ge=1, le=20)  # per call, for 429, 5xx and no answer
    backoff_base: Seconds = 1.0  # seconds, first retry wait; doubles per attempt
    backoff_max: Seconds = 60.0  # seconds, longest single wait (Retry-After is capped too)


# --- pricing, FX and guardrails (issue 5; docs/pricing.md) ------------------------------


def parse_exact_decimal(value: Any) -> Decimal:
    """A rate or a factor (``1.4``, ``"0.066"``, ``30``) → an exact ``Decimal``.

    A TOML float goes through ``str()``, whose shortest repr is what was written
    (``1.4`` stays 1.4, never 1.399999…). At most 4 decimal places: pricing keeps
    rates as integer basis points (1/10,000) so no binary float ever touches money.
    """
    if isinstance(value, bool):
        raise ValueError("expected a number such as 1.4 or '0.066'")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"expected a number such as 1.4 or '0.066', got {value!r}") from None
    else:
        raise ValueError(f"expected a number such as 1.4 or '0.066', got {value!r}")
    if not number.is_finite() or number < 0:
        raise ValueError("expected a finite number ≥ 0")
    if number != number.quantize(Decimal("0.0001")):
        raise ValueError(f"{number} has more than 4 decimal places")
    # Normalised so 1.40 and 1.4 hash alike; integers keep plain digits (30, not 3E+1).
    return (
        number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
    )


ExactDecimal = Annotated[Decimal, BeforeValidator(parse_exact_decimal)]


# Amounts in a price rule (yen or cents) and its restock quantity are bounded like imported
# listings (MAX_PRICE_JPY = MAX_PRICE_CENTS = 10^8 and MAX_QUANTITY = 10^6 in
# pipeline/schemas.py, which a unit test keeps equal): the pricing SQL adds them to costs
# and multiplies them by 10,000 basis points in BIGINT, so an unbounded shipping_jpy or
# add_jpy (TOML allows 9.2 × 10^18) would stop `transform` for every listing. A markup
# multiplier above 100 (×100 the cost) is no rule anyone means.
MAX_RULE_AMOUNT = 100_000_000
MAX_RULE_QUANTITY = 1_000_000
MAX_MULTIPLIER = Decimal(100)

# The pricing SQL multiplies a listing's price (at most 10^8 minor units: MAX_PRICE_JPY and
# MAX_PRICE_CENTS in pipeline/schemas.py) by a percentage in basis points in BIGINT; 10,000 %
# (10^6 bp) keeps that product at 10^14, far inside BIGINT, and is above any sensible limit.
MAX_PERCENT = Decimal(10_000)


def parse_percent(value: Any) -> Decimal:
    """A percentage (``30``, ``1.25``) with at most 2 decimal places, so that as a share it
    still fits in whole basis points, and at most :data:`MAX_PERCENT`."""
    number = parse_exact_decimal(value)
    if number != number.quantize(Decimal("0.01")):
        raise ValueError(f"{number} % has more than 2 decimal places")
    if number > MAX_PERCENT:
        raise ValueError(f"{number} % is above {MAX_PERCENT:,} %, the most invsync accepts")
    return number


Percent = Annotated[Decimal, BeforeValidator(parse_percent)]


class MarkupBand(_Section):
    """One tier of a markup rule: the Amazon cost up to ``up_to_jpy`` (inclusive; omitted on
    the last band) is multiplied by ``multiplier`` and ``add_jpy`` is added."""

    up_to_jpy: int | None = Field(default=None, gt=0)  # JPY, inclusive upper bound on cost
    multiplier: ExactDecimal = Field(le=MAX_MULTIPLIER)
    add_jpy: int = Field(default=0, ge=0, le=MAX_RULE_AMOUNT)  # JPY


# The replaced system's tiers: ≤1,000 ×1.4, ≤5,000 ×1.3, ≤10,000 ×1.25, above ×1.2.
LEGACY_MARKUP_BANDS: tuple[MarkupBand, ...] = (
    MarkupBand(up_to_jpy=1_000, multiplier=Decimal("1.4")),
    MarkupBand(up_to_jpy=5_000, multiplier=Decimal("1.3")),
    MarkupBand(up_to_jpy=10_000, multiplier=Decimal("1.25")),
    MarkupBand(multiplier=Decimal("1.2")),
)


class PriceRule(_Section):
    """How one platform (or one account) turns an Amazon cost into a price and a stock.

    Prices, ``min_change`` and ``min_profit`` are in the platform's money unit: integer
    yen on BASE, integer US cents on eBay. Costs (``*_jpy``) are yen. Rates are decimals
    (0.066 = 6.6 %); ``*_pct`` keys are percent (1 = 1 %).
    """

    method: Literal["markup", "cost_plus"] = "markup"
    bands: list[MarkupBand] = Field(default_factory=lambda: list(LEGACY_MARKUP_BANDS))
    shipping_jpy: int = Field(default=0, ge=0, le=MAX_RULE_AMOUNT)  # JPY per sale, a cost
    packing_jpy: int = Field(default=0, ge=0, le=MAX_RULE_AMOUNT)  # JPY per sale (fixed fees too)
    fee_rate: ExactDecimal = Decimal(0)  # platform + payment fees, share of the price
    duty_rate: ExactDecimal = Decimal(0)  # share of the price
    margin_rate: ExactDecimal = Decimal(0)  # cost_plus only: the profit share of the price
    rounding: Literal["none", "up_to_unit", "up_to_ending"] = "up_to_unit"
    round_unit: int = Field(default=10, gt=0, le=MAX_RULE_AMOUNT)  # multiple, or modulus
    round_ending: int = Field(default=0, ge=0)  # up_to_ending: e.g. 99 with round_unit 100
    min_price: int | None = Field(default=None, gt=0, le=MAX_RULE_AMOUNT)
    max_price: int | None = Field(default=None, gt=0, le=MAX_RULE_AMOUNT)
    min_change: int = Field(default=0, ge=0, le=MAX_RULE_AMOUNT)  # a smaller move is not pushed
    min_change_pct: Percent = Decimal(0)  # percent of the old price, likewise
    min_profit: int = Field(default=0, ge=-MAX_RULE_AMOUNT, le=MAX_RULE_AMOUNT)  # less: held
    restock_quantity: int = Field(default=1, ge=1, le=MAX_RULE_QUANTITY)
    # BASE: stock_zero | hide. eBay: quantity_zero (sent only while the account's
    # Out-of-Stock Control keeps a listing at 0 alive) | end_listing (quantity 0 is sent even
    # when it ends the listing: ending is only ever this explicit choice).
    out_of_stock_action: Literal["stock_zero", "hide", "quantity_zero", "end_listing"] = (
        "stock_zero"
    )

    @model_validator(mode="after")
    def _rule_is_consistent(self) -> PriceRule:
        if self.method == "markup":
            if not self.bands:
                raise ValueError("a markup rule needs at least one band")
            bounds = [band.up_to_jpy for band in self.bands]
            if bounds[-1] is not None or None in bounds[:-1]:
                raise ValueError("only the last markup band omits up_to_jpy (it takes the rest)")
            limits = [b for b in bounds if b is not None]
            if limits != sorted(set(limits)):
                raise ValueError("markup bands must rise: each up_to_jpy above the one before")
            if any(band.multiplier <= 0 for band in self.bands):
                raise ValueError("a markup multiplier must be above 0")
        if self.fee_rate + self.duty_rate + self.margin_rate >= 1:
            raise ValueError("fee_rate + duty_rate + margin_rate must stay below 1")
        if self.rounding == "up_to_ending" and self.round_ending >= self.round_unit:
            raise ValueError("round_ending must be below round_unit (e.g. 99 with 100)")
        if self.min_price and self.max_price and self.min_price > self.max_price:
            raise ValueError("min_price is above max_price")
        return self


def _default_ebay_rule() -> PriceRule:
    return PriceRule(
        method="cost_plus",
        shipping_jpy=2_000,
        packing_jpy=200,
        fee_rate=Decimal("0.1325"),
        margin_rate=Decimal("0.15"),
        rounding="up_to_ending",
        round_unit=100,
        round_ending=99,
        min_price=99,
        min_change_pct=Decimal(1),
        min_profit=100,
        out_of_stock_action="quantity_zero",
    )


# The out-of-stock actions each platform can take (docs/configuration.md).
OUT_OF_STOCK_ACTIONS: dict[str, tuple[str, ...]] = {
    "base": ("stock_zero", "hide"),
    "ebay": ("quantity_zero", "end_listing"),
}


def _action_fits(where: str, platform: str, rule: PriceRule) -> None:
    allowed = OUT_OF_STOCK_ACTIONS[platform]
    if rule.out_of_stock_action not in allowed:
        raise ValueError(
            f"{where}.out_of_stock_action must be " + " or ".join(f"'{a}'" for a in allowed)
        )


class PricingSettings(_Section):
    """``[pricing.base]``, ``[pricing.ebay]`` and per-account overrides in
    ``[pricing.accounts.<id>]`` (any key of a rule; the rest comes from the platform)."""

    base: PriceRule = Field(default_factory=lambda: PriceRule(fee_rate=Decimal("0.066")))
    ebay: PriceRule = Field(default_factory=_default_ebay_rule)
    accounts: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _keys_override_platform_defaults(cls, data: Any) -> Any:
        """``[pricing.ebay] min_profit = 200`` changes that key only; the rest of the eBay
        defaults (cost-plus, .99 endings, …) stay."""
        if not isinstance(data, dict):
            return data
        defaults = {"base": PriceRule(fee_rate=Decimal("0.066")), "ebay": _default_ebay_rule()}
        merged = dict(data)
        for platform, default in defaults.items():
            if isinstance(data.get(platform), dict):
                merged[platform] = {**default.model_dump(), **data[platform]}
        return merged

    @model_validator(mode="after")
    def _platform_actions_fit(self) -> PricingSettings:
        _action_fits("pricing.base", "base", self.base)
        _action_fits("pricing.ebay", "ebay", self.ebay)
        return self

    def rule_for(self, account: Account) -> PriceRule:
        """The platform's rule with the account's overrides applied."""
        platform_rule = self.base if account.platform == "base" else self.ebay
        override = self.accounts.get(account.id)
        if not override:
            return platform_rule
        merged = {**platform_rule.model_dump(), **override}
        try:
            rule = PriceRule.model_validate(merged)
            _action_fits(f"pricing.accounts.{account.id}", account.platform, rule)
            return rule
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            what = (
                f"unknown key '{key}'"
                if first["type"] == "extra_forbidden"
                else f"'{key}' " + str(first["msg"]).removeprefix("Value error, ")
            )
            raise ValueError(f"pricing.accounts.{account.id}: {what}") from None


class FxSettings(_Section):
    """The JPY→USD rate for eBay: ``jpy_per_usd`` with ``as_of``, or a CSV ``file`` with
    columns ``as_of,jpy_per_usd`` (the newest row counts). Older than ``max_age`` stops
    eBay pricing. With neither, the sandbox demo uses 150 JPY/USD as of the run."""

    jpy_per_usd: ExactDecimal | None = None
    as_of: datetime | date | None = None
    file: Path | None = None
    max_age: Seconds = 3 * 86400.0  # seconds

    @model_validator(mode="after")
    def _one_source(self) -> FxSettings:
        if self.file is not None and self.jpy_per_usd is not None:
            raise ValueError("give fx.jpy_per_usd or fx.file, not both")
        if self.jpy_per_usd is not None and self.as_of is None:
            raise ValueError("fx.jpy_per_usd needs fx.as_of (the date the rate was taken)")
        if self.jpy_per_usd is not None and self.jpy_per_usd <= 0:
            raise ValueError("fx.jpy_per_usd must be above 0")
        return self


def parse_budget(value: Any) -> float | None:
    """``"all"`` (a full pass: every listed ASIN) → None, else a duration in seconds."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    if value is None:
        return None
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("a fetch budget must be above 0 seconds, or 'all'")
    return seconds


Budget = Annotated[float | None, BeforeValidator(parse_budget)]


class FetchSettings(_Section):
    """``[fetch]``: how much of the listed ASINs one run observes (docs/fetch.md).

    ``budget`` is quota time: ``"all"`` (default) fetches every listed ASIN, as ``make
    sync`` does; a duration such as ``"15m"`` fetches, most urgent first, the ASINs the
    pooled quota answers in that time, every ASIN still within
    ``guardrails.max_source_age``.
    """

    budget: Budget = None


class GuardrailSettings(_Section):
    """The review gate (docs/review.md): row holds and the per-platform breaker."""

    max_price_change_pct: Percent = Decimal(30)  # percent of the old price
    max_source_age: Seconds = 12 * 3600.0  # seconds since the Amazon observation
    max_out_of_stock_ratio: ExactDecimal = Decimal("0.5")  # of a platform's listings
    max_api_error_ratio: ExactDecimal = Decimal("0.2")  # api_error + unknown, same base


# ``${NAME}`` in a [notify] URL: the secret part, filled in from the environment or .env.
NOTIFY_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@?#]*?:([^/@?#]*)@")


NotifyKind = Literal["held", "failed"]
NOTIFY_KINDS: tuple[NotifyKind, ...] = ("held", "failed")


class NotifySettings(_Section):
    """``[notify]``: an alert per held or failed sync, through apprise (docs/configuration.md).

    ``urls`` are apprise URLs whose secret parts are ``${VAR}`` placeholders, resolved from
    the environment or ``.env`` when a message is sent; the file itself holds no secret.
    """

    urls: list[str] = Field(default_factory=list)
    on: list[NotifyKind] = Field(default_factory=lambda: list(NOTIFY_KINDS))

    @model_validator(mode="after")
    def _no_secret_in_the_file(self) -> NotifySettings:
        for index, url in enumerate(self.urls):
            if "://" not in url:
                raise ValueError(
                    f"notify.urls[{index}] is not an apprise URL such as "
                    "'json://host/path' or 'mailtos://user:${SMTP_PASSWORD}@host'"
                )
            password = _URL_PASSWORD.match(url)
            if (
                password
                and password.group(1)
                and not NOTIFY_PLACEHOLDER.fullmatch(password.group(1))
            ):
                raise ValueError(
                    f"notify.urls[{index}] has a password written into the file; give it as "
                    "a ${VARIABLE} placeholder and put the value in the environment or .env"
                )
        return self


class DisplaySettings(_Section):
    """``[display]``: how times are shown to people (pipeline.display). Every stored time
    stays UTC; ``timezone`` (an IANA name) is only the zone the terminal, the review page,
    the alerts and the history chart show them in, with the zone named."""

    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        problem = zone_problem(value)
        if problem:
            raise ValueError(problem)
        return value


# An S3 bucket name (3-63 lower-case letters, digits, dots, hyphens), then an optional prefix of
# plain characters: the views embed the URL in SQL and DuckDB globs below it, so no quote,
# space or glob character may be part of it
_HISTORY_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9._=/-]*)?$")


class HistorySettings(_Section):
    """``[history]``: where the Parquet history's system of record lives (docs/configuration.md).

    ``url`` None keeps it in the data directory only; ``"s3://bucket/prefix"`` mirrors it to
    that S3-compatible store at every publish and points the analysts' views there
    (:mod:`pipeline.history_store`). Credentials come from the environment or ``.env``."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("s3://"):
            raise ValueError(
                f"{value!r} is not an s3:// URL; write 's3://bucket/prefix' (any S3-compatible "
                "store: its endpoint goes in AWS_ENDPOINT_URL), or leave the key out to keep "
                "the history local"
            )
        url = value.rstrip("/")
        if not _HISTORY_URL.match(url) or "//" in url.removeprefix("s3://"):
            raise ValueError(
                f"{value!r} does not name a bucket and prefix invsync can use; write "
                "'s3://bucket/prefix' with a bucket of lower-case letters, digits, dots and "
                "hyphens and a prefix of letters, digits and . _ = - /"
            )
        return url


DEMO_ACCOUNTS: tuple[Account, ...] = (
    Account(id="shop1", platform="base", refresh_token_env="BASE_SHOP1_REFRESH_TOKEN"),
    Account(id="shop2", platform="base", refresh_token_env="BASE_SHOP2_REFRESH_TOKEN"),
    Account(id="ebay-main", platform="ebay"),
)


class Settings(_Section):
    mode: Literal["sandbox", "live"] = "sandbox"
    amazon: AmazonSettings = AmazonSettings()
    fetch: FetchSettings = FetchSettings()
    accounts: list[Account] = Field(default_factory=lambda: list(DEMO_ACCOUNTS))
    sandbox: SandboxSettings = SandboxSettings()
    load: LoadSettings = LoadSettings()
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    fx: FxSettings = FxSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    notify: NotifySettings = NotifySettings()
    display: DisplaySettings = DisplaySettings()
    history: HistorySettings = HistorySettings()

    @model_validator(mode="after")
    def _pricing_overrides_name_accounts(self) -> Settings:
        for account_id in self.pricing.accounts:
            account = next((a for a in self.accounts if a.id == account_id), None)
            if account is None:
                raise ValueError(f"pricing.accounts.{account_id} names no declared account")
            self.pricing.rule_for(account)  # a bad override fails here, naming the account
        return self

    @model_validator(mode="after")
    def _accounts_are_unique(self) -> Settings:
        seen: set[str] = set()
        for account in self.accounts:
            if account.id in seen:
                raise ValueError(f"account id {account.id!r} is declared twice")
            seen.add(account.id)
        shared: dict[str, str] = {}
        for account in self.accounts:
            if account.platform != "base" or not account.refresh_token_env:
                continue
            first = shared.setdefault(account.refresh_token_env, account.id)
            if first != account.id:
                # BASE rotates a refresh token on use: two shops on one token lock each other out
                raise ValueError(
                    f"BASE accounts {first!r} and {account.id!r} both name refresh_token_env "
                    f"{account.refresh_token_env!r}; each shop needs its own variable"
                )
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

    def required_secrets(self, stored: Collection[str] = ()) -> list[str]:
        """Every variable live mode needs for the accounts configured. ``stored`` names the
        accounts whose refresh token the token store holds (``invsync auth``): their
        refresh-token variable is not needed."""
        names = list(SPAPI_SECRETS)

        def tokens(platform: str) -> list[str]:
            return [
                a.refresh_token_env or "EBAY_REFRESH_TOKEN"
                for a in self.accounts_on(platform)
                if a.id not in stored
            ]

        if self.accounts_on("base"):
            names += [*BASE_SECRETS, BASE_REDIRECT_VAR, *tokens("base")]
        if self.accounts_on("ebay"):
            names += [n for n in EBAY_SECRETS if n != "EBAY_REFRESH_TOKEN"] + tokens("ebay")
        return list(dict.fromkeys(names))

    def secret_variables(self) -> list[str]:
        """Every variable this configuration names that holds a secret, whether or not
        live mode needs it (``refresh_token_env`` of every account included)."""
        names = [*SPAPI_SECRETS, *BASE_SECRETS, *EBAY_SECRETS]
        names += [a.refresh_token_env for a in self.accounts if a.refresh_token_env]
        if self.history.url:  # the store's access key pair ([history]; pipeline.history_store)
            names += [*HISTORY_SECRETS]
        return list(dict.fromkeys(names))

    def digest(self) -> str:
        """A short hash of the effective settings, recorded with each run: the settings that
        decide what a run does, so ``[display]`` (how times are shown) and ``[history]`` (where
        the files are kept) are left out."""
        decisive = self.model_dump_json(exclude={"display", "history"})
        return hashlib.sha256(decisive.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Workspace:
    """Everything a command needs: settings, where they came from, data dir, environment."""

    settings: Settings
    config_path: Path | None
    data_dir: Path
    env: Mapping[str, str] = field(repr=False)  # process env over .env; holds secrets
    # where the variables come from, for messages: one seller's prefix under Dagster
    # (pipeline/orchestration: ACME_SP_API_REFRESH_TOKEN is read as SP_API_REFRESH_TOKEN)
    env_prefix: str = ""

    def __post_init__(self) -> None:
        # Every secret this workspace can hand out is held for redaction from the start,
        # the refresh-token variables the accounts name included, whatever their names.
        names = secret_names(self.env, also=self.settings.secret_variables())
        remember(*(self.env.get(name, "") for name in names))

    @property
    def is_sandbox(self) -> bool:
        return self.settings.mode == "sandbox"

    def secret(self, name: str) -> str:
        """A secret from the environment or .env. In sandbox mode ``pipeline.apis`` puts the
        sandbox's demo credentials under the environment; live mode never falls back."""
        value = self.env.get(name, "")
        if not value:
            raise MissingCredentialError(
                f"{self.env_prefix}{name} is not set; put it in the environment or in .env "
                "(see .env.example)."
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
            env_prefix=self.env_prefix,
        )

    def require_live_credentials(self) -> None:
        """One sentence naming every missing variable; an account whose refresh token is in
        the token store (``invsync auth``) needs no refresh-token variable."""
        from pipeline.tokens import RefreshTokenStore, store_path, token_key

        store = RefreshTokenStore(store_path(self.data_dir))
        stored = [a.id for a in self.settings.accounts if store.holds(token_key(a.platform, a.id))]
        missing = [n for n in self.settings.required_secrets(stored) if not self.env.get(n)]
        missing = [f"{self.env_prefix}{n}" for n in missing]
        if missing:
            where = self.config_path or DEFAULT_CONFIG_NAME
            raise MissingCredentialError(
                f"{where} asks for live mode but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set; add "
                f"{'it' if len(missing) == 1 else 'them'} to the environment or .env "
                '(see .env.example; `invsync auth` stores refresh tokens), or set mode = "sandbox".'
            )


def read_environment(
    environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
) -> dict[str, str]:
    """The process environment over ``.env`` (the environment wins)."""
    environ = os.environ if environ is None else environ
    path = Path(".env") if dotenv_path is None else dotenv_path
    merged: dict[str, str] = {}
    if path.is_file() and dotenv_problem(path) is None:  # open_workspace reports a bad .env
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(environ)
    return merged


def dotenv_problem(path: Path) -> str | None:
    """Why ``.env`` cannot be read as UTF-8 text, as one sentence, or None. Never raises:
    the CLI's error path reads the environment again to mask secrets."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"{path} is not UTF-8 text (byte {exc.start} cannot be read); save it as UTF-8 "
            "and run again."
        )
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror}); check its permissions."
    return None


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


def data_dir_problem(data_dir: Path) -> str | None:
    """Why invsync cannot write in ``data_dir`` (it need not exist yet: its nearest existing
    folder must then let it be made), as one sentence, or None."""
    existing = data_dir.absolute()
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link cannot be made into a folder
            break
        existing = existing.parent
    hint = "; pass --data-dir (or set INVSYNC_DATA_DIR to) a folder invsync may write in."
    if existing.exists() and not existing.is_dir():
        where = "is" if existing == data_dir.absolute() else f"lies under {existing}, which is"
        return f"The data directory {data_dir} {where} a file, not a folder{hint}"
    if not existing.exists():
        return f"The data directory {data_dir} cannot be made ({existing} is a broken link){hint}"
    if not os.access(existing, os.W_OK | os.X_OK):
        made = "" if existing == data_dir.absolute() else f" ({existing} does not let it be made)"
        return f"The data directory {data_dir} is not writable{made}{hint}"
    return None


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
    # An unknown key explains a "missing" one (a misspelling), so it is reported first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
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
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be read; TOML files are "
            "UTF-8); save it as UTF-8 in your editor and run again."
        ) from None
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
    dotenv = Path(".env") if dotenv_path is None else dotenv_path
    problem = dotenv_problem(dotenv) if dotenv.is_file() else None
    if problem:
        raise ConfigError(problem)
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
    names = ws.settings.secret_variables()
    return {
        "config_file": str(ws.config_path) if ws.config_path else "(none: sandbox demo defaults)",
        "data_dir": str(ws.data_dir),
        "settings": ws.settings.model_dump(mode="json"),
        "secrets": {n: ("set" if ws.env.get(n) else "not set") for n in names},
        "endpoints": {n: ws.env.get(n, "(default)") for n in (*ENDPOINT_VARS, BASE_REDIRECT_VAR)},
    }
