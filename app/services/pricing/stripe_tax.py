"""Stripe Tax as a whole-cart tax strategy (``TAX_PROVIDER=stripe``).

One calculation prices every line (each on its amount less its share of the discount)
and the shipping cost for the destination, through the payment gateway (so under the
fleet's Stripe request budget). The answer is cached in Redis under a hash of exactly
what was priced — lines, shipping option and amount, discount, destination, currency —
for a quote's life, so repeated quotes do not ask Stripe again, and the worker pricing
the submitted cart reuses the calculation the buyer was quoted.

Failures: a retryable Stripe error (outage, rate limit) or an unusable answer is
:class:`~app.errors.TaxUnavailable` (503 ``tax_unavailable`` at the quote, a retry in
the worker); Stripe refusing the address is ``validation_failed`` on ``shippingAddress``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis import Redis

from app import keys
from app.errors import InvalidRequest, PaymentProviderError, TaxUnavailable
from app.gateways.payments import PaymentGateway, TaxLine
from app.services.pricing import DEFAULT_PRICER, CartTax, Pricer, TaxableCart

if TYPE_CHECKING:
    from app.runtime import Runtime

# Our address fields → Stripe's (the submit's ``shippingAddress`` is camelCase).
ADDRESS_FIELDS = {
    "country": "country",
    "state": "state",
    "postalCode": "postal_code",
    "city": "city",
    "line1": "line1",
    "line2": "line2",
}
# Stripe's codes for an address it cannot place in a tax jurisdiction.
LOCATION_CODES = frozenset({"customer_tax_location_invalid", "tax_location_invalid"})
UNAVAILABLE_MESSAGE = "Tax cannot be calculated right now; retry in a moment."


def stripe_address(address: dict[str, Any] | Any) -> dict[str, str]:
    """The destination in Stripe's keys, empty fields left out."""
    return {
        theirs: str(address[ours])
        for ours, theirs in ADDRESS_FIELDS.items()
        if address.get(ours) not in (None, "")
    }


def cart_hash(cart: TaxableCart) -> str:
    """A stable digest of everything the calculation depends on."""
    material = {
        "lines": [list(line) for line in cart.lines],
        "shipping": cart.shipping,
        "shippingOptionId": cart.shipping_option_id,
        "discount": cart.discount,
        "address": stripe_address(cart.address),
        "currency": cart.currency,
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class StripeTax:
    """Tax from Stripe Tax, one calculation per distinct cart, cached ``ttl_seconds``."""

    gateway: PaymentGateway
    redis: Redis
    ttl_seconds: int = 900

    def cart_tax(self, cart: TaxableCart) -> CartTax:
        """The cached calculation of this exact cart, else a new one (then cached)."""
        key = keys.tax_calculation(cart_hash(cart))
        cached = self.redis.get(key)
        if cached:
            data = json.loads(cached)
            return CartTax(tuple(data["lineTaxes"]), data["shippingTax"], data["id"])
        taxed, expires_at = self._calculate(cart)
        ttl = self._ttl(expires_at)
        if ttl > 0:
            body = {
                "id": taxed.calculation_id,
                "lineTaxes": list(taxed.line_taxes),
                "shippingTax": taxed.shipping_tax,
            }
            self.redis.set(key, json.dumps(body), ex=ttl)
        return taxed

    def _calculate(self, cart: TaxableCart) -> tuple[CartTax, int | None]:
        """Ask Stripe (once); the cart's tax and when the calculation expires."""
        lines = [TaxLine(sku, amount, quantity) for sku, quantity, amount in cart.lines]
        try:
            calc = self.gateway.calculate_tax(
                currency=cart.currency,
                lines=lines,
                shipping=cart.shipping,
                address=stripe_address(cart.address),
            )
        except PaymentProviderError as exc:
            raise refusal(exc) from exc
        if len(calc.line_taxes) != len(lines):
            # Stripe lists up to its page size inline: never price a cart half-taxed.
            raise TaxUnavailable(UNAVAILABLE_MESSAGE)
        return CartTax(calc.line_taxes, calc.shipping_tax, calc.id), calc.expires_at

    def _ttl(self, expires_at: int | None) -> int:
        """A quote's life, never past the calculation's own expiry."""
        if expires_at is None:
            return self.ttl_seconds
        return min(self.ttl_seconds, expires_at - int(time.time()))


def refusal(exc: PaymentProviderError) -> InvalidRequest | TaxUnavailable:
    """What a failed calculation means for the buyer: a bad address (their input) or
    Stripe Tax being unavailable (retry)."""
    if not exc.retryable and exc.provider_code in LOCATION_CODES:
        message = "Tax cannot be calculated for this address."
        return InvalidRequest(message, fields={"shippingAddress": [message]})
    return TaxUnavailable(UNAVAILABLE_MESSAGE)


def pricer_for(runtime: Runtime) -> Pricer:
    """The pricer ``TAX_PROVIDER`` asks for: the table (default), or Stripe Tax through
    the runtime's gateway with its Redis as the calculations' cache."""
    config = runtime.config
    if config.tax_provider != "stripe":
        return DEFAULT_PRICER
    tax = StripeTax(runtime.gateway, runtime.redis, ttl_seconds=config.hold_ttl_seconds)
    return Pricer(tax=tax)
