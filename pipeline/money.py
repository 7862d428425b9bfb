"""Money as people read it: every amount shown to a person goes through :func:`money`.

Amounts are integer minor units of their currency everywhere inside invsync (yen for JPY,
cents for USD; docs/architecture.md, Conventions). This turns one into text with its unit
(``¥1,680``, ``$139.99``), so no terminal line, report, log message or alert ever shows a
bare ``13999``. Reads and writes nothing.
"""

from __future__ import annotations

# digits after the point, and the symbol written before the amount
MINOR_UNITS: dict[str, tuple[int, str]] = {"JPY": (0, "¥"), "USD": (2, "$")}
_DEFAULT_DIGITS = 2  # ISO 4217: most currencies have cents


def money(minor: int | None, currency: str) -> str:
    """An amount in integer minor units with its unit: ``¥1,680``, ``$139.99``, ``-$0.50``.

    ``None`` is shown as ``–``. A currency without a symbol here is written with its code
    after the amount, in its usual two decimals (``12.50 EUR``), never as bare minor units.
    """
    if minor is None:
        return "–"
    code = currency.upper()
    digits, symbol = MINOR_UNITS.get(code, (_DEFAULT_DIGITS, ""))
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(int(minor)), 10**digits)
    number = f"{whole:,}" + (f".{part:0{digits}d}" if digits else "")
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"
