"""Admin actions on orders: refund requests, fulfilment, cancel of a pending order."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import InvalidState
from app.services.expiry import cancel_order
from app.services.fulfillment import update_fulfillment
from app.services.inventory import Inventory
from app.services.refunds import request_refund, submit_refund
from app.services.webhooks import handle_event
from models import Order, Refund


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
