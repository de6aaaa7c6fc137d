"""Wave-2 payments with the fake gateway: server-side confirmation, manual capture
(authorise, capture, void, lapse), and payment methods that settle later."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.errors import InvalidRequest, InvalidState
from app.services import admin, authorizations, checkout_status, confirmation, receipts
from app.services.expiry import PROCESSING_HOLD_MAX_SECONDS, cancel_order, expire_hold
from app.services.inventory import Inventory
from app.services.order_views import checkout_view, locate_checkout
from app.services.webhooks import handle_event
from models import Order, OrderEvent, Product, Reservation
from models.db import utcnow
from tests.fakes import admit_checkout, stock


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def on_hand(sku: str = "TEE") -> int:
    return int(Product.get_by_id(sku).stock_on_hand)


def retry(runtime: Any, order_id: str, key: str, token: str) -> Any:
    """``POST /api/checkout/<id>/confirm`` as the view admits it."""
    located = locate_checkout(runtime.redis, order_id)
    return confirmation.request_confirmation(
        runtime.redis, located, idempotency_key=key, confirmation_token=token
    )


def status_body(runtime: Any, order_id: str) -> dict[str, Any]:
    """``GET /api/checkout/<id>``'s body, from the read model."""
    return checkout_view(order_id, checkout_status.read(runtime.redis, order_id))


def place(runtime: Any, gateway: Any, method: str = "pm_card_visa", **options: Any) -> Any:
    """Submit 2 TEE with a ConfirmationToken for ``method`` and run the worker's step."""
    token = gateway.confirmation_token(method)
    submission = admit_checkout(runtime.redis, [("TEE", 2)], confirmation_token=token, **options)
    placed = confirmation.place_order(submission.order_id, runtime)
    assert placed.order is not None
    return placed


def send_all(runtime: Any, outbox_ids: list[int]) -> None:
    for outbox_id in outbox_ids:
        receipts.send_receipt(outbox_id, runtime.mailer, "shop@example.com")


@pytest.fixture(autouse=True)
def tees(runtime: Any) -> None:
    stock(runtime.redis, "TEE", on_hand=5, price=2000)


class TestServerSideConfirmation:
    def test_visa_is_created_and_confirmed_in_one_call(self, runtime: Any, gateway: Any) -> None:
        placed = place(runtime, gateway)
        order = Order.get_by_id(placed.order.id)
        assert order.state == "PAID" and order.payment_status == "succeeded"
        creates = [c for c in gateway.calls if c[0] == "create_intent"]
        assert len(creates) == 1 and creates[0][1]["confirmation_token"].startswith("ctoken_")
        assert creates[0][1]["return_url"].endswith(f"/order/{order.id}")
        assert (f"create:pi-create-{order.id}-" + creates[0][1]["confirmation_token"]) in (
            gateway._idempotent
        )
        assert placed.expire_at is None and placed.outbox_ids  # the receipt goes out now
        assert on_hand() == 3
        view = checkout_status.read(runtime.redis, order.id)
        assert view["state"] == "PAID" and view["paymentStatus"] == "succeeded"

    def test_three_d_secure_shows_requires_action_with_the_client_secret(
        self, runtime: Any, gateway: Any
    ) -> None:
        placed = place(runtime, gateway, "pm_card_threeDSecure2Required")
        view = checkout_status.read(runtime.redis, placed.order.id)
        assert view["paymentStatus"] == "requires_action" and view["clientSecret"]
        assert "PAYMENT_REQUIRES_ACTION" in types(placed.order.id)
        assert placed.expire_at is not None  # still PENDING: the hold's expiry is scheduled

    def test_decline_then_retry_on_the_same_order_and_intent(
        self, runtime: Any, gateway: Any
    ) -> None:
        placed = place(runtime, gateway, "pm_card_chargeDeclined")
        order_id = placed.order.id
        view = checkout_status.read(runtime.redis, order_id)
        assert view["state"] == "PENDING" and view["paymentStatus"] == "requires_payment_method"
        assert view["error"]["code"] == "card_declined"
        assert view["error"]["declineCode"] == "generic_decline"

        token = gateway.confirmation_token("pm_card_visa")
        accepted = retry(runtime, order_id, "retry-key-0001", token)
        assert accepted.response["statusUrl"] == f"/api/checkout/{order_id}"
        pending = checkout_status.read(runtime.redis, order_id)
        assert pending["error"] is None
        assert pending["paymentStatus"] == "requires_confirmation"
        outbox = confirmation.confirm_payment(order_id, token, runtime)
        order = Order.get_by_id(order_id)
        assert order.state == "PAID" and len(gateway.intents) == 1 and outbox
        assert "PAYMENT_CONFIRMATION_REQUESTED" in types(order_id)

        # The same key again is a replay; a paid order refuses a new attempt.
        again = retry(runtime, order_id, "retry-key-0001", token)
        assert again.replayed
        with pytest.raises(InvalidState):
            retry(runtime, order_id, "retry-key-0002", gateway.confirmation_token())

    def test_a_retry_after_a_failed_3d_secure_does_not_show_its_requires_action(
        self, runtime: Any, gateway: Any
    ) -> None:
        """The buyer failed 3-D Secure and retries before the failure reached us: the
        status must not offer the old attempt's ``requires_action`` to the new one (the
        page would run handleNextAction on an intent that no longer needs it)."""
        placed = place(runtime, gateway, "pm_card_threeDSecure2Required")
        order_id = placed.order.id
        assert checkout_status.read(runtime.redis, order_id)["paymentStatus"] == "requires_action"
        retry(runtime, order_id, "retry-after-3ds", gateway.confirmation_token("pm_card_visa"))
        view = checkout_status.read(runtime.redis, order_id)
        assert (view["paymentStatus"], view["error"]) == ("requires_confirmation", None)

    def test_a_late_webhook_of_the_declined_attempt_does_not_undo_the_retry(
        self, runtime: Any, gateway: Any
    ) -> None:
        """The buyer retries before the first attempt's payment_failed is applied: that
        webhook (re-reading an intent that still carries the old error) must not show the
        old decline while the retry awaits its outcome; the outcome then shows."""
        placed = place(runtime, gateway, "pm_card_chargeDeclined")
        order_id = placed.order.id
        token = gateway.confirmation_token("pm_card_visa")
        retry(runtime, order_id, "retry-before-webhook", token)
        stale = gateway.intents[placed.order.payment_intent_id]
        event = gateway.event("payment_intent.payment_failed", stale)
        handle_event(event["id"], event, runtime)

        status = status_body(runtime, order_id)
        assert (status["payment"]["status"], status["error"]) == ("requires_confirmation", None)
        confirmation.confirm_payment(order_id, token, runtime)
        status = status_body(runtime, order_id)
        assert status["state"] == "PAID" and status["payment"]["status"] == "succeeded"

    def test_a_retry_that_is_declined_again_shows_the_new_decline(
        self, runtime: Any, gateway: Any
    ) -> None:
        placed = place(runtime, gateway, "pm_card_chargeDeclinedInsufficientFunds")
        order_id = placed.order.id
        token = gateway.confirmation_token("pm_card_chargeDeclined")
        retry(runtime, order_id, "retry-declined-again", token)
        confirmation.confirm_payment(order_id, token, runtime)
        status = status_body(runtime, order_id)
        assert status["payment"]["status"] == "requires_payment_method"
        assert status["error"]["declineCode"] == "generic_decline"

    def test_a_spent_token_still_leaves_an_intent_to_retry_on(
        self, runtime: Any, gateway: Any
    ) -> None:
        token = gateway.confirmation_token("pm_card_visa")
        gateway.spent_tokens.add(token)
        submission = admit_checkout(runtime.redis, [("TEE", 2)], confirmation_token=token)
        placed = confirmation.place_order(submission.order_id, runtime)
        view = checkout_status.read(runtime.redis, submission.order_id)
        assert placed.order.state == "PENDING" and view["intentId"]
        assert view["error"]["code"] == "confirmation_failed"

    def test_without_a_token_the_client_secret_flow_is_unchanged(
        self, runtime: Any, gateway: Any
    ) -> None:
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        placed = confirmation.place_order(submission.order_id, runtime)
        assert placed.order.payment_status == "requires_payment_method"
        assert "confirmation_token" not in gateway.calls[0][1]


def authorized(runtime: Any, gateway: Any) -> Order:
    placed = place(runtime, gateway, capture_method="manual")
    order = Order.get_by_id(placed.order.id)
    assert order.state == "AUTHORIZED" and order.capture_method == "manual"
    return order


class TestManualCapture:
    def test_authorised_order_has_its_stock_confirmed(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        assert on_hand() == 3
        assert Reservation.get(Reservation.order == order.id).status == "CONFIRMED"
        assert order.capture_before is not None
        assert {"PAYMENT_AUTHORIZED", "STOCK_CONFIRMED"} <= set(types(order.id))
        view = checkout_status.read(runtime.redis, order.id)
        assert view["state"] == "AUTHORIZED" and view["captureMethod"] == "manual"

    def test_fulfilment_start_captures_then_fulfils(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        started = admin.fulfil(
            order.id, "start", runtime=runtime, carrier="UPS", tracking_number=None
        )
        assert started.status == 202 and started.capture_request_id
        outbox = authorizations.capture_payment(order.id, started.capture_request_id, runtime)
        order = Order.get_by_id(order.id)
        assert order.state == "FULFILLING" and order.amount_captured == order.total
        assert outbox
        seen = types(order.id)
        assert seen.index("PAYMENT_CAPTURED") < seen.index("FULFILLMENT_STARTED")
        # A redelivered message changes nothing.
        assert authorizations.capture_payment(order.id, started.capture_request_id, runtime) == []
        assert [c[0] for c in gateway.calls].count("capture_intent") == 1

    def test_partial_capture_with_restock(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        result = admin.capture_order(
            runtime.redis,
            order.id,
            idempotency_key="capture-key-01",
            amount=2000,
            restock=[{"sku": "TEE", "quantity": 1}],
        )
        authorizations.capture_payment(order.id, result.request_id, runtime)
        order = Order.get_by_id(order.id)
        assert order.state == "PAID" and order.amount_captured == 2000
        assert gateway.intents[order.payment_intent_id].amount_received == 2000
        assert on_hand() == 4 and Inventory(runtime.redis).available(["TEE"])["TEE"] == 4
        assert {"CAPTURE_REQUESTED", "PAYMENT_CAPTURED", "STOCK_RESTOCKED"} <= set(types(order.id))
        replay = admin.capture_order(
            runtime.redis,
            order.id,
            idempotency_key="capture-key-01",
            amount=2000,
            restock=[{"sku": "TEE", "quantity": 1}],
        )
        assert replay.replayed and replay.request_id == result.request_id

    def test_capture_refuses_more_than_authorised_and_unknown_restock(
        self, runtime: Any, gateway: Any
    ) -> None:
        order = authorized(runtime, gateway)
        with pytest.raises(InvalidState):
            admin.capture_order(
                runtime.redis, order.id, idempotency_key="too-much-01", amount=order.total + 1
            )
        with pytest.raises(InvalidRequest):
            admin.capture_order(
                runtime.redis,
                order.id,
                idempotency_key="bad-lines-01",
                restock=[{"sku": "MUG", "quantity": 1}],
            )

    def test_cancel_voids_and_puts_the_stock_back(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        admin.check_cancelable(runtime.redis, order.id)
        cancel_order(order.id, runtime)
        order = Order.get_by_id(order.id)
        assert order.state == "CANCELED"
        assert gateway.intents[order.payment_intent_id].status == "canceled"
        assert on_hand() == 5 and Inventory(runtime.redis).available(["TEE"])["TEE"] == 5
        assert {"AUTHORIZATION_VOIDED", "STOCK_RELEASED"} <= set(types(order.id))

    def test_clock_warns_once_a_day_ahead(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        soon = order.capture_before - timedelta(hours=3)
        assert order.id in authorizations.due_order_ids(10, now=soon)
        outbox = authorizations.check_authorization(order.id, runtime, now=soon)
        send_all(runtime, outbox)
        assert runtime.mailer.sent[-1].to == runtime.config.operator_email
        assert authorizations.check_authorization(order.id, runtime, now=soon) == []
        assert types(order.id).count("AUTHORIZATION_EXPIRING") == 1
        assert order.id not in authorizations.due_order_ids(10, now=soon)

    def test_lapsed_authorisation_cancels_and_releases(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        late = order.capture_before + timedelta(minutes=1)
        assert order.id in authorizations.due_order_ids(10, now=late)
        authorizations.check_authorization(order.id, runtime, now=late)
        order = Order.get_by_id(order.id)
        assert order.state == "CANCELED" and on_hand() == 5
        assert "AUTHORIZATION_EXPIRED" in types(order.id)

    def test_stripe_expiring_it_arrives_as_a_webhook(self, runtime: Any, gateway: Any) -> None:
        order = authorized(runtime, gateway)
        intent = gateway.expire_authorization(order.payment_intent_id)
        event = gateway.event("payment_intent.canceled", intent)
        handle_event(event["id"], event, runtime)
        order = Order.get_by_id(order.id)
        assert order.state == "CANCELED" and on_hand() == 5
        assert {"AUTHORIZATION_EXPIRED", "STOCK_RELEASED"} <= set(types(order.id))


class TestDelayedPayments:
    def processing(self, runtime: Any, gateway: Any) -> Order:
        placed = place(runtime, gateway, "pm_emulator_delayed")
        send_all(runtime, placed.outbox_ids)
        order = Order.get_by_id(placed.order.id)
        assert order.payment_status == "processing"
        assert "on its way" in runtime.mailer.sent[-1].subject
        return order

    def overdue(self, order: Order) -> None:
        """As if the hold's original expiry had passed (days ago, for a bank debit)."""
        past = utcnow() - timedelta(seconds=5)
        Reservation.update(expires_at=past).where(Reservation.order == order.id).execute()
        held = OrderEvent.get((OrderEvent.order == order.id) & (OrderEvent.type == "STOCK_HELD"))
        held.payload = {**held.payload, "expiresAt": past.isoformat() + "Z"}
        held.save()

    def test_processing_past_the_ttl_keeps_the_stock(self, runtime: Any, gateway: Any) -> None:
        order = self.processing(runtime, gateway)
        self.overdue(order)
        assert expire_hold(order.id, runtime).action == "extended"
        assert Order.get_by_id(order.id).state == "PENDING"
        assert Inventory(runtime.redis).available(["TEE"])["TEE"] == 3

    def test_success_pays_and_sends_the_receipt(self, runtime: Any, gateway: Any) -> None:
        order = self.processing(runtime, gateway)
        event = gateway.event("payment_intent.succeeded", gateway.settle(order.payment_intent_id))
        send_all(runtime, handle_event(event["id"], event, runtime).outbox_ids)
        assert Order.get_by_id(order.id).state == "PAID"
        assert runtime.mailer.sent[-1].subject.startswith("Your receipt")

    def test_failure_after_days_ends_failed_and_releases(self, runtime: Any, gateway: Any) -> None:
        order = self.processing(runtime, gateway)
        self.overdue(order)
        expire_hold(order.id, runtime)  # extended: the original expiry has passed
        failed = gateway.settle(order.payment_intent_id, "failed")
        event = gateway.event("payment_intent.payment_failed", failed)
        send_all(runtime, handle_event(event["id"], event, runtime).outbox_ids)
        assert "did not go through" in runtime.mailer.sent[-1].subject
        assert expire_hold(order.id, runtime).action == "canceled"
        order = Order.get_by_id(order.id)
        assert order.state == "FAILED"
        assert gateway.intents[order.payment_intent_id].status == "canceled"
        assert Inventory(runtime.redis).available(["TEE"])["TEE"] == 5

    def test_the_bound_alerts_but_keeps_the_hold(self, runtime: Any, gateway: Any) -> None:
        order = self.processing(runtime, gateway)
        late = utcnow() + timedelta(seconds=PROCESSING_HOLD_MAX_SECONDS + 3600)
        result = expire_hold(order.id, runtime, now=late)
        assert result.action == "extended"
        assert "PAYMENT_PROCESSING_OVERDUE" in types(order.id)
        assert Order.get_by_id(order.id).state == "PENDING"
