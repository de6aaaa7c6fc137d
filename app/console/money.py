"""Amounts at the console's edge: minor units inside, the currency's major units on screen
and in forms (``12.50`` USD is 1250; ``1200`` JPY is 1200)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from app.errors import InvalidRequest
from app.services.money import decimal_amount, minor_unit_exponent


def major(amount: int, currency: str) -> str:
    """``1250, "usd"`` → ``"12.50"`` (exact, no float)."""
    return decimal_amount(amount, currency)


def to_minor(text: str, currency: str, *, field: str = "amount") -> int:
    """``"12.5", "usd"`` → 1250; InvalidRequest on ``field`` for more decimals than the
    currency has, or a value that is not a positive amount."""
    message = f"Enter an amount in {currency.upper()} like {major(1250, currency)}."
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidRequest(message, fields={field: [message]}) from None
    minor = value.scaleb(minor_unit_exponent(currency))
    if not value.is_finite() or minor != minor.to_integral_value() or minor <= 0:
        raise InvalidRequest(message, fields={field: [message]})
    return int(minor)
