"""Shipping options: per currency and destination a list (standard, express, ...), each
with a delivery estimate, an amount, and optionally a goods subtotal from which it is free.

The tables are data: ``TableShipping(options)`` takes a shop's own, and any object with
the :class:`ShippingStrategy` method can replace the table altogether.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from app.errors import InvalidRequest
from app.services.money import decimal_amount

SHIPPING_OPTION_FIELD = "shippingOptionId"


@dataclass(frozen=True)
class ShippingOption:
    """One way to ship: ``amount`` in minor units, waived from a subtotal of ``free_over``."""

    id: str
    label: str
    amount: int
    min_days: int
    max_days: int
    free_over: int | None = None

    def for_subtotal(self, subtotal: int) -> ShippingOption:
        """This option priced for a cart of ``subtotal`` (free from the threshold)."""
        if self.free_over is not None and subtotal >= self.free_over:
            return replace(self, amount=0)
        return self

    def to_dict(self, currency: str) -> dict[str, Any]:
        """The contract's ``shippingOptions`` entry."""
        return {
            "id": self.id,
            "label": self.label,
            "amount": self.amount,
            "amountDecimal": decimal_amount(self.amount, currency),
            "deliveryEstimate": {"minDays": self.min_days, "maxDays": self.max_days},
        }


class ShippingStrategy(Protocol):
    """Decides how a cart may ship to a destination."""

    def options(self, *, subtotal: int, country: str, currency: str) -> Sequence[ShippingOption]:
        """The options offered, priced for ``subtotal`` (empty: ships free)."""
        ...


def _opt(
    id_: str, amount: int, days: tuple[int, int], free_over: int | None = None
) -> ShippingOption:
    return ShippingOption(id_, id_.capitalize(), amount, days[0], days[1], free_over)


# currency → country (or "*" for everywhere else) → options, amounts in minor units.
DEFAULT_SHIPPING_OPTIONS: dict[str, dict[str, tuple[ShippingOption, ...]]] = {
    "usd": {
        "US": (_opt("standard", 500, (3, 5), 5000), _opt("express", 1500, (1, 2))),
        "CA": (_opt("standard", 1500, (5, 10), 15000), _opt("express", 3500, (2, 4))),
        "*": (_opt("standard", 2500, (7, 21)), _opt("express", 6000, (3, 7))),
    },
    "eur": {"*": (_opt("standard", 900, (3, 7), 10000), _opt("express", 2500, (1, 3)))},
    "gbp": {
        "GB": (_opt("standard", 400, (2, 4), 5000), _opt("express", 900, (1, 1))),
        "*": (_opt("standard", 1200, (5, 10)), _opt("express", 3000, (2, 5))),
    },
    "jpy": {
        "JP": (_opt("standard", 800, (2, 4), 10000), _opt("express", 1500, (1, 1))),
        "*": (_opt("standard", 3000, (7, 14)), _opt("express", 6000, (3, 6))),
    },
    "krw": {
        "KR": (_opt("standard", 3000, (2, 4), 50000), _opt("express", 6000, (1, 1))),
        "*": (_opt("standard", 30000, (7, 14)), _opt("express", 60000, (3, 6))),
    },
}


@dataclass(frozen=True)
class TableShipping:
    """Options per currency and destination country (``"*"``: everywhere else)."""

    table: Mapping[str, Mapping[str, Sequence[ShippingOption]]] = field(
        default_factory=lambda: DEFAULT_SHIPPING_OPTIONS
    )

    def listed(self, country: str, currency: str) -> Sequence[ShippingOption]:
        """The destination's options as listed, unpriced (empty: the currency ships free)."""
        by_country = self.table.get(currency.lower()) or {}
        return by_country.get(country.upper()) or by_country.get("*") or ()

    def options(self, *, subtotal: int, country: str, currency: str) -> Sequence[ShippingOption]:
        """The destination's options priced for ``subtotal``."""
        return tuple(o.for_subtotal(subtotal) for o in self.listed(country, currency))


def not_offered(option_id: str, offered: Sequence[ShippingOption]) -> InvalidRequest:
    """The refusal of a ``shippingOptionId`` the destination is not offered."""
    names = ", ".join(o.id for o in offered) or "none"
    message = f"Not offered for this destination (offered: {names})."
    return InvalidRequest(message, fields={SHIPPING_OPTION_FIELD: [message]})


def choose(offered: Sequence[ShippingOption], option_id: str | None) -> ShippingOption | None:
    """The chosen option, or the cheapest (the first listed on a tie); None when nothing
    is offered and nothing asked. Raises InvalidRequest for an option not offered."""
    if option_id is not None:
        for option in offered:
            if option.id == option_id:
                return option
        raise not_offered(option_id, offered)
    return min(offered, key=lambda o: o.amount, default=None)


def bound_option(listed: Sequence[ShippingOption], option_id: str | None) -> ShippingOption | None:
    """The option admit.lua prices shipping with: the chosen one, else the one of least
    listed amount — never less than the cheapest for any subtotal, so the script's total
    is an upper bound of the worker's (exact for tables where that one is the cheapest)."""
    if option_id is not None:
        return next((o for o in listed if o.id == option_id), None)
    return min(listed, key=lambda o: o.amount, default=None)
