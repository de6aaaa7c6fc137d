"""One table of payment scenarios, run against FakeGateway AND the real StripeGateway on
the local emulator (issue 10, item 7): the fake that 480+ tests rely on cannot drift
from what the Stripe adapter really answers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import stripe

from app.errors import PaymentProviderError
from app.gateways.payments import SessionLine, StripeGateway
from tests.fakes import FakeGateway

emulator = pytest.importorskip("devstack.stripe_emulator", reason="Stripe emulator not present")


@dataclass
class Subject:
    """A gateway and how a buyer confirms its intents (Stripe.js's part)."""

    gateway: Any
    confirm: Callable[[str, str], None]
    # Pays a Checkout Session as its hosted page would (the emulator's control endpoint).
    pay: Callable[[str, str], None]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with emulator.EmulatorServer(async_delay=0.05) as srv:
        yield srv


@pytest.fixture(params=["fake", "stripe"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "fake":
        fake = FakeGateway()
        return Subject(
            fake,
            lambda intent_id, method: fake.confirm(intent_id, method) and None,
            lambda session_id, method: fake.pay_session(session_id, method) and None,
        )
    server = request.getfixturevalue("server")
    server.reset()
    real = StripeGateway(
        api_key="sk_test_parity",
        api_base=server.url,
        webhook_secrets=("whsec_parity",),
        sleep=lambda _seconds: None,
        timeout=10,
    )

    def confirm(intent_id: str, method: str) -> None:
        # A decline is an error at Stripe (CardError); the intent's status is what counts.
        with contextlib.suppress(stripe.CardError):
            real.client.v1.payment_intents.confirm(
                intent_id, {"payment_method": method, "return_url": "https://shop.example/done"}
            )

    def pay(session_id: str, method: str) -> None:
        requests.post(
            f"{server.url}/_emulator/checkout_sessions/{session_id}/pay",
            json={"paymentMethod": method},
            timeout=10,
        )

    return Subject(real, confirm, pay)


def create(gateway: Any, key: str = "pi-create-o1", amount: int = 4599) -> Any:
    return gateway.create_intent(
        amount=amount,
        currency="usd",
        idempotency_key=key,
        metadata={"orderId": "o1", "reservationId": "r1"},
        receipt_email="ada@example.com",
        description="Order ORD-1",
    )


# (payment method, status after confirming, decline code or None)
CONFIRMATIONS = [
    ("pm_card_visa", "succeeded", None),
    ("pm_card_chargeDeclined", "requires_payment_method", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "requires_payment_method", "insufficient_funds"),
    ("pm_card_threeDSecure2Required", "requires_action", None),
    ("pm_card_authenticationRequired", "requires_action", None),
    ("pm_emulator_delayed", "processing", None),
]


class TestSameAnswers:
    def test_a_new_intent(self, subject: Subject) -> None:
        intent = create(subject.gateway)
        assert intent.status == "requires_payment_method"
        assert (intent.amount, intent.currency) == (4599, "usd")
        assert intent.metadata == {"orderId": "o1", "reservationId": "r1"}
        assert intent.client_secret and intent.client_secret.startswith(intent.id)
        assert intent.last_error is None and intent.latest_charge is None

    def test_a_repeated_key_returns_the_same_intent(self, subject: Subject) -> None:
        first = create(subject.gateway)
        assert create(subject.gateway).id == first.id

    def test_a_repeated_key_with_other_parameters_is_a_permanent_error(
        self, subject: Subject
    ) -> None:
        create(subject.gateway)
        with pytest.raises(PaymentProviderError) as caught:
            create(subject.gateway, amount=100)
        assert caught.value.retryable is False
        assert caught.value.provider_code == "idempotency_error"

    @pytest.mark.parametrize(("method", "status", "decline"), CONFIRMATIONS)
    def test_confirming_with_a_test_method(
        self, subject: Subject, method: str, status: str, decline: str | None
    ) -> None:
        intent = create(subject.gateway)
        subject.confirm(intent.id, method)
        now = subject.gateway.retrieve_intent(intent.id)
        assert now.status == status
        if decline is None:
            assert now.last_error is None
        else:
            assert now.last_error is not None
            assert (now.last_error.code, now.last_error.decline_code) == ("card_declined", decline)
        # A declined or pending attempt has its (failed / pending) charge as well.
        assert (now.latest_charge is not None) == (status != "requires_action")

    def test_canceling_an_open_intent(self, subject: Subject) -> None:
        intent = create(subject.gateway)
        canceled = subject.gateway.cancel_intent(
            intent.id, reason="abandoned", idempotency_key="pi-cancel-o1"
        )
        assert canceled.status == "canceled"
        assert subject.gateway.retrieve_intent(intent.id).status == "canceled"

    @pytest.mark.parametrize("method", ["pm_card_visa", "pm_emulator_delayed"])
    def test_canceling_an_intent_that_moved_on_is_refused(
        self, subject: Subject, method: str
    ) -> None:
        intent = create(subject.gateway)
        subject.confirm(intent.id, method)
        with pytest.raises(PaymentProviderError) as caught:
            subject.gateway.cancel_intent(
                intent.id, reason="abandoned", idempotency_key="pi-cancel-o1"
            )
        assert caught.value.retryable is False
        assert caught.value.provider_code == "payment_intent_unexpected_state"

    def test_an_unknown_intent_is_a_permanent_error(self, subject: Subject) -> None:
        with pytest.raises(PaymentProviderError) as caught:
            subject.gateway.retrieve_intent("pi_does_not_exist")
        assert caught.value.retryable is False
        assert caught.value.provider_code == "resource_missing"

    @pytest.mark.parametrize("amount", [None, 1000])
    def test_refunding_a_paid_intent(self, subject: Subject, amount: int | None) -> None:
        intent = create(subject.gateway)
        subject.confirm(intent.id, "pm_card_visa")
        refund = subject.gateway.create_refund(
            intent_id=intent.id,
            amount=amount,
            reason="requested_by_customer",
            idempotency_key="refund-rf1",
            metadata={"orderId": "o1", "refundId": "rf1"},
        )
        assert refund["amount"] == (4599 if amount is None else amount)
        assert refund["payment_intent"] == intent.id
        assert refund["metadata"] == {"orderId": "o1", "refundId": "rf1"}
        again = subject.gateway.create_refund(
            intent_id=intent.id,
            amount=amount,
            reason="requested_by_customer",
            idempotency_key="refund-rf1",
            metadata={"orderId": "o1", "refundId": "rf1"},
        )
        assert again["id"] == refund["id"]

    def test_refund_and_charge_re_read_as_the_webhooks_need(self, subject: Subject) -> None:
        intent = create(subject.gateway)
        subject.confirm(intent.id, "pm_card_visa")
        refund = subject.gateway.create_refund(
            intent_id=intent.id,
            amount=1000,
            reason=None,
            idempotency_key="refund-rf1",
            metadata={"orderId": "o1", "refundId": "rf1"},
        )
        read = subject.gateway.retrieve_refund(refund["id"])
        assert (read["status"], read["amount"], read["currency"]) == ("succeeded", 1000, "usd")
        assert read["payment_intent"] == intent.id
        assert [r["id"] for r in subject.gateway.list_refunds(intent.id)] == [refund["id"]]
        charge_id = subject.gateway.retrieve_intent(intent.id).latest_charge
        charge = subject.gateway.retrieve_charge(charge_id)
        assert (charge["payment_intent"], charge["amount"], charge["currency"]) == (
            intent.id,
            4599,
            "usd",
        )
        assert charge["amount_refunded"] == 1000

    @pytest.mark.parametrize(
        ("verb", "object_id"),
        [
            ("retrieve_refund", "re_does_not_exist"),
            ("retrieve_charge", "ch_does_not_exist"),
            ("retrieve_dispute", "dp_does_not_exist"),
        ],
    )
    def test_an_unknown_object_is_resource_missing(
        self, subject: Subject, verb: str, object_id: str
    ) -> None:
        with pytest.raises(PaymentProviderError) as caught:
            getattr(subject.gateway, verb)(object_id)
        assert (caught.value.retryable, caught.value.provider_code) == (False, "resource_missing")


def open_session(
    gateway: Any,
    key: str = "cs-create-o1",
    expires_in: int = 3600,
    discount: int = 0,
    capture_method: str = "automatic",
) -> Any:
    return gateway.create_checkout_session(
        lines=[SessionLine("Mug", 1400, 2), SessionLine("Tax", 231, 1)],
        shipping=SessionLine("Shipping", 500, 1),
        currency="usd",
        customer_email="ada@example.com",
        metadata={"orderId": "o1", "reservationId": "r1", "orderNumber": "ORD-1"},
        success_url="https://shop.example/done?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="https://shop.example/cart",
        expires_at=int(time.time()) + expires_in,
        idempotency_key=key,
        discount=discount,
        capture_method=capture_method,
    )


class TestCheckoutSessions:
    def test_a_new_session_totals_our_lines_and_shipping(self, subject: Subject) -> None:
        session = open_session(subject.gateway)
        assert (session.status, session.payment_status) == ("open", "unpaid")
        assert (session.amount_total, session.currency) == (2 * 1400 + 231 + 500, "usd")
        assert session.url and session.payment_intent is None
        assert session.metadata["orderId"] == "o1"
        assert open_session(subject.gateway).id == session.id
        assert subject.gateway.retrieve_checkout_session(session.id) == session

    def test_a_discount_comes_off_the_lines_and_a_retry_reuses_everything(
        self, subject: Subject
    ) -> None:
        session = open_session(subject.gateway, discount=300)
        assert session.amount_total == 2 * 1400 + 231 - 300 + 500
        assert open_session(subject.gateway, discount=300).id == session.id

    def test_expires_at_under_30_minutes_is_a_permanent_error(self, subject: Subject) -> None:
        with pytest.raises(PaymentProviderError) as caught:
            open_session(subject.gateway, expires_in=600)
        assert caught.value.retryable is False

    @pytest.mark.parametrize(
        ("method", "status", "payment_status", "intent_status"),
        [
            ("pm_card_visa", "complete", "paid", "succeeded"),
            ("pm_card_chargeDeclined", "open", "unpaid", "requires_payment_method"),
            ("pm_card_threeDSecure2Required", "open", "unpaid", "requires_action"),
            ("pm_emulator_bank_debit", "complete", "unpaid", "processing"),
        ],
    )
    def test_paying_moves_the_session_with_its_intent(
        self, subject: Subject, method: str, status: str, payment_status: str, intent_status: str
    ) -> None:
        session = open_session(subject.gateway)
        subject.pay(session.id, method)
        now = subject.gateway.retrieve_checkout_session(session.id)
        assert (now.status, now.payment_status) == (status, payment_status)
        assert now.payment_intent is not None
        intent = subject.gateway.retrieve_intent(now.payment_intent)
        assert intent.status == intent_status
        assert (intent.amount, intent.metadata["orderId"]) == (now.amount_total, "o1")

    def test_manual_capture_completes_unpaid_with_an_authorised_intent(
        self, subject: Subject
    ) -> None:
        session = open_session(subject.gateway, capture_method="manual")
        subject.pay(session.id, "pm_card_visa")
        now = subject.gateway.retrieve_checkout_session(session.id)
        assert (now.status, now.payment_status) == ("complete", "unpaid")
        assert subject.gateway.retrieve_intent(now.payment_intent).status == "requires_capture"

    def test_expiring_an_open_session_cancels_its_unpaid_intent(self, subject: Subject) -> None:
        session = open_session(subject.gateway)
        subject.pay(session.id, "pm_card_chargeDeclined")
        expired = subject.gateway.expire_checkout_session(session.id, idempotency_key="cs-exp-o1")
        assert (expired.status, expired.url) == ("expired", None)
        assert subject.gateway.retrieve_intent(expired.payment_intent).status == "canceled"

    def test_expiring_a_paid_session_is_refused(self, subject: Subject) -> None:
        session = open_session(subject.gateway)
        subject.pay(session.id, "pm_card_visa")
        with pytest.raises(PaymentProviderError) as caught:
            subject.gateway.expire_checkout_session(session.id, idempotency_key="cs-exp-o1")
        assert caught.value.retryable is False


class TestReturningBuyers:
    """Wave 3: Customers, saved cards and CustomerSessions answer alike."""

    def paid_with_saving(self, subject: Subject, customer: str) -> Any:
        intent = subject.gateway.create_intent(
            amount=2500,
            currency="usd",
            idempotency_key=f"pi-create-{customer}",
            metadata={"orderId": "o1", "reservationId": "r1"},
            receipt_email=None,
            description="Order ORD-1",
            customer=customer,
            setup_future_usage="on_session",
        )
        assert (intent.customer, intent.setup_future_usage) == (customer, "on_session")
        subject.confirm(intent.id, "pm_card_visa")
        return intent

    def test_one_customer_per_key(self, subject: Subject) -> None:
        first = subject.gateway.create_customer(user_id="u1", idempotency_key="customer-u1")
        again = subject.gateway.create_customer(user_id="u1", idempotency_key="customer-u1")
        other = subject.gateway.create_customer(user_id="u2", idempotency_key="customer-u2")
        assert first == again != other

    def test_a_payment_with_setup_future_usage_saves_its_card(self, subject: Subject) -> None:
        ada = subject.gateway.create_customer(user_id="ada", idempotency_key="customer-ada")
        bob = subject.gateway.create_customer(user_id="bob", idempotency_key="customer-bob")
        self.paid_with_saving(subject, ada)
        [card] = subject.gateway.list_saved_cards(ada)
        assert (card.brand, card.last4) == ("visa", "4242")
        assert card.exp_month >= 1 and card.exp_year >= 2025
        assert subject.gateway.retrieve_saved_card(ada, card.id) == card
        assert subject.gateway.retrieve_saved_card(bob, card.id) is None
        assert subject.gateway.retrieve_saved_card(ada, "pm_does_not_exist") is None
        assert subject.gateway.list_saved_cards(bob) == []
        subject.gateway.detach_payment_method(card.id)
        assert subject.gateway.list_saved_cards(ada) == []

    def test_a_customer_session_secret(self, subject: Subject) -> None:
        ada = subject.gateway.create_customer(user_id="ada", idempotency_key="customer-ada")
        assert subject.gateway.create_customer_session(ada).startswith("cuss_secret_")

    def test_deleting_a_customer_twice_is_fine_and_it_is_gone(self, subject: Subject) -> None:
        ada = subject.gateway.create_customer(user_id="ada", idempotency_key="customer-ada")
        self.paid_with_saving(subject, ada)
        subject.gateway.delete_customer(ada)
        subject.gateway.delete_customer(ada)
        with pytest.raises(PaymentProviderError) as caught:
            subject.gateway.list_saved_cards(ada)
        assert caught.value.provider_code == "resource_missing"
        assert caught.value.retryable is False
