"""Late payments made whole: a payment that succeeds after its hold was released.

Stock allows → the lines are sold again (Lua, I1) and the order becomes PAID; it does
not → the money is refunded (idempotently), the order ends CANCELED with reason
``stock_unavailable_after_payment`` and the buyer is e-mailed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.errors import InvalidState, OutOfStock
from app.services import checkout_status, receipts
from app.services.expiry import expire_hold
from app.services.inventory import Inventory
from app.services.refunds import submit_refund
from app.services.state_machine import transition
from app.services.webhooks import handle_event
from models import Order, Outbox, Product, Refund, Reservation
from models.db import database, utcnow
from tests.fakes import admit_checkout

ON_HAND = 5  # units of TEE; the order holds 2


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def expired(runtime: Any, order: Order) -> Order:
    """Let the hold expire: the intent is canceled at Stripe, stock released, CANCELED."""
    past = utcnow() - timedelta(seconds=5)
    Reservation.update(expires_at=past).where(Reservation.order == order.id).execute()
    assert expire_hold(order.id, runtime).action == "canceled"
    closed = Order.get_by_id(order.id)
    assert closed.state == "CANCELED"
    assert Reservation.get(Reservation.order == order.id).status == "RELEASED"
    return closed


def pay_late(runtime: Any, gateway: Any, order: Order) -> tuple[dict[str, Any], Any]:
    """The buyer's confirmation won the race at Stripe: the intent succeeded anyway."""
    intent = gateway.set_status(order.payment_intent_id, "succeeded", latest_charge="ch_late")
    event = gateway.event("payment_intent.succeeded", intent)
    return event, handle_event(event["id"], event, runtime)


def sell_out(runtime: Any) -> None:
    """Another buyer takes every unit left."""
    left = Inventory(runtime.redis).available(["TEE"])["TEE"]
    admit_checkout(runtime.redis, [("TEE", left)])
    assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 0}


class TestStockAllows:
    def test_the_order_becomes_paid_and_its_lines_are_sold_again(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        expired(runtime, order)
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}
        _, outcome = pay_late(runtime, gateway, order)
        paid = Order.get_by_id(order.id)
        assert (paid.state, paid.payment_status) == ("PAID", "succeeded")
        assert Reservation.get(Reservation.order == order.id).status == "CONFIRMED"
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 3}
        assert Product.get_by_id("TEE").stock_on_hand == 3
        changes = [e.payload for e in paid.events if e.type == "STATE_CHANGED"]
        assert changes[-1] == {
            "from": "CANCELED",
            "to": "PAID",
            "reason": "late_payment_restocked",
            "intentId": order.payment_intent_id,
        }
        assert "PAYMENT_AFTER_CLOSE" in types(order.id)
        assert [Outbox.get_by_id(i).kind for i in outcome.outbox_ids] == ["receipt"]
        assert Refund.select().count() == 0
        assert checkout_status.read(runtime.redis, order.id)["state"] == "PAID"

    def test_a_replayed_event_changes_nothing(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        expired(runtime, order)
        event, _ = pay_late(runtime, gateway, order)
        before = types(order.id)
        runtime.redis.flushdb()  # no fast-path skip: the inbox row decides
        Inventory(runtime.redis).rebuild({"TEE": 3})
        assert handle_event(event["id"], event, runtime).status == "duplicate"
        again = gateway.event("payment_intent.succeeded", gateway.intents[order.payment_intent_id])
        handle_event(again["id"], again, runtime)  # the same payment, another event id
        assert types(order.id) == before
        assert Product.get_by_id("TEE").stock_on_hand == 3

    def test_a_failed_order_is_made_whole_too(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        expired_order = Order.get_by_id(order.id)
        past = utcnow() - timedelta(seconds=5)
        Reservation.update(expires_at=past).where(Reservation.order == order.id).execute()
        expire_hold(order.id, runtime)
        assert Order.get_by_id(order.id).state == "FAILED"
        pay_late(runtime, gateway, expired_order)
        assert Order.get_by_id(order.id).state == "PAID"


class TestStockGone:
    def test_refunded_canceled_and_the_buyer_told(
        self, runtime: Any, gateway: Any, jobs: Any, mailer: Any, order: Order
    ) -> None:
        expired(runtime, order)
        sell_out(runtime)
        _, outcome = pay_late(runtime, gateway, order)

        closed = Order.get_by_id(order.id)
        assert (closed.state, closed.payment_status) == ("CANCELED", "succeeded")
        assert Reservation.get(Reservation.order == order.id).status == "RELEASED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 0}  # I1
        assert Product.get_by_id("TEE").stock_on_hand == 5
        (refund,) = Refund.select()
        assert (refund.amount, refund.status, refund.reason) == (
            order.total,
            "pending",
            "stock_unavailable_after_payment",
        )
        assert jobs.named("create_refund") == [(refund.id,)]
        audit = {e.type: e.payload for e in closed.events}
        assert audit["LATE_PAYMENT_REFUNDED"] == {
            "reason": "stock_unavailable_after_payment",
            "intentId": order.payment_intent_id,
            "refundId": refund.id,
            "amount": order.total,
        }
        assert audit["STOCK_UNAVAILABLE"]["short"] == [
            {"sku": "TEE", "requested": 2, "available": 0}
        ]
        assert "STATE_CHANGED" not in [e.type for e in closed.events][-6:]  # stays CANCELED
        error = checkout_status.read(runtime.redis, order.id)["error"]
        assert error["code"] == "stock_unavailable_after_payment"

        (outbox_id,) = outcome.outbox_ids
        assert Outbox.get_by_id(outbox_id).kind == "late_payment_refund"
        assert receipts.send_receipt(outbox_id, runtime.mailer, "shop@example.com")
        (message,) = mailer.sent
        assert message.to == order.email
        assert "refunding 47.90 USD" in message.text

        # The create_refund actor's call: Stripe is asked once, with our reason as metadata.
        submit_refund(refund.id, runtime)
        submit_refund(refund.id, runtime)
        (stripe_refund,) = gateway.refunds.values()
        assert stripe_refund["amount"] == order.total and stripe_refund["reason"] is None
        assert stripe_refund["metadata"]["reason"] == "stock_unavailable_after_payment"

    def test_a_replay_refunds_once(self, runtime: Any, gateway: Any, order: Order) -> None:
        expired(runtime, order)
        sell_out(runtime)
        event, _ = pay_late(runtime, gateway, order)
        before = types(order.id)
        runtime.redis.delete(f"{{shop}}:evt:{event['id']}")
        again = gateway.event("payment_intent.succeeded", gateway.intents[order.payment_intent_id])
        handle_event(again["id"], again, runtime)
        assert Refund.select().count() == 1
        assert types(order.id) == before

    def test_a_failed_order_ends_canceled(self, runtime: Any, gateway: Any, order: Order) -> None:
        gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        past = utcnow() - timedelta(seconds=5)
        Reservation.update(expires_at=past).where(Reservation.order == order.id).execute()
        expire_hold(order.id, runtime)
        assert Order.get_by_id(order.id).state == "FAILED"
        sell_out(runtime)
        pay_late(runtime, gateway, order)
        closed = Order.get_by_id(order.id)
        assert closed.state == "CANCELED"
        change = [e.payload for e in closed.events if e.type == "STATE_CHANGED"][-1]
        assert change == {
            "from": "FAILED",
            "to": "CANCELED",
            "reason": "stock_unavailable_after_payment",
        }


class TestTransitionTable:
    @pytest.mark.parametrize(
        ("source", "target"), [("CANCELED", "PAID"), ("FAILED", "PAID"), ("FAILED", "CANCELED")]
    )
    def test_reopening_needs_the_late_payment_reason(
        self, runtime: Any, order: Order, source: str, target: str
    ) -> None:
        Order.update(state=source).where(Order.id == order.id).execute()
        with database().atomic(), pytest.raises(InvalidState):
            transition(Order.get_by_id(order.id), target, "admin_said_so")


class TestReholdScript:
    """``rehold.lua``: a RELEASED reservation's lines sold again, all or none (I1)."""

    def test_takes_the_units_once(self, redis: Any) -> None:
        inventory = Inventory(redis)
        redis.hset("{shop}:avail", mapping={"A": 3, "B": 1})
        assert inventory.hold("r1", [("A", 2), ("B", 1)], 60, "o1")
        assert inventory.release("r1")
        assert inventory.rehold("r1", [("A", 2), ("B", 1)], "o1") is True
        assert inventory.status("r1") == "CONFIRMED"
        assert inventory.available(["A", "B"]) == {"A": 1, "B": 0}
        assert inventory.rehold("r1", [("A", 2), ("B", 1)], "o1") is False  # a retry
        assert inventory.available(["A", "B"]) == {"A": 1, "B": 0}
        assert inventory.overdue(now=10**10) == []

    def test_a_short_line_changes_nothing(self, redis: Any) -> None:
        inventory = Inventory(redis)
        redis.hset("{shop}:avail", mapping={"A": 3, "B": 1})
        inventory.hold("r1", [("A", 2), ("B", 1)], 60, "o1")
        inventory.release("r1")
        inventory.hold("r2", [("B", 1)], 60, "o2")  # someone else took B
        with pytest.raises(OutOfStock) as refused:
            inventory.rehold("r1", [("A", 2), ("B", 1)], "o1")
        assert refused.value.items == [{"sku": "B", "requested": 1, "available": 0}]
        assert inventory.status("r1") == "RELEASED"
        assert inventory.available(["A", "B"]) == {"A": 3, "B": 0}

    def test_a_record_gone_with_its_ttl_is_recreated(self, redis: Any) -> None:
        inventory = Inventory(redis)
        redis.hset("{shop}:avail", "A", 1)
        assert inventory.rehold("r9", [("A", 1)], "o9") is True
        assert inventory.reservation("r9")["items"] == [("A", 1)]
        assert inventory.available(["A"]) == {"A": 0}
