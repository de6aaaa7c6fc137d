"""Returning buyers' Stripe Customers (app/services/customers.py) and what the worker
does with them: one Customer per JWT user id, the intent made for it, the card saved when
asked, and a CustomerSession secret in a JWT buyer's checkout status."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import PaymentProviderError
from app.services import checkout_status, customers
from app.services.checkout import create_order_from_submission
from models import BuyerCustomer
from tests.fakes import admit_checkout, stock


@pytest.fixture(autouse=True)
def _tees(runtime: Any) -> None:
    stock(runtime.redis, "TEE", on_hand=20, price=2000)


def place(runtime: Any, **kwargs: Any) -> Any:
    submission = admit_checkout(runtime.redis, [("TEE", 1)], **kwargs)
    order = create_order_from_submission(submission.order_id, runtime)
    assert order is not None
    return order


class TestEnsureCustomer:
    def test_one_customer_per_user_created_once(self, runtime: Any, gateway: Any) -> None:
        first = customers.ensure_customer("u-1", gateway)
        again = customers.ensure_customer("u-1", gateway)
        assert first == again
        assert [c for c, _ in gateway.calls].count("create_customer") == 1
        assert BuyerCustomer.get_by_id("u-1").stripe_customer_id == first

    def test_the_key_comes_from_the_user_id(self, runtime: Any, gateway: Any) -> None:
        made = customers.ensure_customer("u-1", gateway)
        BuyerCustomer.delete().execute()  # a lost row: the same key finds the same Customer
        assert customers.ensure_customer("u-1", gateway) == made

    def test_after_an_erasure_a_new_customer_gets_a_new_key(
        self, runtime: Any, gateway: Any
    ) -> None:
        old = customers.ensure_customer("u-1", gateway)
        assert customers.forget_customer("u-1") == old
        gateway.delete_customer(old)
        new = customers.ensure_customer("u-1", gateway)
        assert new != old
        assert BuyerCustomer.get_by_id("u-1").generation == 1

    def test_a_retryable_error_propagates(self, runtime: Any, gateway: Any) -> None:
        gateway.fail_next("create_customer", PaymentProviderError("down", retryable=True))
        with pytest.raises(PaymentProviderError):
            customers.ensure_customer("u-1", gateway)
        assert BuyerCustomer.get_or_none(BuyerCustomer.user_id == "u-1") is None


class TestIntentsOfReturningBuyers:
    def test_a_jwt_buyers_intent_carries_their_customer(self, runtime: Any, gateway: Any) -> None:
        order = place(runtime, user_id="u-1")
        intent = gateway.intents[order.payment_intent_id]
        assert intent.customer == customers.customer_of("u-1")
        assert intent.setup_future_usage is None

    def test_save_payment_method_adds_setup_future_usage(self, runtime: Any, gateway: Any) -> None:
        order = place(runtime, user_id="u-1", save_payment_method=True)
        intent = gateway.intents[order.payment_intent_id]
        assert intent.setup_future_usage == "on_session"
        gateway.confirm(intent.id)
        [card] = gateway.list_saved_cards(customers.customer_of("u-1"))
        assert card.last4 == "4242"

    def test_two_orders_share_one_customer(self, runtime: Any, gateway: Any) -> None:
        first, second = place(runtime, user_id="u-1"), place(runtime, user_id="u-1")
        assert (
            gateway.intents[first.payment_intent_id].customer
            == gateway.intents[second.payment_intent_id].customer
        )

    def test_a_guest_intent_has_no_customer(self, runtime: Any, gateway: Any) -> None:
        order = place(runtime)
        assert gateway.intents[order.payment_intent_id].customer is None
        assert "create_customer" not in [c for c, _ in gateway.calls]


class TestCustomerSessionInTheStatus:
    def test_a_jwt_buyer_gets_a_customer_session_secret(self, runtime: Any, gateway: Any) -> None:
        order = place(runtime, user_id="u-1")
        view = checkout_status.read(runtime.redis, order.id) or {}
        secret = view.get("customerSessionClientSecret")
        assert secret and secret.startswith("cuss_secret_")
        assert gateway.customer_sessions[secret] == customers.customer_of("u-1")

    def test_a_rerun_does_not_make_another(self, runtime: Any, gateway: Any) -> None:
        order = place(runtime, user_id="u-1")
        create_order_from_submission(order.id, runtime)
        assert [c for c, _ in gateway.calls].count("create_customer_session") == 1

    def test_a_permanent_refusal_leaves_the_checkout_payable(
        self, runtime: Any, gateway: Any
    ) -> None:
        refusal = PaymentProviderError("no", retryable=False)
        gateway.fail_next("create_customer_session", refusal)
        order = place(runtime, user_id="u-1")
        view = checkout_status.read(runtime.redis, order.id) or {}
        assert view.get("clientSecret")
        assert not view.get("customerSessionClientSecret")

    def test_a_guest_gets_none(self, runtime: Any, gateway: Any) -> None:
        order = place(runtime)
        assert "create_customer_session" not in [c for c, _ in gateway.calls]
        assert not (checkout_status.read(runtime.redis, order.id) or {}).get(
            "customerSessionClientSecret"
        )
