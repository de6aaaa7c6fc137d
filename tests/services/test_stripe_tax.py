"""Stripe Tax as the pricing strategy (TAX_PROVIDER=stripe), on the fake gateway: one
calculation per distinct cart, cached for the quote's life and reused by the worker;
Stripe unavailable is ``tax_unavailable`` (retried by the worker), a refused address is
``validation_failed``; the table strategy is untouched."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from app import keys
from app.errors import InvalidRequest, PaymentProviderError, TaxUnavailable
from app.services import catalog
from app.services.checkout import create_order_from_submission
from app.services.pricing import DEFAULT_PRICER, Pricer, ProductPrice
from app.services.pricing.promotions import PromotionTerms
from app.services.pricing.stripe_tax import StripeTax, pricer_for
from models import Order
from tasks.broker import should_retry
from tests.fakes import admit_checkout, stock

PRODUCTS = {
    "TEE": ProductPrice("TEE", "Tee", 2000, "usd"),
    "MUG": ProductPrice("MUG", "Mug", 1250, "usd"),
}
CA = {"country": "US", "state": "CA", "postalCode": "90001", "city": "LA"}
OUTAGE = PaymentProviderError("Stripe is down", retryable=True, provider_code=None)


@pytest.fixture
def config(config: Any) -> Any:
    """This module's service runs with ``TAX_PROVIDER=stripe``."""
    return config.with_overrides(tax_provider="stripe")


@pytest.fixture
def pricer(runtime: Any) -> Pricer:
    return pricer_for(runtime)


def calculations(gateway: Any) -> list[dict[str, Any]]:
    return [params for name, params in gateway.calls if name == "calculate_tax"]


class TestPricing:
    def test_one_calculation_taxes_the_lines_and_the_shipping(
        self, pricer: Pricer, gateway: Any
    ) -> None:
        quote = pricer.price([("TEE", 2), ("MUG", 1)], CA, "usd", PRODUCTS)
        # The fake taxes 8 % in the US: 320 + 100 on the goods, shipping taxed too.
        shipping_tax = (2 * quote.shipping * 800 + 10_000) // 20_000
        assert [line.tax for line in quote.line_items] == [320, 100]
        assert quote.tax == 420 + shipping_tax
        assert quote.total == quote.subtotal + quote.shipping + quote.tax
        assert quote.tax_calculation_id is not None
        (sent,) = calculations(gateway)
        assert [(x.reference, x.amount, x.quantity) for x in sent["lines"]] == [
            ("TEE", 4000, 2),
            ("MUG", 1250, 1),
        ]
        assert sent["shipping"] == quote.shipping
        assert sent["address"] == {"country": "US", "state": "CA", "postal_code": "90001",
                                   "city": "LA"}  # fmt: skip

    def test_the_discount_is_taken_off_each_line_before_tax(
        self, pricer: Pricer, gateway: Any
    ) -> None:
        terms = PromotionTerms(code="TEN", currency="usd", percent_off=10)
        quote = pricer.price([("TEE", 2), ("MUG", 1)], CA, "usd", PRODUCTS, promotion=terms)
        (sent,) = calculations(gateway)
        assert sum(x.amount for x in sent["lines"]) == quote.subtotal - quote.discount

    def test_a_repeated_quote_reuses_the_calculation(
        self, pricer: Pricer, gateway: Any, runtime: Any
    ) -> None:
        first = pricer.price([("TEE", 2)], CA, "usd", PRODUCTS)
        again = pricer.price([("TEE", 2)], CA, "usd", PRODUCTS)
        assert again == first
        assert len(calculations(gateway)) == 1
        (key,) = runtime.redis.keys(keys.TAX_CALCULATION_PREFIX + "*")
        assert 0 < runtime.redis.ttl(key) <= runtime.config.hold_ttl_seconds

    @pytest.mark.parametrize(
        "change",
        [
            {"items": [("TEE", 3)]},
            {"address": {**CA, "state": "NY"}},
            {"shipping_option_id": "express"},
            {"promotion": PromotionTerms(code="OFF5", currency="usd", amount_off=500)},
        ],
    )
    def test_another_cart_destination_option_or_discount_is_calculated_anew(
        self, pricer: Pricer, gateway: Any, change: dict[str, Any]
    ) -> None:
        pricer.price([("TEE", 2)], CA, "usd", PRODUCTS)
        pricer.price(
            change.get("items", [("TEE", 2)]),
            change.get("address", CA),
            "usd",
            PRODUCTS,
            shipping_option_id=change.get("shipping_option_id"),
            promotion=change.get("promotion"),
        )
        assert len(calculations(gateway)) == 2

    def test_stripe_unavailable_is_tax_unavailable_and_not_cached(
        self, pricer: Pricer, gateway: Any
    ) -> None:
        gateway.fail_next("calculate_tax", OUTAGE)
        with pytest.raises(TaxUnavailable) as caught:
            pricer.price([("TEE", 2)], CA, "usd", PRODUCTS)
        assert (caught.value.status, caught.value.code) == (503, "tax_unavailable")
        assert pricer.price([("TEE", 2)], CA, "usd", PRODUCTS).tax > 0
        assert len(calculations(gateway)) == 2

    def test_an_address_stripe_cannot_place_is_a_validation_error(
        self, pricer: Pricer, gateway: Any
    ) -> None:
        refused = PaymentProviderError(
            "bad address", retryable=False, provider_code="customer_tax_location_invalid"
        )
        gateway.fail_next("calculate_tax", refused)
        with pytest.raises(InvalidRequest) as caught:
            pricer.price([("TEE", 2)], CA, "usd", PRODUCTS)
        assert "shippingAddress" in caught.value.fields

    def test_the_table_stays_the_default(self, runtime: Any) -> None:
        table = SimpleNamespace(
            config=runtime.config.with_overrides(tax_provider="table"),
            gateway=runtime.gateway,
            redis=runtime.redis,
        )
        assert pricer_for(table) is DEFAULT_PRICER  # type: ignore[arg-type]
        assert isinstance(pricer_for(runtime).tax, StripeTax)


class TestQuoteAndWorker:
    def test_the_worker_prices_with_the_quoted_calculation(
        self, runtime: Any, gateway: Any, pricer: Pricer
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        address = {"line1": "1 Main St", "city": "Springfield", "state": "CA",
                   "postalCode": "90001", "country": "US"}  # fmt: skip
        quoted = catalog.quote(runtime.redis, [("TEE", 2)], address, "usd", pricer=pricer)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        assert len(calculations(gateway)) == 1  # the quote's, reused
        stored = Order.get_by_id(order.id)
        assert stored.tax == quoted["tax"] and stored.total == quoted["total"]
        assert stored.tax_calculation_id is not None
        assert gateway.intents[stored.payment_intent_id].amount == stored.total

    def test_the_worker_retries_while_stripe_tax_is_unavailable(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        gateway.fail_next("calculate_tax", OUTAGE)
        with pytest.raises(TaxUnavailable) as caught:
            create_order_from_submission(submission.order_id, runtime)
        assert should_retry(0, caught.value)
        assert Order.get_or_none(Order.id == submission.order_id) is None
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None and order.tax_calculation_id is not None

    def test_the_hosted_session_charges_the_total_with_stripes_tax(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)], hosted=True)
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None and order.checkout_session_id is not None
        stored = Order.get_by_id(order.id)
        assert stored.tax == 320 + (2 * stored.shipping * 800 + 10_000) // 20_000
        assert gateway.sessions[stored.checkout_session_id].amount_total == stored.total
