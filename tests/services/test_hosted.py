"""Hosted Stripe Checkout through FakeGateway: the session instead of an intent, its
total checked against ours, the events, our own expiry (I8) and ownership (I10)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from app.errors import InvalidRequest, NotFound, PaymentProviderError
from app.gateways.payments import SessionLine
from app.services import admission, checkout_status, hosted
from app.services.checkout import create_order_from_submission, write_submission
from app.services.expiry import cancel_order, expire_hold
from app.services.inventory import Inventory
from app.services.webhooks import handle_event
from models import Order, Reservation
from models.db import utcnow
from tests.fakes import admit_checkout, stock


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def deliver(runtime: Any, gateway: Any, type_: str, obj: Any) -> Any:
    event = gateway.event(type_, obj)
    return handle_event(event["id"], event, runtime)


def later(order: Order) -> Any:
    """A moment past the order's hold, whatever it was extended to."""
    return Reservation.get(Reservation.order == order.id).expires_at + timedelta(seconds=5)


@pytest.fixture
def order(runtime: Any) -> Order:
    """A PENDING hosted order for 2 TEE (5 on hand) with its Checkout Session."""
    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    submission = admit_checkout(runtime.redis, [("TEE", 2)], hosted=True)
    created = create_order_from_submission(submission.order_id, runtime)
    assert created is not None
    return Order.get_by_id(created.id)


class TestSessionInsteadOfIntent:
    def test_the_session_carries_our_lines_metadata_and_expiry(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        assert [c[0] for c in gateway.calls] == ["create_checkout_session"]
        sent = gateway.calls[0][1]
        assert sent["lines"][0] == SessionLine("Product TEE", 2000, 2)
        assert sum(line.unit_amount * line.quantity for line in sent["lines"]) == (
            order.subtotal + order.tax
        )
        if order.tax:
            assert sent["lines"][-1] == SessionLine("Tax", order.tax, 1)
        shipping = sent["shipping"].unit_amount if sent["shipping"] else 0
        assert shipping == order.shipping
        assert sent["customer_email"] == "buyer@example.com"
        assert sent["metadata"] == {
            "orderId": order.id,
            "reservationId": order.reservation_id,
            "orderNumber": order.order_number,
        }
        assert sent["success_url"].endswith("session_id={CHECKOUT_SESSION_ID}")
        assert sent["expires_at"] >= time.time() + 30 * 60
        session = gateway.sessions[order.checkout_session_id]
        assert session.amount_total == order.total
        assert order.payment_intent_id is None
        assert types(order.id) == ["ORDER_CREATED", "STOCK_HELD", "CHECKOUT_SESSION_CREATED"]

    def test_the_hold_lasts_until_the_session_expires(self, runtime: Any, order: Order) -> None:
        reservation = Reservation.get(Reservation.order == order.id)
        assert order.checkout_expires_at is not None
        assert reservation.expires_at >= order.checkout_expires_at
        ttl = runtime.redis.ttl(f"{{shop}}:reservation:{order.reservation_id}")
        assert ttl == -2 or ttl >= 30 * 60  # the record outlives the session's 30 minutes

    def test_the_status_carries_the_checkout_block(self, runtime: Any, order: Order) -> None:
        view = checkout_status.read(runtime.redis, order.id)
        assert view is not None
        assert view["checkout"] == {
            "sessionId": order.checkout_session_id,
            "url": order.checkout_url,
            "expiresAt": order.checkout_expires_at.isoformat() + "Z",
        }
        assert view["checkout"]["url"].startswith("https://checkout.stripe.test/")

    def test_a_second_run_makes_no_second_session(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        again = create_order_from_submission(order.id, runtime)
        assert again is not None and again.checkout_session_id == order.checkout_session_id
        assert len(gateway.sessions) == 1


class TestTotalCheck:
    def test_a_discount_goes_as_a_coupon_so_stripes_total_is_still_ours(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)], hosted=True)
        order = write_submission(submission.order_id, runtime)
        assert order is not None
        # What promotion codes bring: a discount field, and a total that subtracts it.
        order.discount, order.total = 500, order.total - 500
        stored = admission.load_submission(runtime.redis, order.id)
        assert stored is not None

        session = hosted.create_session(order, runtime, stored, utcnow() + timedelta(hours=1))

        assert gateway.calls[-1][1]["discount"] == 500
        assert hosted.total_mismatch(order, session) is None

    def test_a_total_stripe_disagrees_with_fails_the_order_and_expires_the_session(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        gateway.session_total_skew = 1
        submission = admit_checkout(runtime.redis, [("TEE", 2)], hosted=True)

        order = create_order_from_submission(submission.order_id, runtime)

        assert order is not None and order.state == "FAILED"
        assert order.checkout_session_id is None
        (session,) = gateway.sessions.values()
        assert session.status == "expired"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}
        view = checkout_status.read(runtime.redis, order.id)
        assert view is not None and view["error"]["code"] == "amount_mismatch"
        assert "nothing was charged" in view["error"]["message"]

    def test_a_refused_session_fails_the_order(self, runtime: Any, gateway: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        gateway.fail_next(
            "create_checkout_session",
            PaymentProviderError("bad", retryable=False, provider_code="parameter_invalid"),
        )
        submission = admit_checkout(runtime.redis, [("TEE", 2)], hosted=True)

        order = create_order_from_submission(submission.order_id, runtime)

        assert order is not None and order.state == "FAILED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}


class TestEvents:
    def test_completed_paid_makes_the_order_paid_with_the_sessions_intent(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.pay_session(order.checkout_session_id, "pm_card_visa")
        session = gateway.retrieve_checkout_session(order.checkout_session_id)

        outcome = deliver(runtime, gateway, "checkout.session.completed", session)

        paid = Order.get_by_id(order.id)
        assert outcome.status == "processed"
        assert (paid.state, paid.payment_intent_id) == ("PAID", intent.id)
        assert Reservation.get(Reservation.order == order.id).status == "CONFIRMED"
        assert "PAYMENT_MISMATCH_IGNORED" not in types(order.id)

    def test_the_intents_own_event_first_is_adopted_not_ignored(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.pay_session(order.checkout_session_id, "pm_card_visa")
        gateway.calls.clear()

        deliver(runtime, gateway, "payment_intent.succeeded", intent)

        assert Order.get_by_id(order.id).state == "PAID"
        assert "PAYMENT_MISMATCH_IGNORED" not in types(order.id)
        # The session, to learn the intent is its own; the succeeded intent is not re-read.
        assert [name for name, _ in gateway.calls] == ["retrieve_checkout_session"]

    def test_an_intent_that_is_not_the_sessions_is_ignored_and_audited(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        stray = gateway.create_intent(
            amount=order.total,
            currency="usd",
            idempotency_key="stray",
            metadata={"orderId": order.id},
            receipt_email=None,
            description="not this order's session",
        )
        paid = gateway.confirm(stray.id, "pm_card_visa")

        deliver(runtime, gateway, "payment_intent.succeeded", paid)

        after = Order.get_by_id(order.id)
        assert (after.state, after.payment_intent_id) == ("PENDING", None)
        assert "PAYMENT_MISMATCH_IGNORED" in types(order.id)

    def test_manual_capture_authorises(self, runtime: Any, gateway: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(
            runtime.redis, [("TEE", 2)], hosted=True, capture_method="manual"
        )
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None and order.checkout_session_id
        assert gateway.calls[0][1]["capture_method"] == "manual"
        gateway.pay_session(order.checkout_session_id, "pm_card_visa")
        session = gateway.retrieve_checkout_session(order.checkout_session_id)

        deliver(runtime, gateway, "checkout.session.completed", session)

        assert Order.get_by_id(order.id).state == "AUTHORIZED"

    def test_a_bank_debit_is_processing_then_paid(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.pay_session(order.checkout_session_id, "pm_emulator_bank_debit")
        session = gateway.retrieve_checkout_session(order.checkout_session_id)
        assert (session.status, session.payment_status) == ("complete", "unpaid")

        deliver(runtime, gateway, "checkout.session.completed", session)
        waiting = Order.get_by_id(order.id)
        assert (waiting.state, waiting.payment_status) == ("PENDING", "processing")
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
        gateway.settle(intent.id, "succeeded")
        session = gateway.retrieve_checkout_session(order.checkout_session_id)
        deliver(runtime, gateway, "checkout.session.async_payment_succeeded", session)

        assert Order.get_by_id(order.id).state == "PAID"

    def test_a_failed_bank_debit_is_recorded(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.pay_session(order.checkout_session_id, "pm_emulator_bank_debit")
        gateway.settle(intent.id, "failed")
        session = gateway.retrieve_checkout_session(order.checkout_session_id)

        deliver(runtime, gateway, "checkout.session.async_payment_failed", session)

        assert "PAYMENT_FAILED" in types(order.id)
        assert Order.get_by_id(order.id).state == "PENDING"  # the expiry ends it

    def test_expired_releases_the_hold_and_cancels(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        session = gateway.expire_checkout_session(order.checkout_session_id, idempotency_key="k")

        deliver(runtime, gateway, "checkout.session.expired", session)

        closed = Order.get_by_id(order.id)
        assert closed.state == "CANCELED"
        assert Reservation.get(Reservation.order == order.id).status == "RELEASED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}

    def test_expired_after_a_decline_ends_failed(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.pay_session(order.checkout_session_id, "pm_card_chargeDeclined")
        session = gateway.expire_checkout_session(order.checkout_session_id, idempotency_key="k")

        deliver(runtime, gateway, "checkout.session.expired", session)

        assert Order.get_by_id(order.id).state == "FAILED"

    def test_another_orders_session_is_ignored_and_audited(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        submission = admit_checkout(runtime.redis, [("TEE", 1)], hosted=True)
        other = create_order_from_submission(submission.order_id, runtime)
        assert other is not None and other.checkout_session_id
        gateway.pay_session(other.checkout_session_id, "pm_card_visa")
        foreign = gateway.retrieve_checkout_session(other.checkout_session_id)
        # The other order's session, claiming to be this order's.
        forged = type(foreign)(**{**foreign.__dict__, "metadata": {"orderId": order.id}})

        deliver(runtime, gateway, "checkout.session.completed", forged)

        assert Order.get_by_id(order.id).state == "PENDING"
        assert "PAYMENT_MISMATCH_IGNORED" in types(order.id)


class TestOurExpiry:
    def test_the_session_is_expired_at_stripe_before_the_release(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        result = expire_hold(order.id, runtime, now=later(order))

        assert result.action == "canceled"
        assert gateway.sessions[order.checkout_session_id].status == "expired"
        assert Order.get_by_id(order.id).state == "CANCELED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}

    def test_no_release_while_stripe_cannot_be_told(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.fail_next(
            "expire_checkout_session", PaymentProviderError("down", retryable=True), times=3
        )

        with pytest.raises(PaymentProviderError):
            expire_hold(order.id, runtime, now=later(order))

        assert Order.get_by_id(order.id).state == "PENDING"
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"

    def test_a_session_paid_without_its_webhook_is_paid_not_released(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.pay_session(order.checkout_session_id, "pm_card_visa")

        expire_hold(order.id, runtime, now=later(order))

        assert Order.get_by_id(order.id).state == "PAID"

    def test_a_processing_debit_keeps_the_hold(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.pay_session(order.checkout_session_id, "pm_emulator_bank_debit")

        result = expire_hold(order.id, runtime, now=later(order))

        assert result.action == "extended"
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"

    def test_an_unrecorded_session_is_found_and_expired_first(
        self, runtime: Any, gateway: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)], hosted=True)

        def died(*_: Any, **__: Any) -> None:
            raise RuntimeError("the worker died after Stripe made the session")

        with monkeypatch.context() as patched:
            patched.setattr(hosted, "record_session", died)
            with pytest.raises(RuntimeError):
                create_order_from_submission(submission.order_id, runtime)
        (made,) = gateway.sessions.values()
        order = Order.get_by_id(submission.order_id)
        assert order.checkout_session_id is None

        expire_hold(order.id, runtime, now=utcnow() + timedelta(hours=2))

        assert gateway.sessions[made.id].status == "expired"
        assert Order.get_by_id(order.id).state == "CANCELED"
        assert len(gateway.sessions) == 1

    def test_an_admin_cancel_expires_the_session_first(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        cancel_order(order.id, runtime)

        assert gateway.sessions[order.checkout_session_id].status == "expired"
        assert Order.get_by_id(order.id).state == "CANCELED"


class TestLookupAndUrls:
    def test_lookup_of_an_unknown_session_is_not_found(self, runtime: Any, order: Order) -> None:
        # (The answer with the token: tests/api/test_hosted_checkout.py, whose submit
        # derives tokens as the app does.)
        with pytest.raises(NotFound):
            hosted.lookup_by_session(
                order.checkout_session_id + "x", runtime.config.checkout_token_secrets
            )

    @pytest.mark.parametrize(
        "url",
        [
            "https://evil.example/done",
            "/done",
            "javascript:alert(1)",
            "http://127.0.0.1:5001/done",
            "http://user@127.0.0.1:5000/done",
        ],
    )
    def test_return_urls_off_the_shops_origins_are_refused(self, url: str) -> None:
        data = {"success_url": url, "cancel_url": "http://127.0.0.1:5000/cart"}
        with pytest.raises(InvalidRequest) as refused:
            hosted.check_return_urls(data, ["http://127.0.0.1:5000"])
        assert list(refused.value.fields) == ["successUrl"]

    def test_return_urls_on_an_allowed_origin_pass(self) -> None:
        data = {
            "success_url": "https://shop.example/done?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "HTTPS://Shop.Example:443/cart",
        }
        hosted.check_return_urls(data, ["https://shop.example"])
