"""I10: a payment counts only for its own order (its recorded intent, amount and currency).

A signed ``payment_intent.*`` event names its order in ``metadata.orderId``; a signed
event (or Stripe's own) for ANOTHER order's intent, or an intent whose amount or
currency is not the order's, must be ignored, audited (``PAYMENT_MISMATCH_IGNORED``),
counted and logged at ERROR — and the buyer paying the order's own intent still works.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from prometheus_client import REGISTRY

from app.services.checkout import create_order_from_submission, write_submission
from app.services.expiry import expire_hold
from app.services.inventory import Inventory
from app.services.payments import apply_intent
from app.services.webhooks import handle_event
from models import Order, Outbox, Product, Reservation
from models.db import database
from tests.fakes import admit_checkout, intent_dict, stock
from tests.services.test_payments import overdue

ON_HAND = 10


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def mismatches() -> float:
    return REGISTRY.get_sample_value("checkout_payment_mismatch_total") or 0.0


def other_order(runtime: Any) -> Order:
    """A second PENDING order (1 TEE) with its own intent."""
    submission = admit_checkout(runtime.redis, [("TEE", 1)])
    created = create_order_from_submission(submission.order_id, runtime)
    assert created is not None
    return created


def forged(gateway: Any, type_: str, intent: Any, order: Order) -> dict[str, Any]:
    """A signed-looking event for ``intent`` whose metadata names ``order``."""
    obj = intent_dict(intent)
    obj["metadata"] = {**obj["metadata"], "orderId": order.id}
    return gateway.event(type_, obj)


def assert_untouched(runtime: Any, order: Order) -> None:
    stored = Order.get_by_id(order.id)
    assert stored.state == "PENDING"
    assert stored.payment_status == "requires_payment_method"
    assert Reservation.get(Reservation.order == order.id).status == "HELD"
    assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
    assert "PAYMENT_SUCCEEDED" not in types(order.id)
    assert "PAYMENT_MISMATCH_IGNORED" in types(order.id)


class TestAnotherOrdersIntent:
    def test_success_of_another_orders_intent_is_ignored_audited_and_alerted(
        self, runtime: Any, gateway: Any, order: Order, caplog: Any
    ) -> None:
        other = other_order(runtime)
        paid_elsewhere = gateway.confirm(other.payment_intent_id)
        before = mismatches()
        event = forged(gateway, "payment_intent.succeeded", paid_elsewhere, order)
        with caplog.at_level(logging.ERROR):
            outcome = handle_event(event["id"], event, runtime)
        assert outcome.status == "processed"  # acknowledged: a retry would change nothing
        assert_untouched(runtime, order)
        assert Product.get_by_id("TEE").stock_on_hand == ON_HAND
        assert Outbox.select().count() == 0
        assert mismatches() == before + 1
        assert any(
            r.levelno == logging.ERROR and "PAYMENT_MISMATCH" in r.getMessage()
            for r in caplog.records
        )
        audit = Order.get_by_id(order.id).events[-1]
        assert audit.payload["intentId"] == paid_elsewhere.id
        assert audit.payload["expectedIntentId"] == order.payment_intent_id

    def test_the_buyer_can_still_pay_the_orders_own_intent(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        other = other_order(runtime)
        event = forged(
            gateway, "payment_intent.succeeded", gateway.confirm(other.payment_intent_id), order
        )
        handle_event(event["id"], event, runtime)
        own = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        handle_event(own["id"], own, runtime)
        paid = Order.get_by_id(order.id)
        assert paid.state == "PAID"
        assert types(order.id).count("PAYMENT_SUCCEEDED") == 1
        succeeded = [e for e in paid.events if e.type == "PAYMENT_SUCCEEDED"]
        assert succeeded[0].payload["intentId"] == order.payment_intent_id
        assert Outbox.select().count() == 1

    def test_failure_and_cancel_of_another_orders_intent_change_nothing(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        other = other_order(runtime)
        declined = gateway.confirm(other.payment_intent_id, "pm_card_chargeDeclined")
        event = forged(gateway, "payment_intent.payment_failed", declined, order)
        handle_event(event["id"], event, runtime)
        assert "PAYMENT_FAILED" not in types(order.id)
        canceled = gateway.set_status(other.payment_intent_id, "canceled", last_error=None)
        event = forged(gateway, "payment_intent.canceled", canceled, order)
        handle_event(event["id"], event, runtime)
        assert_untouched(runtime, order)
        assert Order.get_by_id(order.id).last_payment_error is None

    def test_closed_order_records_no_late_payment_for_a_foreign_intent(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        other = other_order(runtime)
        Order.update(state="CANCELED").where(Order.id == order.id).execute()
        event = forged(
            gateway, "payment_intent.succeeded", gateway.confirm(other.payment_intent_id), order
        )
        handle_event(event["id"], event, runtime)
        assert "PAYMENT_AFTER_CLOSE" not in types(order.id)
        assert "PAYMENT_MISMATCH_IGNORED" in types(order.id)


class TestAmountAndCurrency:
    def test_own_intent_with_another_amount_is_ignored(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.confirm(order.payment_intent_id)
        gateway.set_status(order.payment_intent_id, "succeeded", amount=order.total - 1)
        event = gateway.event("payment_intent.succeeded", gateway.intents[order.payment_intent_id])
        handle_event(event["id"], event, runtime)
        assert_untouched(runtime, order)

    def test_own_intent_in_another_currency_is_ignored(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.confirm(order.payment_intent_id)
        gateway.set_status(order.payment_intent_id, "succeeded", currency="eur")
        with database().atomic():
            outbox = apply_intent(
                Order.get_by_id(order.id),
                gateway.intents[order.payment_intent_id],
                runtime,
                actor="expiry",
            )
        assert outbox == []
        assert_untouched(runtime, order)

    def test_currency_case_does_not_matter(self, runtime: Any, gateway: Any, order: Order) -> None:
        intent = gateway.confirm(order.payment_intent_id)
        with database().atomic():
            apply_intent(
                Order.get_by_id(order.id), replace(intent, currency="USD"), runtime, actor="x"
            )
        assert Order.get_by_id(order.id).state == "PAID"


class TestExpiryPaths:
    def test_expiry_applies_only_the_orders_own_intent(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        """The expiry re-reads the recorded intent; its amount must still be the order's."""
        gateway.confirm(order.payment_intent_id)
        gateway.set_status(order.payment_intent_id, "succeeded", amount=1)
        overdue(order)
        result = expire_hold(order.id, runtime)
        assert result.outbox_ids == []
        assert Order.get_by_id(order.id).state == "PENDING"
        assert "PAYMENT_MISMATCH_IGNORED" in types(order.id)

    def test_adopted_orphan_intent_still_pays_its_order(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        """The orphan adoption stores the intent first, so the match holds (I8 + I10)."""
        intent_id = order.payment_intent_id
        Order.update(payment_intent_id=None, client_secret=None).where(
            Order.id == order.id
        ).execute()
        gateway.confirm(intent_id)
        overdue(order)
        assert expire_hold(order.id, runtime).action == "extended"  # the lookup starts
        overdue(order)
        result = expire_hold(order.id, runtime)
        assert result.action == "confirmed"
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_intent_id) == ("PAID", intent_id)
        assert "PAYMENT_MISMATCH_IGNORED" not in types(order.id)


class TestBeforeTheOrderRecordedItsIntent:
    def test_an_intent_event_before_the_orders_own_intent_id_is_stored_is_ignored(
        self, runtime: Any, gateway: Any, caplog: Any
    ) -> None:
        """The order row exists, its intent is not created yet: no recorded id to compare,
        yet another intent of the same amount and currency must not mark it PAID."""
        stock(runtime.redis, "TEE", on_hand=ON_HAND, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        order = write_submission(submission.order_id, runtime)
        assert order is not None and order.payment_intent_id is None
        stranger = gateway.create_intent(
            amount=order.total,
            currency=order.currency,
            idempotency_key="someone-elses-intent",
            metadata={"orderId": order.id},
            receipt_email=None,
            description="not this order's",
        )
        paid = gateway.confirm(stranger.id)
        event = gateway.event("payment_intent.succeeded", paid)
        with caplog.at_level(logging.ERROR):
            assert handle_event(event["id"], event, runtime).status == "processed"
        stored = Order.get_by_id(order.id)
        assert stored.state == "PENDING"
        assert stored.payment_intent_id is None
        assert "PAYMENT_SUCCEEDED" not in types(order.id)
        mismatch = next(e for e in stored.events if e.type == "PAYMENT_MISMATCH_IGNORED")
        assert mismatch.payload["mismatch"] == ["intent"]
        assert Reservation.get(Reservation.order == order.id).status == "HELD"
