"""Admin actions on orders: refund requests, fulfilment, cancel of a pending order."""

from __future__ import annotations

from typing import Any

import pytest

from app import keys
from app.errors import InvalidState
from app.services.expiry import cancel_order
from app.services.fulfillment import update_fulfillment
from app.services.inventory import Inventory
from app.services.ownership import Current
from app.services.refunds import request_refund, submit_refund
from app.services.webhooks import HANDLERS, Context, handle_event
from models import Order, Product, Refund


@pytest.fixture
def paid(runtime: Any, gateway: Any, order: Order) -> Order:
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    return Order.get_by_id(order.id)


class TestRequestRefund:
    def test_pending_order_cannot_be_refunded(self, order: Order) -> None:
        with pytest.raises(InvalidState):
            request_refund(order.id, idempotency_key="k1")

    def test_partial_then_rest_then_nothing(self, paid: Order) -> None:
        first, created = request_refund(paid.id, idempotency_key="k1", amount=1000)
        assert created and first.amount == 1000 and first.status == "pending"
        with pytest.raises(InvalidState):
            request_refund(paid.id, idempotency_key="k2", amount=paid.total)
        rest, _ = request_refund(paid.id, idempotency_key="k3")
        assert rest.amount == paid.total - 1000
        with pytest.raises(InvalidState):
            request_refund(paid.id, idempotency_key="k4")

    def test_same_key_returns_the_same_refund(self, paid: Order) -> None:
        first, _ = request_refund(paid.id, idempotency_key="k1", amount=500)
        again, created = request_refund(paid.id, idempotency_key="k1", amount=500)
        assert (again.id, created) == (first.id, False)

    def test_submitted_once_then_settled_by_webhook_with_restock(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        refund, _ = request_refund(paid.id, idempotency_key="k1", restock=True)
        submit_refund(refund.id, runtime)
        submit_refund(refund.id, runtime)
        assert len(gateway.refunds) == 1
        stripe_refund = next(iter(gateway.refunds.values()))
        assert stripe_refund["metadata"] == {"orderId": paid.id, "refundId": refund.id}
        event = gateway.event("refund.updated", stripe_refund)
        handle_event(event["id"], event, runtime)
        assert Refund.get_by_id(refund.id).status == "succeeded"
        stored = Order.get_by_id(paid.id)
        assert (stored.state, stored.amount_refunded) == ("REFUNDED", paid.total)
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}


def deliver(runtime: Any, gateway: Any, type_: str, obj: dict[str, Any], **kw: Any) -> None:
    event = gateway.event(type_, obj, **kw)
    handle_event(event["id"], event, runtime)


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def refund_at_stripe(runtime: Any, gateway: Any, paid: Order) -> tuple[Refund, dict[str, Any]]:
    """A full refund with restock, submitted: Stripe's refund says ``succeeded`` (for now)."""
    refund, _ = request_refund(paid.id, idempotency_key="k1", restock=True)
    submit_refund(refund.id, runtime)
    return refund, dict(next(iter(gateway.refunds.values())))


def assert_not_refunded(runtime: Any, paid: Order) -> None:
    """The order is where it was, nothing counted, no unit back on sale; a new refund may go."""
    stored = Order.get_by_id(paid.id)
    assert (stored.state, stored.amount_refunded) == ("PAID", 0)
    assert Product.get_by_id("TEE").stock_on_hand == 3
    assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 3}
    again, created = request_refund(paid.id, idempotency_key="k2")
    assert created and again.amount == paid.total


class TestFailedRefund:
    """``pm_card_refundFail``: Stripe says succeeded, then failed; only success counts."""

    def test_failed_before_its_events_are_handled_counts_nothing(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        refund, snapshot = refund_at_stripe(runtime, gateway, paid)
        charge = gateway.retrieve_charge(snapshot["charge"])
        gateway.fail_refund(snapshot["id"])
        # Stripe's events in Stripe's order, the first two snapshots of the success.
        deliver(runtime, gateway, "charge.refunded", {**charge, "amount_refunded": paid.total})
        deliver(runtime, gateway, "refund.created", snapshot, current=False)
        deliver(runtime, gateway, "refund.failed", gateway.retrieve_refund(snapshot["id"]))
        assert Refund.get_by_id(refund.id).status == "failed"
        failed = [e.payload for e in Order.get_by_id(paid.id).events if e.type == "REFUND_FAILED"]
        assert [p["failureReason"] for p in failed] == ["expired_or_canceled_card"]
        assert "REFUNDED" not in types(paid.id)
        assert_not_refunded(runtime, paid)

    def test_late_success_after_the_failure_changes_nothing(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        refund, snapshot = refund_at_stripe(runtime, gateway, paid)
        deliver(runtime, gateway, "refund.failed", gateway.fail_refund(snapshot["id"]))
        before = types(paid.id)
        deliver(runtime, gateway, "refund.updated", snapshot, current=False)
        deliver(runtime, gateway, "refund.created", snapshot, current=False)
        # Even a stale re-read, applied after the failure, cannot flip it back.
        ctx = Context(runtime=runtime, event={}, current=Current("refund", snapshot))
        HANDLERS["refund.updated"](Order.get_by_id(paid.id), snapshot, ctx)
        assert Refund.get_by_id(refund.id).status == "failed"
        assert types(paid.id) == before
        assert_not_refunded(runtime, paid)

    def test_failed_after_it_counted_is_taken_back(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        _, snapshot = refund_at_stripe(runtime, gateway, paid)
        deliver(runtime, gateway, "refund.updated", snapshot)
        assert Order.get_by_id(paid.id).state == "REFUNDED"
        deliver(runtime, gateway, "refund.failed", gateway.fail_refund(snapshot["id"]))
        stored = Order.get_by_id(paid.id)
        assert (stored.state, stored.amount_refunded) == ("PAID", 0)
        change = [e.payload for e in stored.events if e.type == "STATE_CHANGED"][-1]
        assert change == {"from": "REFUNDED", "to": "PAID", "reason": "refund_failed"}
        # The units the success put back are off sale again: the goods are the buyer's.
        assert_not_refunded(runtime, paid)
        reclaimed = [e.payload for e in stored.events if e.type == "STOCK_RECLAIMED"]
        assert [(p["items"], p["short"]) for p in reclaimed] == [([["TEE", 2]], [])]
        # A redelivery of the failure takes nothing more.
        deliver(runtime, gateway, "refund.failed", gateway.retrieve_refund(snapshot["id"]))
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 3}
        assert types(paid.id).count("STOCK_RECLAIMED") == 1

    def test_units_sold_again_meanwhile_stay_sold_and_are_reported(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        _, snapshot = refund_at_stripe(runtime, gateway, paid)
        deliver(runtime, gateway, "refund.updated", snapshot)
        runtime.redis.hincrby(keys.AVAIL, "TEE", -4)  # 4 of the 5 free units sold again
        deliver(runtime, gateway, "refund.failed", gateway.fail_refund(snapshot["id"]))
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 0}
        assert Product.get_by_id("TEE").stock_on_hand == 4
        (reclaimed,) = [
            e.payload for e in Order.get_by_id(paid.id).events if e.type == "STOCK_RECLAIMED"
        ]
        assert (reclaimed["items"], reclaimed["short"]) == ([["TEE", 1]], [["TEE", 1]])

    def test_a_later_refund_may_restock_the_reclaimed_units(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        _, snapshot = refund_at_stripe(runtime, gateway, paid)
        deliver(runtime, gateway, "refund.updated", snapshot)
        deliver(runtime, gateway, "refund.failed", gateway.fail_refund(snapshot["id"]))
        again, _ = request_refund(paid.id, idempotency_key="k2", restock=True)
        submit_refund(again.id, runtime)
        second = gateway.refunds[again.stripe_refund_id] if again.stripe_refund_id else None
        second = second or next(r for r in gateway.refunds.values() if r["id"] != snapshot["id"])
        deliver(runtime, gateway, "refund.updated", dict(second))
        assert Order.get_by_id(paid.id).state == "REFUNDED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}


class TestFulfillment:
    def test_start_then_complete(self, runtime: Any, paid: Order) -> None:
        update_fulfillment(paid.id, "start", runtime=runtime, carrier="UPS", tracking_number="1Z")
        done = update_fulfillment(paid.id, "complete", runtime=runtime)
        assert done.state == "FULFILLED"
        kinds = [e.type for e in Order.get_by_id(paid.id).events]
        assert kinds[-4:] == ["FULFILLMENT_STARTED", "STATE_CHANGED", "FULFILLED", "STATE_CHANGED"]

    def test_complete_before_start_is_refused(self, runtime: Any, paid: Order) -> None:
        with pytest.raises(InvalidState):
            update_fulfillment(paid.id, "complete", runtime=runtime)

    def test_pending_order_cannot_ship(self, runtime: Any, order: Order) -> None:
        with pytest.raises(InvalidState):
            update_fulfillment(order.id, "start", runtime=runtime)


class TestCancelOrder:
    def test_cancels_intent_then_releases(self, runtime: Any, gateway: Any, order: Order) -> None:
        gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        assert cancel_order(order.id, runtime).action == "canceled"
        assert gateway.intents[order.payment_intent_id].status == "canceled"
        assert Order.get_by_id(order.id).state == "CANCELED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}

    def test_processing_payment_cannot_be_canceled(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        gateway.confirm(order.payment_intent_id, "pm_emulator_delayed")
        with pytest.raises(InvalidState):
            cancel_order(order.id, runtime)
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"

    def test_paid_order_cannot_be_canceled(self, runtime: Any, paid: Order) -> None:
        with pytest.raises(InvalidState):
            cancel_order(paid.id, runtime)
