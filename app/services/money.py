"""Money at the edges: integer minor units to exact decimal strings (I5).

The lowest layer of the services: the order body renders the decimal twins of its
totals and lines with it, and pricing rounds with it. Integers only, never a float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# ISO 4217 currencies whose minor unit is the major unit (Stripe's "zero-decimal" list).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
     "vuv", "xaf", "xof", "xpf"}
)  # fmt: skip
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# The amounts of a ``totals`` object, in the order ``totalsDecimal`` lists them.
TOTAL_FIELDS = ("subtotal", "discount", "shipping", "tax", "total")


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (0, 2 or 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def decimal_amount(amount: int, currency: str) -> str:
    """An amount in minor units as an exact decimal string: ``"14.00"``, JPY ``"1400"``.

    Integer arithmetic only (never a float), with the currency's minor-unit exponent.
    """
    exponent = minor_unit_exponent(currency)
    if exponent == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{major}.{minor:0{exponent}d}"


def format_amount(amount: int, currency: str) -> str:
    """Human text for an amount in minor units, e.g. ``12.50 USD`` or ``1200 JPY``."""
    return f"{decimal_amount(amount, currency)} {currency.upper()}"


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero, in integers only."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return sign * quotient


def decimal_totals(totals: Mapping[str, Any]) -> dict[str, str]:
    """``totalsDecimal`` of a ``totals`` object (a missing ``discount`` — an order from
    before discounts — reads as 0)."""
    currency = str(totals["currency"])
    return {name: decimal_amount(int(totals.get(name) or 0), currency) for name in TOTAL_FIELDS}


def decimal_lines(lines: Iterable[Mapping[str, Any]], currency: str) -> list[dict[str, Any]]:
    """The lines with their ``unitAmountDecimal`` and ``amountDecimal`` twins."""
    return [
        {
            **line,
            "unitAmountDecimal": decimal_amount(int(line["unitAmount"]), currency),
            "amountDecimal": decimal_amount(int(line["amount"]), currency),
        }
        for line in lines
    ]
