"""Payments for an order: the intent's creation and hold expiry (I8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.errors import PaymentProviderError
from app.services import checkout, checkout_status
from app.services.checkout import create_order_from_submission, ensure_intent
from app.services.expiry import expire_hold
from app.services.inventory import Inventory
from models import Order, Reservation
from models.db import utcnow
from tests.fakes import admit_checkout, stock


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def overdue(order: Order) -> None:
    """Make the order's hold due now."""
    past = utcnow() - timedelta(seconds=5)
    Reservation.update(expires_at=past).where(Reservation.order == order.id).execute()


def overdue_without_intent(runtime: Any, gateway: Any) -> Order:
    """An order whose intent creation failed (Stripe has none), its hold due now."""
    stock(runtime.redis, "TEE", on_hand=5)
    submission = admit_checkout(runtime.redis, [("TEE", 1)])
    gateway.fail_next("create_intent", PaymentProviderError("down", retryable=True))
    with pytest.raises(PaymentProviderError):
        create_order_from_submission(submission.order_id, runtime)
    order: Order = Order.get_by_id(submission.order_id)
    overdue(order)
    return order


class TestEnsureIntent:
    def test_uses_the_order_derived_idempotency_key(self, runtime: Any, gateway: Any) -> None:
        stock(runtime.redis, "TEE")
        submission = admit_checkout(runtime.redis)
        order = create_order_from_submission(submission.order_id, runtime)
        assert gateway._idempotent[f"create:pi-create-{order.id}"][1] == order.payment_intent_id

    def test_is_idempotent(self, runtime: Any, gateway: Any, order: Order) -> None:
        again = ensure_intent(Order.get_by_id(order.id), runtime)
        assert again.payment_intent_id == order.payment_intent_id
        assert len(gateway.intents) == 1

    def test_crash_after_creating_the_intent_reuses_it(
        self, runtime: Any, gateway: Any, monkeypatch: Any
    ) -> None:
        """I2: Stripe created the intent, the worker died before saving its id: the
        retry gets the same intent back (key from the order id), never a second one."""
        stock(runtime.redis, "TEE")
        submission = admit_checkout(runtime.redis)

        def crash(*_: Any) -> None:
            raise ConnectionError("worker lost its database connection")

        monkeypatch.setattr(checkout, "store_intent", crash)
        with pytest.raises(ConnectionError):
            create_order_from_submission(submission.order_id, runtime)
        assert Order.get_by_id(submission.order_id).payment_intent_id is None
        (first_id,) = gateway.intents
        monkeypatch.undo()

        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None and order.payment_intent_id == first_id
        assert list(gateway.intents) == [first_id]
        assert [c[0] for c in gateway.calls].count("create_intent") == 2
        assert checkout_status.read(runtime.redis, order.id)["intentId"] == first_id


class TestExpireHold:
    def test_not_due_yet_asks_to_come_back(self, runtime: Any, order: Order) -> None:
        result = expire_hold(order.id, runtime)
        assert result.action == "early"
        assert result.retry_at is not None
        assert Order.get_by_id(order.id).state == "PENDING"

    def test_cancels_intent_first_then_releases(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any
    ) -> None:
        """I8: one spy on both sides records the order of the Stripe cancel and the release."""
        steps: list[str] = []
        cancel, release = gateway.cancel_intent, Inventory.release

        def spy_cancel(*args: Any, **kwargs: Any) -> Any:
            steps.append("stripe_cancel")
            return cancel(*args, **kwargs)

        def spy_release(self: Inventory, reservation_id: str) -> bool:
            steps.append("release")
            assert gateway.intents[order.payment_intent_id].status == "canceled"
            return release(self, reservation_id)

        monkeypatch.setattr(gateway, "cancel_intent", spy_cancel)
        monkeypatch.setattr(Inventory, "release", spy_release)
        overdue(order)
        result = expire_hold(order.id, runtime)
        assert steps == ["stripe_cancel", "release"]
        assert result.action == "canceled"
        assert gateway.intents[order.payment_intent_id].status == "canceled"
        assert gateway.cancellation_reasons[order.payment_intent_id] == "abandoned"
        stored = Order.get_by_id(order.id)
        assert stored.state == "CANCELED"
        assert Reservation.get(Reservation.order == order.id).status == "RELEASED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}
        assert types(order.id)[-4:] == [
            "HOLD_EXPIRED",
            "PAYMENT_INTENT_CANCELED",
            "STOCK_RELEASED",
            "STATE_CHANGED",
        ]
        view = checkout_status.read(runtime.redis, order.id)
        assert (view["state"], view["paymentStatus"]) == ("CANCELED", "canceled")

    def test_ends_failed_when_an_attempt_was_declined(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        overdue(order)
        expire_hold(order.id, runtime)
        assert Order.get_by_id(order.id).state == "FAILED"

    def test_processing_extends_the_hold(self, runtime: Any, gateway: Any, order: Order) -> None:
        gateway.confirm(order.payment_intent_id, "pm_emulator_delayed")
        overdue(order)
        result = expire_hold(order.id, runtime)
        assert result.action == "extended"
        assert result.retry_at is not None and result.retry_at > utcnow()
        assert Order.get_by_id(order.id).state == "PENDING"
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
        assert "cancel_intent" not in [c[0] for c in gateway.calls]
        assert Reservation.get(Reservation.order == order.id).expires_at > utcnow()

    def test_succeeded_confirms_instead(self, runtime: Any, gateway: Any, order: Order) -> None:
        gateway.confirm(order.payment_intent_id)
        overdue(order)
        result = expire_hold(order.id, runtime)
        assert result.action == "confirmed"
        assert len(result.outbox_ids) == 1
        assert Order.get_by_id(order.id).state == "PAID"
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"

    def test_failing_cancel_keeps_the_hold(self, runtime: Any, gateway: Any, order: Order) -> None:
        overdue(order)
        gateway.fail_next("cancel_intent", PaymentProviderError("timeout", retryable=True))
        with pytest.raises(PaymentProviderError):
            expire_hold(order.id, runtime)
        assert Order.get_by_id(order.id).state == "PENDING"
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 3}
        assert expire_hold(order.id, runtime).action == "canceled"

    def test_cancel_refused_because_intent_moved_on_rereads(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        overdue(order)
        moved = PaymentProviderError(
            "unexpected", retryable=False, provider_code="payment_intent_unexpected_state"
        )
        gateway.fail_next("cancel_intent", moved)
        gateway.confirm(order.payment_intent_id)  # it succeeded meanwhile
        assert expire_hold(order.id, runtime).action == "confirmed"
        assert Order.get_by_id(order.id).state == "PAID"

    def test_intent_succeeding_during_the_refused_cancel_is_reread_and_confirmed(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any
    ) -> None:
        """The expiry read the intent open and asked to cancel it; the buyer's payment
        succeeded DURING that call, so Stripe refused. Only the re-read sees the
        success: the order ends PAID with its stock sold, never released."""
        cancel = gateway.cancel_intent
        raced: list[str] = []

        def racing_cancel(intent_id: str, **kwargs: Any) -> Any:
            if not raced:
                raced.append(intent_id)
                assert gateway.intents[intent_id].status == "requires_payment_method"
                gateway.confirm(intent_id)  # the payment lands first...
            return cancel(intent_id, **kwargs)  # ...so Stripe refuses the cancel

        monkeypatch.setattr(gateway, "cancel_intent", racing_cancel)
        overdue(order)
        result = expire_hold(order.id, runtime)
        assert raced == [order.payment_intent_id]  # the refused-cancel branch did run
        assert result.action == "confirmed"
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_status) == ("PAID", "succeeded")
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"
        assert "STOCK_RELEASED" not in types(order.id)

    def test_closed_order_is_left_alone(self, runtime: Any, gateway: Any, order: Order) -> None:
        overdue(order)
        expire_hold(order.id, runtime)
        calls = len(gateway.calls)
        assert expire_hold(order.id, runtime).action == "noop"
        assert len(gateway.calls) == calls

    def test_unwritten_submission_releases_and_becomes_unprocessable(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        submission = admit_checkout(runtime.redis, [("TEE", 5)])
        assert expire_hold(submission.order_id, runtime).action == "unprocessable"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}
        assert checkout_status.read(runtime.redis, submission.order_id)["state"] == "CANCELED"
        # A worker reaching it afterwards writes nothing and creates no intent.
        assert create_order_from_submission(submission.order_id, runtime) is None
        assert Order.select().count() == 0
        assert gateway.intents == {}

    def test_order_without_intent_anywhere_is_released_after_the_lookup(
        self, runtime: Any, gateway: Any
    ) -> None:
        """Stripe has no intent for the order: released as before, once the search can
        be trusted (first expiry waits out the search delay, the next one searches)."""
        order = overdue_without_intent(runtime, gateway)
        assert expire_hold(order.id, runtime).action == "extended"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 4}
        overdue(order)
        assert expire_hold(order.id, runtime).action == "canceled"
        assert ("find_intents_for_order", {"order_id": order.id}) in gateway.calls
        assert "cancel_intent" not in [c[0] for c in gateway.calls]
        assert Order.get_by_id(order.id).state == "CANCELED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}

    def test_the_lookup_waits_out_the_configured_search_delay(
        self, runtime: Any, gateway: Any
    ) -> None:
        """STRIPE_SEARCH_DELAY_SECONDS: how long the hold is kept before Stripe is searched."""
        runtime.config = runtime.config.with_overrides(stripe_search_delay_seconds=7)
        order = overdue_without_intent(runtime, gateway)
        before = utcnow()
        assert expire_hold(order.id, runtime).action == "extended"
        held_until = Reservation.get(Reservation.order == order.id).expires_at
        assert before + timedelta(seconds=6) <= held_until <= utcnow() + timedelta(seconds=7)


class TestExpireHoldWithUnsavedIntent:
    """I8: the worker died after Stripe created the intent, before the order saved its
    id, and no retry succeeded before the hold expired: the intent is found at Stripe."""

    @pytest.fixture
    def crashed(self, runtime: Any, gateway: Any, monkeypatch: Any) -> tuple[Order, str]:
        stock(runtime.redis, "TEE", on_hand=5)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])

        def crash(*_: Any) -> None:
            raise ConnectionError("worker died")

        monkeypatch.setattr(checkout, "store_intent", crash)
        with pytest.raises(ConnectionError):
            create_order_from_submission(submission.order_id, runtime)
        monkeypatch.undo()
        order = Order.get_by_id(submission.order_id)
        assert order.payment_intent_id is None
        (intent_id,) = gateway.intents
        return order, intent_id

    @staticmethod
    def expire_after_search_delay(order: Order, runtime: Any, gateway: Any) -> Any:
        """First expiry: creation stopped, hold kept for the search delay; then the real one."""
        overdue(order)
        first = expire_hold(order.id, runtime)
        assert first.action == "extended"
        assert first.retry_at is not None
        assert first.retry_at >= utcnow() + timedelta(seconds=60)
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
        assert "find_intents_for_order" not in [c[0] for c in gateway.calls]
        overdue(order)
        return expire_hold(order.id, runtime)

    def test_open_intent_is_canceled_before_the_stock_is_released(
        self, runtime: Any, gateway: Any, crashed: tuple[Order, str]
    ) -> None:
        order, intent_id = crashed
        inventory = Inventory(runtime.redis)
        seen: list[tuple[str, str, str | None]] = []
        cancel = gateway.cancel_intent

        def spy(intent_id: str, *, reason: str, idempotency_key: str) -> Any:
            seen.append((idempotency_key, reason, inventory.status(order.reservation_id)))
            return cancel(intent_id, reason=reason, idempotency_key=idempotency_key)

        gateway.cancel_intent = spy
        result = self.expire_after_search_delay(order, runtime, gateway)
        assert result.action == "canceled"
        assert gateway.intents[intent_id].status == "canceled"
        assert seen == [(f"pi-cancel-{order.id}", "abandoned", "HELD")]
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_intent_id) == ("CANCELED", intent_id)
        assert inventory.status(order.reservation_id) == "RELEASED"
        assert inventory.available(["TEE"]) == {"TEE": 5}
        assert types(order.id)[-4:] == [
            "HOLD_EXPIRED",
            "PAYMENT_INTENT_CANCELED",
            "STOCK_RELEASED",
            "STATE_CHANGED",
        ]

    def test_no_intent_is_created_once_the_lookup_started(
        self, runtime: Any, gateway: Any, crashed: tuple[Order, str]
    ) -> None:
        order, _ = crashed
        overdue(order)
        assert expire_hold(order.id, runtime).action == "extended"
        creates = [c[0] for c in gateway.calls].count("create_intent")
        create_order_from_submission(order.id, runtime)  # a late retry of the crashed run
        assert [c[0] for c in gateway.calls].count("create_intent") == creates
        assert Order.get_by_id(order.id).payment_intent_id is None

    def test_processing_intent_extends_the_hold(
        self, runtime: Any, gateway: Any, crashed: tuple[Order, str]
    ) -> None:
        order, intent_id = crashed
        gateway.confirm(intent_id, "pm_emulator_delayed")
        result = self.expire_after_search_delay(order, runtime, gateway)
        assert result.action == "extended"
        assert "cancel_intent" not in [c[0] for c in gateway.calls]
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_intent_id) == ("PENDING", intent_id)
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
        assert types(order.id)[-1] == "HOLD_EXTENDED"

    def test_succeeded_intent_makes_the_order_paid(
        self, runtime: Any, gateway: Any, crashed: tuple[Order, str]
    ) -> None:
        order, intent_id = crashed
        gateway.confirm(intent_id)
        result = self.expire_after_search_delay(order, runtime, gateway)
        assert result.action == "confirmed"
        assert len(result.outbox_ids) == 1
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_intent_id) == ("PAID", intent_id)
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"
        assert "cancel_intent" not in [c[0] for c in gateway.calls]
