"""Pricing rules as exact integers, the FX rate, and a pure-Python reference of the transform.

Stage: Phase 2 (transform). Reads the ``[pricing]``, ``[fx]`` and ``[guardrails]`` settings
(models in :mod:`pipeline.config`) and, for the FX rate, optionally a CSV file. Writes nothing.

Money never meets a binary float. Rates are integer basis points (``bp``: 1.4 → 14,000),
the FX rate is integer ten-thousandths of a yen per dollar (``150.25`` → 1,502,500), prices
are integer yen (BASE) or integer US cents (eBay), and every division is a *ceiling on
non-negative integers* ``(n + d - 1) // d`` — the one rounding that DuckDB and Python
compute alike (DuckDB's ``//`` truncates, Python's floors; on non-negative numbers they
agree). Ceiling is also the safe direction: prices and costs round up, so profit rounds down.

:func:`decide` is the reference the SQL in ``sql/transform/`` is tested against
(tests/sql/, tests/unit/test_pricing_properties.py); it is written independently, row by row.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from pipeline.config import Account, PriceRule, Settings, parse_exact_decimal
from pipeline.errors import ConfigError
from pipeline.statuses import DOUBTFUL_STATUSES, OUT_OF_STOCK_STATUSES

BP = 10_000  # basis points in 1
FX_SCALE = 10_000  # the FX rate is kept as JPY per USD × 10,000
CENTS_PER_USD = 100
SANDBOX_DEMO_RATE = Decimal("150")  # JPY per USD, only when sandbox mode has no [fx]


# Hold reasons, in the order they are listed in ``hold_reason`` (SQL uses the same order).
HOLD_REASONS = (
    "price_move_over_limit",  # |new - old| above guardrails.max_price_change_pct of old
    "profit_below_minimum",  # expected profit at the new price under the rule's min_profit
    "capped_at_max_price",  # the rule asked for more than max_price
    "source_stale",  # the Amazon observation is older than guardrails.max_source_age
    "listing_drifted",  # `listings pull` saw the listing changed on the platform
)


def ceil_div(numerator: int, denominator: int) -> int:
    """⌈n / d⌉ for n ≥ 0, d > 0 — spelled like the SQL, ``(n + d - 1) // d``."""
    return (numerator + denominator - 1) // denominator


def to_bp(rate: Decimal) -> int:
    """A decimal rate as integer basis points; config allows at most 4 decimal places."""
    scaled = rate * BP
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{rate} has more than 4 decimal places")
    return int(scaled)


# --- FX ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FxRate:
    """JPY per USD, exact, with the moment it was taken and where it came from."""

    jpy_per_usd: Decimal
    as_of: datetime  # UTC
    source: str

    @property
    def scaled(self) -> int:
        """JPY per USD × 10,000 as an integer (150.25 → 1,502,500)."""
        return to_bp(self.jpy_per_usd)

    @property
    def text(self) -> str:
        return format(self.jpy_per_usd, "f")


def _as_utc(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _rate_from_file(path: Path) -> FxRate:
    """The newest row of a CSV with columns ``as_of,jpy_per_usd``."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        raise ConfigError(f"FX file {path} cannot be read; check fx.file.") from None
    best: FxRate | None = None
    for number, row in enumerate(rows, start=1):
        try:
            rate = parse_exact_decimal(row.get("jpy_per_usd"))
            moment = _as_utc(datetime.fromisoformat(str(row.get("as_of", "")).strip()))
        except (ValueError, TypeError, InvalidOperation):
            raise ConfigError(
                f"FX file {path} row {number} is not 'as_of,jpy_per_usd' "
                "(e.g. 2025-01-31,152.40); fix that row."
            ) from None
        if rate <= 0:
            raise ConfigError(f"FX file {path} row {number} has a rate ≤ 0; fix that row.")
        if best is None or moment >= best.as_of:
            best = FxRate(rate, moment, f"{path} row {number}")
    if best is None:
        raise ConfigError(f"FX file {path} has no rows; add 'as_of,jpy_per_usd' lines.")
    return best


def resolve_fx(settings: Settings, now: datetime, config_dir: Path | None = None) -> FxRate:
    """The JPY→USD rate eBay pricing uses now; a missing or stale rate is a ConfigError.

    ``fx.file`` is read relative to the configuration file's folder. In sandbox mode with
    no rate configured the demo rate of 150 JPY/USD as of ``now`` stands in.
    """
    fx = settings.fx
    if fx.file is not None:
        path = fx.file if fx.file.is_absolute() or config_dir is None else config_dir / fx.file
        rate = _rate_from_file(path)
    elif fx.jpy_per_usd is not None and fx.as_of is not None:
        rate = FxRate(fx.jpy_per_usd, _as_utc(fx.as_of), "fx.jpy_per_usd")
    elif settings.mode == "sandbox":
        return FxRate(SANDBOX_DEMO_RATE, now, "sandbox demo rate")
    else:
        raise ConfigError(
            "eBay pricing needs a JPY→USD rate; set fx.jpy_per_usd and fx.as_of "
            "(or fx.file) in the configuration, see docs/pricing.md."
        )
    age = (now - rate.as_of).total_seconds()  # seconds
    if age > fx.max_age:
        raise ConfigError(
            f"The JPY→USD rate {rate.text} ({rate.source}) is from {rate.as_of:%Y-%m-%d %H:%M} "
            f"UTC, {age / 86400:.1f} days old, beyond fx.max_age ({fx.max_age / 86400:g} days); "
            "eBay pricing stopped — update the rate and run `invsync transform` again."
        )
    return rate


# --- rules as integers ------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    lower_exclusive_jpy: int  # cost above this …
    up_to_jpy: int | None  # … and up to this (inclusive) falls in the band
    multiplier_bp: int
    add_jpy: int


@dataclass(frozen=True)
class AccountRule:
    """One account's rule as integers. Money fields are in the platform's unit (yen or cents);
    ``conv_num / conv_den`` turns yen into that unit (1/1 on BASE, 1,000,000/(rate×10⁴) on eBay)."""

    platform: str
    account_id: str
    method: str
    bands: tuple[Band, ...]
    shipping_jpy: int
    packing_jpy: int
    fee_bp: int
    duty_bp: int
    margin_bp: int
    rounding: str
    round_unit: int
    round_ending: int
    min_price: int | None
    max_price: int | None
    min_change: int
    min_change_bp: int  # of the old price
    min_profit: int
    restock_quantity: int
    out_of_stock_action: str
    conv_num: int
    conv_den: int
    fx_text: str | None  # the exact rate used, eBay only


def compile_rule(account: Account, rule: PriceRule, fx: FxRate | None) -> AccountRule:
    if account.platform == "ebay":
        if fx is None:
            raise ValueError("an eBay rule needs an FX rate")
        conv_num, conv_den, fx_text = CENTS_PER_USD * FX_SCALE, fx.scaled, fx.text
    else:
        conv_num, conv_den, fx_text = 1, 1, None
    bands: list[Band] = []
    lower = 0
    for band in rule.bands if rule.method == "markup" else []:
        bands.append(Band(lower, band.up_to_jpy, to_bp(band.multiplier), band.add_jpy))
        lower = band.up_to_jpy or lower
    return AccountRule(
        platform=account.platform,
        account_id=account.id,
        method=rule.method,
        bands=tuple(bands),
        shipping_jpy=rule.shipping_jpy,
        packing_jpy=rule.packing_jpy,
        fee_bp=to_bp(rule.fee_rate),
        duty_bp=to_bp(rule.duty_rate),
        margin_bp=to_bp(rule.margin_rate),
        rounding=rule.rounding,
        round_unit=rule.round_unit,
        round_ending=rule.round_ending,
        min_price=rule.min_price,
        max_price=rule.max_price,
        min_change=rule.min_change,
        min_change_bp=to_bp(rule.min_change_pct / 100),
        min_profit=rule.min_profit,
        restock_quantity=rule.restock_quantity,
        out_of_stock_action=rule.out_of_stock_action,
        conv_num=conv_num,
        conv_den=conv_den,
        fx_text=fx_text,
    )


def compile_rules(settings: Settings, platform: str, fx: FxRate | None) -> list[AccountRule]:
    """Every configured account of ``platform`` with its effective (overridden) rule."""
    return [
        compile_rule(account, settings.pricing.rule_for(account), fx)
        for account in settings.accounts_on(platform)
    ]


@dataclass(frozen=True)
class Guardrails:
    max_move_bp: int  # of the old price
    max_source_age_us: int  # microseconds
    max_out_of_stock_bp: int  # of a platform's listings
    max_api_error_bp: int


def compile_guardrails(settings: Settings) -> Guardrails:
    g = settings.guardrails
    return Guardrails(
        max_move_bp=to_bp(g.max_price_change_pct / 100),
        max_source_age_us=int(g.max_source_age * 1_000_000),
        max_out_of_stock_bp=to_bp(g.max_out_of_stock_ratio),
        max_api_error_bp=to_bp(g.max_api_error_ratio),
    )


def rules_frame(rules: list[AccountRule]) -> pl.DataFrame:
    """One row per account, registered for the SQL as ``pricing_rules``."""
    columns = {
        "platform": pl.String, "account_id": pl.String, "method": pl.String,
        "shipping_jpy": pl.Int64, "packing_jpy": pl.Int64, "fee_bp": pl.Int64,
        "duty_bp": pl.Int64, "margin_bp": pl.Int64, "rounding": pl.String,
        "round_unit": pl.Int64, "round_ending": pl.Int64, "min_price": pl.Int64,
        "max_price": pl.Int64, "min_change": pl.Int64, "min_change_bp": pl.Int64,
        "min_profit": pl.Int64, "restock_quantity": pl.Int64, "out_of_stock_action": pl.String,
        "conv_num": pl.Int64, "conv_den": pl.Int64, "fx_text": pl.String,
    }  # fmt: skip
    rows = [{name: getattr(rule, name) for name in columns} for rule in rules]
    return pl.DataFrame(rows, schema=columns)


def bands_frame(rules: list[AccountRule]) -> pl.DataFrame:
    """One row per markup band per account, registered for the SQL as ``markup_bands``."""
    schema = {
        "account_id": pl.String, "band_no": pl.Int64, "lower_exclusive_jpy": pl.Int64,
        "up_to_jpy": pl.Int64, "multiplier_bp": pl.Int64, "add_jpy": pl.Int64,
    }  # fmt: skip
    rows = [
        {
            "account_id": rule.account_id,
            "band_no": number,
            "lower_exclusive_jpy": band.lower_exclusive_jpy,
            "up_to_jpy": band.up_to_jpy,
            "multiplier_bp": band.multiplier_bp,
            "add_jpy": band.add_jpy,
        }
        for rule in rules
        for number, band in enumerate(rule.bands)
    ]
    return pl.DataFrame(rows, schema=schema)


# --- the reference calculation ------------------------------------------------------------


def band_for(cost_jpy: int, rule: AccountRule) -> Band:
    for band in rule.bands:
        if cost_jpy > band.lower_exclusive_jpy and (
            band.up_to_jpy is None or cost_jpy <= band.up_to_jpy
        ):
            return band
    raise ValueError(f"no markup band covers a cost of {cost_jpy} JPY")


def raw_price(cost_jpy: int, rule: AccountRule) -> int:
    """The rule's price before rounding, in the platform unit, rounded up (ceiling) once."""
    if rule.method == "markup":
        band = band_for(cost_jpy, rule)
        numerator = (cost_jpy * band.multiplier_bp + band.add_jpy * BP) * rule.conv_num
        return ceil_div(numerator, BP * rule.conv_den)
    # cost_plus: (cost + shipping + packing) / (1 − fee − duty − margin)
    keep_bp = BP - rule.fee_bp - rule.duty_bp - rule.margin_bp
    numerator = (cost_jpy + rule.shipping_jpy + rule.packing_jpy) * BP * rule.conv_num
    return ceil_div(numerator, keep_bp * rule.conv_den)


def rounded_price(price: int, rule: AccountRule) -> int:
    """Named rounding modes, all upward: ``none``; ``up_to_unit`` (next multiple of the unit);
    ``up_to_ending`` (the smallest price ≥ ``price`` that ends in ``round_ending`` modulo
    ``round_unit``, e.g. .99)."""
    unit, ending = rule.round_unit, rule.round_ending
    if rule.rounding == "up_to_unit":
        return ceil_div(price, unit) * unit
    if rule.rounding == "up_to_ending":
        return ending + ceil_div(max(price - ending, 0), unit) * unit
    return price


def clamped_price(price: int, rule: AccountRule) -> int:
    if rule.min_price is not None:
        price = max(price, rule.min_price)
    if rule.max_price is not None:
        price = min(price, rule.max_price)
    return price


def cost_in_unit(cost_jpy: int, rule: AccountRule) -> int:
    """Cost + shipping + packing in the platform unit, rounded up (ceiling)."""
    total = cost_jpy + rule.shipping_jpy + rule.packing_jpy
    return ceil_div(total * rule.conv_num, rule.conv_den)


def expected_profit(price: int, cost_jpy: int, rule: AccountRule) -> int:
    """Price − fees and duty (rounded up) − costs (rounded up): profit rounded down."""
    fees = ceil_div(price * (rule.fee_bp + rule.duty_bp), BP)
    return price - fees - cost_in_unit(cost_jpy, rule)


@dataclass(frozen=True)
class Listing:
    """A listing in platform-neutral form: price in the platform unit, quantity, visibility."""

    platform: str
    account_id: str
    listing_key: str
    asin: str
    price: int
    quantity: int
    visible: bool  # always True on eBay
    drifted: bool = False


@dataclass(frozen=True)
class Observation:
    """One snapshot row, as far as pricing cares."""

    status: str
    cost_jpy: int | None
    in_stock: bool | None
    fetched_at: datetime | None
    fallback_age_seconds: float | None = None


@dataclass(frozen=True)
class Decision:
    change_kind: str
    new_price: int
    new_quantity: int
    new_visible: bool
    target_price: int | None
    expected_profit: int | None
    held: bool
    hold_reason: str | None
    current_profit: int | None = None  # at the listing's current price; in-stock sources only
    protection: str | None = None  # raise | pause: what load does while the held row waits
    protection_reason: str | None = None  # loss_at_current_price | amazon_cannot_supply


def source_says(obs: Observation | None) -> str:
    """``in_stock``, ``out_of_stock`` or ``ignore`` (doubtful or missing: never a fact)."""
    if obs is None or obs.status in DOUBTFUL_STATUSES:
        return "ignore"
    if obs.status in OUT_OF_STOCK_STATUSES or obs.in_stock is False:
        return "out_of_stock"
    if obs.status in ("ok", "fallback") and obs.in_stock and obs.cost_jpy is not None:
        return "in_stock"
    return "ignore"


def is_stale(obs: Observation, as_of: datetime, guard: Guardrails) -> bool:
    if obs.fetched_at is None:
        return True
    limit = as_of - timedelta(microseconds=guard.max_source_age_us)
    too_old_fallback = (obs.fallback_age_seconds or 0.0) > guard.max_source_age_us / 1_000_000
    return obs.fetched_at < limit or too_old_fallback


def decide(
    listing: Listing,
    obs: Observation | None,
    rule: AccountRule,
    guard: Guardrails,
    as_of: datetime,
) -> Decision | None:
    """What should change on one listing, or None. Mirrors ``sql/transform/priced_listings.sql``."""
    says = source_says(obs)
    if says == "ignore" or obs is None:
        return None
    fallback = obs.status == "fallback"
    hide = rule.out_of_stock_action == "hide"
    currently_out = listing.quantity == 0 or (hide and not listing.visible)

    new_price, new_quantity, new_visible = listing.price, listing.quantity, listing.visible
    target: int | None = None
    rounded: int | None = None
    profit: int | None = None
    stock_kind: str | None = None
    current: int | None = None
    if says == "out_of_stock":
        if not currently_out:
            stock_kind = "out_of_stock"
            if hide:
                new_visible = False
            else:
                new_quantity = 0
    else:
        assert obs.cost_jpy is not None
        cost = obs.cost_jpy
        rounded = rounded_price(raw_price(cost, rule), rule)
        target = clamped_price(rounded, rule)
        old = listing.price
        delta = abs(target - old)
        too_small = delta < rule.min_change or delta * BP < rule.min_change_bp * old
        current = expected_profit(old, cost, rule)
        protects_from_loss = target > old and current < rule.min_profit
        # Keep the old price when nothing moves, when a fallback would lower it, and when
        # the move is too small to be worth a push (unless it lifts a loss-making price).
        # Losing money now and the rule prices it no higher: it goes out of stock below.
        unprofitable = not currently_out and target <= old and current < rule.min_profit
        keep = target == old or (fallback and target < old) or unprofitable
        new_price = old if keep or (too_small and not protects_from_loss) else target
        if currently_out and not fallback:
            stock_kind = "restock"
            if listing.quantity == 0:
                new_quantity = rule.restock_quantity
            if hide:
                new_visible = True
        elif unprofitable:
            # the rule cannot price it at a profit (max_price caps it, or its markup is under
            # cost): it goes out of stock, held for a person and paused meanwhile
            stock_kind = "out_of_stock"
            if hide:
                new_visible = False
            else:
                new_quantity = 0
        profit = expected_profit(new_price, cost, rule)

    if stock_kind is None and new_price == listing.price:
        return None
    kind = stock_kind or ("price_up" if new_price > listing.price else "price_down")

    reasons = []
    moved = abs(new_price - listing.price)
    if moved * BP > guard.max_move_bp * listing.price:
        reasons.append("price_move_over_limit")
    if profit is not None and profit < rule.min_profit:
        reasons.append("profit_below_minimum")
    if rounded is not None and rule.max_price is not None and rounded > rule.max_price:
        reasons.append("capped_at_max_price")
    if is_stale(obs, as_of, guard):
        reasons.append("source_stale")
    if listing.drifted:
        reasons.append("listing_drifted")
    protection, why = protective_action(
        held=bool(reasons),
        currently_out=currently_out,
        says=says,
        current_profit=current,
        raises_to_profit=new_price > listing.price
        and profit is not None
        and profit >= rule.min_profit,
        only_the_move_holds=reasons == ["price_move_over_limit"],
        min_profit=rule.min_profit,
    )
    return Decision(
        change_kind=kind,
        new_price=new_price,
        new_quantity=new_quantity,
        new_visible=new_visible,
        target_price=target,
        expected_profit=profit,
        held=bool(reasons),
        hold_reason=", ".join(reasons) or None,
        current_profit=current,
        protection=protection,
        protection_reason=why,
    )


def protective_action(
    *,
    held: bool,
    currently_out: bool,
    says: str,
    current_profit: int | None,
    raises_to_profit: bool,
    only_the_move_holds: bool,
    min_profit: int,
) -> tuple[str | None, str | None]:
    """What load does at once for a held row, and why (docs/review.md, "Waiting never
    loses money"): nothing for a row not held or a listing not buyable; ``pause`` (quantity
    0) when Amazon cannot supply it; when it earns under the minimum profit at its current
    price, ``raise`` — the held raise itself — when only the size of the move holds it and
    the new price restores the profit, else ``pause``."""
    if not held or currently_out:
        return None, None
    if says == "out_of_stock":
        return "pause", "amazon_cannot_supply"
    if says == "in_stock" and current_profit is not None and current_profit < min_profit:
        return ("raise" if raises_to_profit and only_the_move_holds else "pause"), (
            "loss_at_current_price"
        )
    return None, None


def reference_diff(
    listings: list[Listing],
    observations: Mapping[str, Observation],
    rules: Mapping[str, AccountRule],
    guard: Guardrails,
    as_of: datetime,
) -> dict[tuple[str, str], Decision]:
    """Every listing that changes, keyed by (account_id, listing_key)."""
    out: dict[tuple[str, str], Decision] = {}
    for listing in listings:
        rule = rules.get(listing.account_id)
        if rule is None:
            continue
        decision = decide(listing, observations.get(listing.asin), rule, guard, as_of)
        if decision is not None:
            out[(listing.account_id, listing.listing_key)] = decision
    return out
