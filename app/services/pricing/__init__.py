"""Server-side pricing: line items, shipping and tax, in integer minor units (I5).

The client never sends amounts; every cart is priced here from catalog prices.

Policy (documented in docs/architecture.md as well):

- **Promotions** (``pricing/promotions.py``) come off the goods first: the discount is
  spread over the lines (largest remainder, integer minor units).
- **Tax** is exclusive (added on top of the goods), computed **per line** on the line
  less its share of the discount, and rounded **half-up** to the currency's minor unit;
  shipping is not taxed. Rates are basis points looked up by ``(country, region)``
  first, then ``country``.
- **Shipping** options (standard, express, ...) per currency and destination country
  (``pricing/shipping.py``), each a flat amount, some free when the goods subtotal
  reaches a threshold; the buyer's choice, else the cheapest. A currency without a
  table ships free.
- Without a shipping address (a quote before the buyer typed one) both are estimated
  for the store's home country.

Shipping and tax are strategies (small classes with one method) so a shop can swap in
its own tables or a tax service without touching the endpoint or the worker. A tax
strategy prices either one line at a time (:class:`TaxStrategy`, the table) or the whole
cart at once, shipping included (:class:`CartTaxStrategy`, Stripe Tax in
``pricing/stripe_tax.py``: one calculation per cart).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from app.errors import InvalidRequest
from app.services.money import decimal_lines, decimal_totals, format_amount, round_half_up
from app.services.pricing.promotions import PromotionTerms, allocate
from app.services.pricing.shipping import (
    ShippingOption,
    ShippingStrategy,
    TableShipping,
    bound_option,
    choose,
)

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
    for one destination and shipping option (per-line tax half-up, the option's amount
    waived from ``free_over``)."""

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
    """A fully priced cart. ``total = subtotal - discount + shipping + tax``; each line's
    ``tax`` is on its amount less its share of the discount."""

    line_items: tuple[LineItem, ...]
    subtotal: int
    shipping: int
    tax: int
    total: int
    currency: str
    discount: int = 0
    shipping_options: tuple[ShippingOption, ...] = ()
    shipping_option_id: str | None = None
    promotion: PromotionTerms | None = None
    # Stripe Tax: the calculation these totals come from (None with the table).
    tax_calculation_id: str | None = None

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
            "shippingOptions": [o.to_dict(self.currency) for o in self.shipping_options],
            "shippingOptionId": self.shipping_option_id,
            "promotion": None if self.promotion is None else self.promotion.summary(),
        }


class TaxStrategy(Protocol):
    """Decides the tax of one line."""

    def line_tax(self, *, amount: int, country: str, region: str | None, currency: str) -> int:
        """Tax in minor units for a line of ``amount`` minor units."""
        ...


@dataclass(frozen=True)
class TaxableCart:
    """A whole cart as a :class:`CartTaxStrategy` prices it: ``lines`` are
    ``(sku, quantity, taxable amount)`` — each line's amount less its share of the
    discount — then the chosen shipping, the destination and the currency."""

    lines: tuple[tuple[str, int, int], ...]
    shipping: int
    shipping_option_id: str | None
    discount: int
    address: Mapping[str, Any]
    currency: str


@dataclass(frozen=True)
class CartTax:
    """The tax of each line (in the cart's order) and of the shipping; the provider's
    calculation id when it made one."""

    line_taxes: tuple[int, ...]
    shipping_tax: int = 0
    calculation_id: str | None = None


@runtime_checkable
class CartTaxStrategy(Protocol):
    """Decides the tax of a whole cart at once (a tax service: one call per cart)."""

    def cart_tax(self, cart: TaxableCart) -> CartTax:
        """The tax of every line and of the shipping; TaxUnavailable when it cannot say."""
        ...


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
    tax: TaxStrategy | CartTaxStrategy = field(default_factory=TableTax)
    home_country: str = HOME_COUNTRY

    def price(
        self,
        items: Sequence[tuple[str, int]],
        shipping_address: Mapping[str, Any] | None,
        currency: str,
        products: Mapping[str, ProductPrice],
        *,
        shipping_option_id: str | None = None,
        promotion: PromotionTerms | None = None,
    ) -> Quote:
        """Price ``items`` ([(sku, quantity)]) for ``shipping_address`` in ``currency``,
        shipped by ``shipping_option_id`` (default: the cheapest option offered), less
        ``promotion``'s discount (whose validity the caller has checked)."""
        currency = currency.lower()
        country, region = self._destination(shipping_address)
        goods = [
            self._goods(index, sku, quantity, currency, products)
            for index, (sku, quantity) in enumerate(items)
        ]
        subtotal = sum(line.amount for line in goods)
        discount = 0 if promotion is None else promotion.discount(subtotal)
        shares = allocate([line.amount for line in goods], discount)
        # The free-shipping threshold is on the goods before the discount (as admit.lua
        # prices it, so its bound stays exact).
        offered = tuple(
            self.shipping.options(subtotal=subtotal, country=country, currency=currency)
        )
        chosen = choose(offered, shipping_option_id)
        shipping = 0 if chosen is None else chosen.amount
        cart = TaxableCart(
            lines=tuple(
                (line.sku, line.quantity, line.amount - share)
                for line, share in zip(goods, shares, strict=True)
            ),
            shipping=shipping,
            shipping_option_id=None if chosen is None else chosen.id,
            discount=discount,
            address={**(shipping_address or {}), "country": country},
            currency=currency,
        )
        taxed = self._tax(cart, region)
        lines = tuple(
            replace(line, tax=line_tax)
            for line, line_tax in zip(goods, taxed.line_taxes, strict=True)
        )
        tax = sum(line.tax for line in lines) + taxed.shipping_tax
        total = subtotal - discount + shipping + tax
        if total > MAX_CHARGE_AMOUNT:
            raise over_maximum(currency)
        return Quote(
            line_items=lines,
            subtotal=subtotal,
            shipping=shipping,
            tax=tax,
            total=total,
            currency=currency,
            discount=discount,
            shipping_options=offered,
            shipping_option_id=None if chosen is None else chosen.id,
            promotion=promotion,
            tax_calculation_id=taxed.calculation_id,
        )

    def _tax(self, cart: TaxableCart, region: str | None) -> CartTax:
        """The cart's tax: one call for a whole-cart strategy, else line by line (shipping
        untaxed), each line on its amount less its share of the discount."""
        if isinstance(self.tax, CartTaxStrategy):
            return self.tax.cart_tax(cart)
        country = str(cart.address["country"])
        return CartTax(
            tuple(
                self.tax.line_tax(
                    amount=amount, country=country, region=region, currency=cart.currency
                )
                for _, _, amount in cart.lines
            )
        )

    def check_shipping_option(
        self, shipping_address: Mapping[str, Any] | None, currency: str, option_id: str | None
    ) -> None:
        """InvalidRequest on ``shippingOptionId`` when the destination is not offered it
        (what the submit checks before admission; the offer does not depend on the cart)."""
        if option_id is None:
            return
        country, _ = self._destination(shipping_address)
        choose(self.shipping.options(subtotal=0, country=country, currency=currency), option_id)

    def total_check(
        self,
        shipping_address: Mapping[str, Any] | None,
        currency: str,
        shipping_option_id: str | None = None,
    ) -> TotalCheck | None:
        """The terms admit.lua prices a cart with, for this destination (the same rules as
        :meth:`price`, shipping by :func:`shipping.bound_option`); None when a strategy is
        not a table (the worker's pricing decides)."""
        if not isinstance(self.shipping, TableShipping) or not isinstance(self.tax, TableTax):
            return None
        country, region = self._destination(shipping_address)
        option = bound_option(self.shipping.listed(country, currency), shipping_option_id)
        return TotalCheck(
            currency=currency.lower(),
            tax_basis_points=self.tax.rate_for(country, region),
            shipping=0 if option is None else option.amount,
            free_over=None if option is None else option.free_over,
        )

    def _destination(self, shipping_address: Mapping[str, Any] | None) -> tuple[str, str | None]:
        """``(country, region)`` of an address; the home country without one."""
        address = shipping_address or {}
        country = str(address.get("country") or self.home_country).upper()
        return country, address.get("state") or None

    def _goods(
        self,
        index: int,
        sku: str,
        quantity: int,
        currency: str,
        products: Mapping[str, ProductPrice],
    ) -> LineItem:
        """One line before tax; InvalidRequest on ``items.N.sku`` for a SKU not sold."""
        product = products.get(sku)
        if product is None:
            raise InvalidRequest("Unknown SKU.", fields={f"items.{index}.sku": ["Unknown SKU."]})
        if product.currency.lower() != currency:
            message = f"Not sold in {currency.upper()}."
            raise InvalidRequest(message, fields={f"items.{index}.sku": [message]})
        amount = product.unit_amount * quantity
        return LineItem(sku, product.name, quantity, product.unit_amount, amount)


DEFAULT_PRICER = Pricer()


def price_cart(
    items: Sequence[tuple[str, int]],
    shipping_address: Mapping[str, Any] | None,
    currency: str,
    products: Mapping[str, ProductPrice],
    *,
    shipping_option_id: str | None = None,
    promotion: PromotionTerms | None = None,
    pricer: Pricer = DEFAULT_PRICER,
) -> Quote:
    """Price a cart with the default (or the given) strategies; raises InvalidRequest."""
    return pricer.price(
        items,
        shipping_address,
        currency,
        products,
        shipping_option_id=shipping_option_id,
        promotion=promotion,
    )


def check_shipping_option(
    shipping_address: Mapping[str, Any] | None,
    currency: str,
    option_id: str | None,
    *,
    pricer: Pricer = DEFAULT_PRICER,
) -> None:
    """The default pricer's :meth:`Pricer.check_shipping_option`."""
    pricer.check_shipping_option(shipping_address, currency, option_id)


def total_check(
    shipping_address: Mapping[str, Any] | None,
    currency: str,
    shipping_option_id: str | None = None,
    *,
    pricer: Pricer = DEFAULT_PRICER,
) -> TotalCheck | None:
    """The default pricer's :meth:`Pricer.total_check` (the submit's terms for admit.lua)."""
    return pricer.total_check(shipping_address, currency, shipping_option_id)
