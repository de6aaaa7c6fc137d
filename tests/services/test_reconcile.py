"""Reconciliation finds the events whose webhook never arrived."""

from __future__ import annotations

from typing import Any

from app import keys
from app.services.checkout import create_order_from_submission
from app.services.reconcile import reconcile
from app.services.webhooks import handle_event
from models import Order
from tests.fakes import admit_checkout, stock


class TestReconcile:
    def test_reports_unprocessed_events_once_handled_ones_are_done(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE")
        submission = admit_checkout(runtime.redis)
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        intent = gateway.confirm(order.payment_intent_id)
        delivered = gateway.event("payment_intent.succeeded", intent)
        handle_event(delivered["id"], delivered, runtime)
        gateway.create_refund(
            intent_id=intent.id, amount=100, reason=None, idempotency_key="r1", metadata={}
        )
        lost = gateway.event("charge.refunded", gateway.retrieve_charge(intent.latest_charge))
        gateway.event("customer.created", {"id": "cus_1"})  # not a handled type

        result = reconcile(runtime.redis, gateway)
        assert [e["id"] for e in result.missed] == [lost["id"]]
        assert int(runtime.redis.get(keys.RECONCILE_CHECKPOINT)) == result.checkpoint

        handle_event(lost["id"], lost, runtime)
        assert reconcile(runtime.redis, gateway).missed == []
        assert Order.get_by_id(order.id).amount_refunded == 100

    def test_a_missed_checkout_session_event_is_found_and_repairs_the_order(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE")
        submission = admit_checkout(runtime.redis, hosted=True)
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None and order.checkout_session_id
        gateway.pay_session(order.checkout_session_id, "pm_card_visa")
        session = gateway.retrieve_checkout_session(order.checkout_session_id)
        lost = gateway.event("checkout.session.completed", session)

        result = reconcile(runtime.redis, gateway)
        assert [e["id"] for e in result.missed] == [lost["id"]]
        handle_event(lost["id"], lost, runtime)

        assert Order.get_by_id(order.id).state == "PAID"
        assert reconcile(runtime.redis, gateway).missed == []
