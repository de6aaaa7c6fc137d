"""Disputes through the handlers with plain dict events: the order's record, the audit
trail, the operator's e-mail, the metrics, and the evidence draft staged (not submitted)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from app.services import disputes, receipts
from app.services.fulfillment import update_fulfillment
from app.services.order_views import order_view
from app.services.webhooks import handle_event
from models import Order, Outbox
from tests.fakes import intent_dict

DUE_BY = 1_900_000_000  # 2030-03-17T17:46:40Z


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def dispute(order: Order, status: str = "needs_response", **changes: Any) -> dict[str, Any]:
    return {
        "id": "dp_1",
        "object": "dispute",
        "amount": order.total,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": order.payment_intent_id,
        "reason": "fraudulent",
        "status": status,
        "evidence_details": {"due_by": DUE_BY, "has_evidence": False, "submission_count": 0},
        "metadata": {},
        **changes,
    }


def deliver(runtime: Any, gateway: Any, type_: str, obj: dict[str, Any]) -> Any:
    event = gateway.event(type_, obj)
    return handle_event(event["id"], event, runtime)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestDisputeEvents:
    def test_created_marks_the_order_alerts_and_asks_for_evidence(
        self, runtime: Any, gateway: Any, jobs: Any, mailer: Any, order: Order
    ) -> None:
        opened_before = metric("checkout_disputes_total")
        outcome = deliver(runtime, gateway, "charge.dispute.created", dispute(order))
        stored = Order.get_by_id(order.id)
        assert stored.dispute == {
            "id": "dp_1",
            "status": "needs_response",
            "reason": "fraudulent",
            "amount": order.total,
            "currency": "usd",
            "evidenceDueBy": "2030-03-17T17:46:40Z",
        }
        assert order_view(stored)["dispute"] == stored.dispute
        assert "DISPUTE_OPENED" in types(order.id)
        assert metric("checkout_disputes_total") == opened_before + 1
        assert jobs.named("stage_dispute_evidence") == [(order.id,)]
        (outbox_id,) = outcome.outbox_ids
        assert Outbox.get_by_id(outbox_id).kind == "dispute_alert"
        assert receipts.send_receipt(outbox_id, mailer, "shop@example.com")
        (message,) = mailer.sent
        assert message.to == runtime.config.operator_email
        assert "dp_1" in message.text and "2030-03-17T17:46:40Z" in message.text

    def test_updated_then_closed(self, runtime: Any, gateway: Any, order: Order) -> None:
        deliver(runtime, gateway, "charge.dispute.created", dispute(order))
        deliver(runtime, gateway, "charge.dispute.updated", dispute(order, "under_review"))
        assert Order.get_by_id(order.id).dispute["status"] == "under_review"
        outcome = deliver(runtime, gateway, "charge.dispute.closed", dispute(order, "lost"))
        assert Order.get_by_id(order.id).dispute["status"] == "lost"
        trail = types(order.id)
        assert [t for t in trail if t.startswith("DISPUTE_")] == [
            "DISPUTE_OPENED",
            "DISPUTE_UPDATED",
            "DISPUTE_CLOSED",
        ]
        (closed_alert,) = outcome.outbox_ids
        assert Outbox.get_by_id(closed_alert).key == "dispute:dp_1:closed"

    def test_out_of_order_deliveries_never_reopen_a_closed_dispute(
        self, runtime: Any, gateway: Any, jobs: Any, order: Order
    ) -> None:
        deliver(runtime, gateway, "charge.dispute.closed", dispute(order, "won"))
        deliver(runtime, gateway, "charge.dispute.created", dispute(order))
        stored = Order.get_by_id(order.id)
        assert stored.dispute["status"] == "won"
        assert [t for t in types(order.id) if t.startswith("DISPUTE_")] == [
            "DISPUTE_OPENED",
            "DISPUTE_CLOSED",
        ]
        assert jobs.named("stage_dispute_evidence") == []  # nothing left to answer

    def test_duplicate_delivery_changes_nothing(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        event = gateway.event("charge.dispute.created", dispute(order))
        handle_event(event["id"], event, runtime)
        before = types(order.id)
        runtime.redis.flushdb()
        assert handle_event(event["id"], event, runtime).status == "duplicate"
        assert types(order.id) == before

    def test_a_dispute_of_the_wrong_shape_is_failed_once(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        outcome = deliver(runtime, gateway, "charge.dispute.created", dispute(order, amount="x"))
        assert outcome.status == "failed"
        assert Order.get_by_id(order.id).dispute is None


class TestEvidence:
    def test_the_draft_is_staged_without_submitting(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id)
        deliver(runtime, gateway, "payment_intent.succeeded", intent_dict(intent))
        update_fulfillment(
            order.id, "start", runtime=runtime, carrier="UPS", tracking_number="1Z999AA10123456784"
        )
        deliver(runtime, gateway, "charge.dispute.created", dispute(order))

        assert disputes.stage_evidence(order.id, runtime) is True
        (draft,) = gateway.dispute_evidence["dp_1"]
        assert draft["shipping_carrier"] == "UPS"
        assert draft["shipping_tracking_number"] == "1Z999AA10123456784"
        assert draft["customer_email_address"] == order.email
        assert "1 Main St" in draft["shipping_address"]
        assert "2 x Product TEE (TEE)" in draft["product_description"]
        text = draft["uncategorized_text"]
        assert f"Thank you for your order {order.order_number}" in text
        assert "PAYMENT_SUCCEEDED" in text and "FULFILLMENT_STARTED" in text
        staged = [e.payload for e in Order.get_by_id(order.id).events if e.type.endswith("STAGED")]
        assert staged == [{"disputeId": "dp_1", "fields": sorted(draft), "submitted": False}]

        assert disputes.stage_evidence(order.id, runtime) is False  # once per dispute
        assert len(gateway.dispute_evidence["dp_1"]) == 1

    def test_nothing_to_stage_once_closed(self, runtime: Any, gateway: Any, order: Order) -> None:
        deliver(runtime, gateway, "charge.dispute.closed", dispute(order, "lost"))
        assert disputes.stage_evidence(order.id, runtime) is False
        assert gateway.dispute_evidence == {}
