"""Server-side pricing: line items, shipping and tax, in integer minor units (I5).

The client never sends amounts; every cart is priced here from catalog prices.

Policy (documented in docs/architecture.md as well):

- **Tax** is exclusive (added on top of the goods), computed **per line** and rounded
  **half-up** to the currency's minor unit; shipping is not taxed. Rates are basis
  points looked up by ``(country, region)`` first, then ``country``.
- **Shipping** is a flat rate per currency and destination country, free when the
  goods subtotal reaches the currency's threshold. A currency without a table ships free.
- Without a shipping address (a quote before the buyer typed one) both are estimated
  for the store's home country.

Shipping and tax are strategies (small classes with one method) so a shop can swap in
its own tables or a tax service without touching the endpoint or the worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import InvalidRequest
from app.services.money import decimal_lines, decimal_totals, format_amount, round_half_up

# Stripe's largest charge: 8 digits of minor units ($999,999.99). A larger cart is
# refused at quote and submit rather than failing in the worker.
MAX_CHARGE_AMOUNT = 99_999_999
HOME_COUNTRY = "US"


def over_maximum(currency: str) -> InvalidRequest:
    """The refusal of a cart whose total exceeds what one Stripe payment can take."""
    limit = format_amount(MAX_CHARGE_AMOUNT, currency)
    message = f"The order total exceeds the most one payment can take ({limit}); split it."
    return InvalidRequest(message, fields={"items": [message]})


@dataclass(frozen=True)
class TotalCheck:
    """How admit.lua prices a cart to refuse one over Stripe's maximum: the table rules
    for one destination (per-line tax half-up, flat shipping waived from ``free_over``)."""

    currency: str
    tax_basis_points: int
    shipping: int
    free_over: int | None
    limit: int = MAX_CHARGE_AMOUNT


@dataclass(frozen=True)
class ProductPrice:
    """What pricing needs to know about one catalog product."""

    sku: str
    name: str
    unit_amount: int
    currency: str


@dataclass(frozen=True)
class LineItem:
    """One priced cart line; ``tax`` is this line's rounded tax."""

    sku: str
    name: str
    quantity: int
    unit_amount: int
    amount: int
    tax: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The contract's camelCase line item."""
        return {
            "sku": self.sku,
            "name": self.name,
            "quantity": self.quantity,
            "unitAmount": self.unit_amount,
            "amount": self.amount,
        }


@dataclass(frozen=True)
class Quote:
    """A fully priced cart. ``total = subtotal - discount + shipping + tax``."""

    line_items: tuple[LineItem, ...]
    subtotal: int
    shipping: int
    tax: int
    total: int
    currency: str
    discount: int = 0

    def totals(self) -> dict[str, Any]:
        """The contract's ``totals`` object."""
        return {
            "subtotal": self.subtotal,
            "discount": self.discount,
            "shipping": self.shipping,
            "tax": self.tax,
            "total": self.total,
            "currency": self.currency,
        }

    def to_dict(self) -> dict[str, Any]:
        """The contract's quote body, with its decimal twins."""
        totals = self.totals()
        lines = [line.to_dict() for line in self.line_items]
        return {
            "lineItems": decimal_lines(lines, self.currency),
            **totals,
            "totalsDecimal": decimal_totals(totals),
        }


class ShippingStrategy(Protocol):
    """Decides the shipping amount of a cart."""

    def amount(self, *, subtotal: int, country: str, currency: str) -> int:
        """Shipping in minor units of ``currency``."""
        ...


class TaxStrategy(Protocol):
    """Decides the tax of one line."""

    def line_tax(self, *, amount: int, country: str, region: str | None, currency: str) -> int:
        """Tax in minor units for a line of ``amount`` minor units."""
        ...


@dataclass(frozen=True)
class ShippingRate:
    """A flat shipping amount, waived when the subtotal reaches ``free_over``."""

    amount: int
    free_over: int | None = None


# currency → country (or "*" for everywhere else) → rate, all in minor units.
DEFAULT_SHIPPING_RATES: dict[str, dict[str, ShippingRate]] = {
    "usd": {
        "US": ShippingRate(500, free_over=5000),
        "CA": ShippingRate(1500, free_over=15000),
        "*": ShippingRate(2500),
    },
    "eur": {"*": ShippingRate(900, free_over=10000)},
    "gbp": {"GB": ShippingRate(400, free_over=5000), "*": ShippingRate(1200)},
    "jpy": {"JP": ShippingRate(800, free_over=10000), "*": ShippingRate(3000)},
    "krw": {"KR": ShippingRate(3000, free_over=50000), "*": ShippingRate(30000)},
}

# Basis points (1/100 of a percent): "CC" or "CC-REGION".
DEFAULT_TAX_RATES: dict[str, int] = {
    "US-CA": 725,
    "US-NY": 400,
    "US-TX": 625,
    "US-WA": 650,
    "CA": 500,
    "DE": 1900,
    "FR": 2000,
    "GB": 2000,
    "IT": 2200,
    "NL": 2100,
    "JP": 1000,
    "KR": 1000,
}


@dataclass(frozen=True)
class TableShipping:
    """Flat rate per currency and destination country, free over a threshold."""

    rates: Mapping[str, Mapping[str, ShippingRate]] = field(
        default_factory=lambda: DEFAULT_SHIPPING_RATES
    )

    def rate_for(self, country: str, currency: str) -> ShippingRate | None:
        """The destination's rate in ``currency``; None when nothing is charged."""
        table = self.rates.get(currency.lower())
        if not table:
            return None
        return table.get(country.upper()) or table.get("*")

    def amount(self, *, subtotal: int, country: str, currency: str) -> int:
        """Shipping in minor units; 0 when the currency has no table."""
        rate = self.rate_for(country, currency)
        if rate is None:
            return 0
        if rate.free_over is not None and subtotal >= rate.free_over:
            return 0
        return rate.amount


@dataclass(frozen=True)
class TableTax:
    """Exclusive tax from a rate table in basis points, half-up per line."""

    rates: Mapping[str, int] = field(default_factory=lambda: DEFAULT_TAX_RATES)

    def rate_for(self, country: str, region: str | None) -> int:
        """The rate in basis points: the region's when listed, else the country's."""
        country = country.upper()
        if region:
            regional = self.rates.get(f"{country}-{region.upper()}")
            if regional is not None:
                return regional
        return self.rates.get(country, 0)

    def line_tax(self, *, amount: int, country: str, region: str | None, currency: str) -> int:
        """Tax of one line, rounded half-up to the minor unit."""
        return round_half_up(amount * self.rate_for(country, region), 10_000)


@dataclass(frozen=True)
class Pricer:
    """Prices carts with a shipping and a tax strategy."""

    shipping: ShippingStrategy = field(default_factory=TableShipping)
    tax: TaxStrategy = field(default_factory=TableTax)
    home_country: str = HOME_COUNTRY

    def price(
        self,
        items: Sequence[tuple[str, int]],
        shipping_address: Mapping[str, Any] | None,
        currency: str,
        products: Mapping[str, ProductPrice],
    ) -> Quote:
        """Price ``items`` ([(sku, quantity)]) for ``shipping_address`` in ``currency``."""
        currency = currency.lower()
        address = shipping_address or {}
        country = str(address.get("country") or self.home_country).upper()
        region = address.get("state") or None
        lines = tuple(
            self._line(index, sku, quantity, currency, products, country, region)
            for index, (sku, quantity) in enumerate(items)
        )
        subtotal = sum(line.amount for line in lines)
        tax = sum(line.tax for line in lines)
        shipping = self.shipping.amount(subtotal=subtotal, country=country, currency=currency)
        total = subtotal + shipping + tax
        if total > MAX_CHARGE_AMOUNT:
            raise over_maximum(currency)
        return Quote(
            line_items=lines,
            subtotal=subtotal,
            shipping=shipping,
            tax=tax,
            total=total,
            currency=currency,
        )

    def total_check(
        self, shipping_address: Mapping[str, Any] | None, currency: str
    ) -> TotalCheck | None:
        """The terms admit.lua prices a cart with, for this destination (the same rules as
        :meth:`price`); None when a strategy is not a table (the worker's pricing decides)."""
        if not isinstance(self.shipping, TableShipping) or not isinstance(self.tax, TableTax):
            return None
        address = shipping_address or {}
        country = str(address.get("country") or self.home_country).upper()
        rate = self.shipping.rate_for(country, currency)
        return TotalCheck(
            currency=currency.lower(),
            tax_basis_points=self.tax.rate_for(country, address.get("state") or None),
            shipping=0 if rate is None else rate.amount,
            free_over=None if rate is None else rate.free_over,
        )

    def _line(
        self,
        index: int,
        sku: str,
        quantity: int,
        currency: str,
        products: Mapping[str, ProductPrice],
        country: str,
        region: str | None,
    ) -> LineItem:
        product = products.get(sku)
        if product is None:
            raise InvalidRequest("Unknown SKU.", fields={f"items.{index}.sku": ["Unknown SKU."]})
        if product.currency.lower() != currency:
            message = f"Not sold in {currency.upper()}."
            raise InvalidRequest(message, fields={f"items.{index}.sku": [message]})
        amount = product.unit_amount * quantity
        tax = self.tax.line_tax(amount=amount, country=country, region=region, currency=currency)
        return LineItem(sku, product.name, quantity, product.unit_amount, amount, tax)


DEFAULT_PRICER = Pricer()


def price_cart(
    items: Sequence[tuple[str, int]],
    shipping_address: Mapping[str, Any] | None,
    currency: str,
    products: Mapping[str, ProductPrice],
    *,
    pricer: Pricer = DEFAULT_PRICER,
) -> Quote:
    """Price a cart with the default (or the given) strategies; raises InvalidRequest."""
    return pricer.price(items, shipping_address, currency, products)


def total_check(
    shipping_address: Mapping[str, Any] | None, currency: str, *, pricer: Pricer = DEFAULT_PRICER
) -> TotalCheck | None:
    """The default pricer's :meth:`Pricer.total_check` (the submit's terms for admit.lua)."""
    return pricer.total_check(shipping_address, currency)
