"""I10 for refunds and disputes: an event acts only on the order whose payment it is.

``metadata.orderId`` names the order, but the object (re-read from Stripe) must belong
to that order's intent, in its currency: another order's charge or refund, or a dispute
Stripe does not know, is ignored, audited (``PAYMENT_MISMATCH_IGNORED``) and counted.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.services.checkout import create_order_from_submission
from app.services.webhooks import handle_event
from models import Order, Refund
from tests.fakes import admit_checkout

ON_HAND = 10


def mismatches(kind: str) -> float:
    labels = {"object": kind}
    return REGISTRY.get_sample_value("checkout_stripe_object_mismatch_total", labels) or 0.0


def pay(runtime: Any, gateway: Any, order: Order) -> Order:
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    return Order.get_by_id(order.id)


@pytest.fixture
def victim(runtime: Any, gateway: Any, order: Order) -> Order:
    """A second paid order (1 TEE), the one the forged metadata names."""
    submission = admit_checkout(runtime.redis, [("TEE", 1)])
    created = create_order_from_submission(submission.order_id, runtime)
    assert created is not None
    return pay(runtime, gateway, created)


def naming(obj: dict[str, Any], order: Order) -> dict[str, Any]:
    return {**obj, "metadata": {**obj.get("metadata", {}), "orderId": order.id}}


def deliver(runtime: Any, gateway: Any, type_: str, obj: dict[str, Any], **kw: Any) -> None:
    event = gateway.event(type_, obj, **kw)
    handle_event(event["id"], event, runtime)


def assert_ignored(victim: Order, kind: str, mismatch: list[str]) -> None:
    stored = Order.get_by_id(victim.id)
    assert (stored.state, stored.amount_refunded, stored.dispute) == ("PAID", 0, None)
    assert Refund.select().where(Refund.order == victim.id).count() == 0
    (audit,) = [e.payload for e in stored.events if e.type == "PAYMENT_MISMATCH_IGNORED"]
    assert (audit["object"], audit["mismatch"]) == (kind, mismatch)
    assert audit["expectedIntentId"] == victim.payment_intent_id


class TestRefundsOfAnotherOrder:
    def test_charge_refunded_of_one_order_naming_another_is_ignored(
        self, runtime: Any, gateway: Any, order: Order, victim: Order
    ) -> None:
        own = pay(runtime, gateway, order)
        gateway.create_refund(
            intent_id=own.payment_intent_id,
            amount=own.total,
            reason=None,
            idempotency_key="r1",
            metadata={},
        )
        charge = gateway.retrieve_charge(gateway.intents[own.payment_intent_id].latest_charge)
        before = mismatches("charge")
        deliver(runtime, gateway, "charge.refunded", naming(charge, victim), current=False)
        assert_ignored(victim, "charge", ["intent", "amount"])
        assert mismatches("charge") == before + 1
        assert Order.get_by_id(own.id).state == "PAID"  # its own event will come on its own

    def test_refund_of_one_order_naming_another_is_ignored(
        self, runtime: Any, gateway: Any, order: Order, victim: Order
    ) -> None:
        own = pay(runtime, gateway, order)
        refund = gateway.create_refund(
            intent_id=own.payment_intent_id,
            amount=500,
            reason=None,
            idempotency_key="r1",
            metadata={"orderId": victim.id},
        )
        deliver(runtime, gateway, "refund.updated", refund)
        assert_ignored(victim, "refund", ["intent"])


class TestDisputesOfAnotherOrder:
    def test_dispute_stripe_does_not_know_is_ignored(
        self, runtime: Any, gateway: Any, victim: Order
    ) -> None:
        forged = {
            "id": "dp_forged",
            "object": "dispute",
            "amount": victim.total,
            "currency": "usd",
            "charge": "ch_does_not_exist",
            "payment_intent": victim.payment_intent_id,
            "status": "needs_response",
            "metadata": {"orderId": victim.id},
        }
        before = mismatches("dispute")
        deliver(runtime, gateway, "charge.dispute.created", forged, current=False)
        assert_ignored(victim, "dispute", ["missing"])
        assert mismatches("dispute") == before + 1

    def test_dispute_on_another_orders_payment_is_ignored(
        self, runtime: Any, gateway: Any, order: Order, victim: Order
    ) -> None:
        own = pay(runtime, gateway, order)
        dispute = {
            "id": "dp_1",
            "object": "dispute",
            "amount": own.total,
            "currency": "usd",
            "charge": gateway.intents[own.payment_intent_id].latest_charge,
            "payment_intent": own.payment_intent_id,
            "status": "needs_response",
            "metadata": {},
        }
        deliver(runtime, gateway, "charge.dispute.created", naming(dispute, victim))
        assert_ignored(victim, "dispute", ["intent"])
