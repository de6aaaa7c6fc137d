"""Recovery paths no test covered (issue 10, item 7): the clock's sweeps of overdue
holds, stale receipts and failed webhooks; a permanent Stripe failure in
``submit_refund``; a webhook the broker cannot queue (503, so Stripe retries)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.errors import PaymentProviderError
from app.services import webhooks
from app.services.checkout import create_order_from_submission
from app.services.receipts import queue_receipt
from app.services.refunds import request_refund, submit_refund
from app.services.webhooks import handle_event
from models import Order, Outbox, Refund, Reservation, WebhookEvent
from models.db import database, utcnow
from tasks import clock
from tests.fakes import admit_checkout, stock


def written_order(runtime: Any) -> Order:
    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    submission = admit_checkout(runtime.redis, [("TEE", 1)])
    order = create_order_from_submission(submission.order_id, runtime)
    assert order is not None
    return order


def an_hour_ago() -> Any:
    return utcnow() - timedelta(hours=1)


class TestClockSweeps:
    def test_overdue_hold_is_sent_to_expiry_once(self, runtime: Any, jobs: Any) -> None:
        order = written_order(runtime)
        Reservation.update(expires_at=an_hour_ago()).execute()
        assert clock.sweep(runtime).counts == {"holds": 1}
        assert jobs.named("expire_hold") == [(order.id, None)]
        assert not clock.sweep(runtime)  # throttled for this hold
        assert len(jobs.named("expire_hold")) == 1

    def test_an_order_written_but_never_opened_is_sent_back_once(
        self, runtime: Any, jobs: Any
    ) -> None:
        """Its actor failed after the row was written (so it left {shop}:pending) and the
        retry was lost with the Redis primary: without this nobody opens it."""
        from app.services.checkout import write_submission

        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        order = write_submission(admit_checkout(runtime.redis, [("TEE", 1)]).order_id, runtime)
        assert order is not None and order.payment_intent_id is None
        assert not clock.sweep(runtime)  # fresh: its actor may still be opening it
        Order.update(created_at=an_hour_ago()).where(Order.id == order.id).execute()
        assert clock.sweep(runtime).counts == {"unopened": 1}
        assert jobs.named("create_payment_intent") == [(order.id,)]
        assert not clock.sweep(runtime)  # throttled
        submission = admit_checkout(runtime.redis, [("TEE", 1)])
        opened = create_order_from_submission(submission.order_id, runtime)
        assert opened is not None and opened.payment_intent_id
        Order.update(created_at=an_hour_ago()).execute()
        assert not clock.sweep(runtime)  # an order with its intent is never sent back
        assert len(jobs.named("create_payment_intent")) == 1

    def test_hold_not_yet_due_is_left_alone(self, runtime: Any, jobs: Any) -> None:
        written_order(runtime)
        assert not clock.sweep(runtime)
        assert jobs.named("expire_hold") == []

    def test_stale_receipt_is_resent_once(self, runtime: Any, jobs: Any) -> None:
        order = written_order(runtime)
        with database().atomic():
            outbox_id = queue_receipt(order)
        assert not clock.sweep(runtime)  # fresh: its own message may still be on the way
        Outbox.update(created_at=an_hour_ago()).execute()
        assert clock.sweep(runtime).counts == {"receipts": 1}
        assert jobs.named("send_receipt") == [(outbox_id,)]
        assert not clock.sweep(runtime)

    def test_sent_receipt_is_not_resent(self, runtime: Any, jobs: Any) -> None:
        order = written_order(runtime)
        with database().atomic():
            queue_receipt(order)
        Outbox.update(created_at=an_hour_ago(), status="sent").execute()
        assert not clock.sweep(runtime)

    def test_failed_webhook_is_reenqueued_once(
        self, runtime: Any, jobs: Any, gateway: Any, monkeypatch: Any
    ) -> None:
        order = written_order(runtime)
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))

        def database_hiccup(*_: Any) -> None:
            raise ConnectionError("database hiccup")

        monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", database_hiccup)
        with pytest.raises(ConnectionError):
            handle_event(event["id"], event, runtime)
        assert WebhookEvent.get().status == "failed"
        WebhookEvent.update(created_at=an_hour_ago()).execute()
        assert clock.sweep(runtime).counts == {"webhooks": 1}
        assert jobs.named("handle_stripe_event") == [(event["id"],)]
        assert not clock.sweep(runtime)

    def test_processed_webhook_is_not_reenqueued(
        self, runtime: Any, jobs: Any, gateway: Any
    ) -> None:
        order = written_order(runtime)
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        handle_event(event["id"], event, runtime)
        WebhookEvent.update(created_at=an_hour_ago()).execute()
        Outbox.update(status="sent").execute()
        assert not clock.sweep(runtime)


class TestRefundPermanentFailure:
    def test_permanent_stripe_error_marks_the_refund_failed_and_audits_it(
        self, runtime: Any, gateway: Any
    ) -> None:
        order = written_order(runtime)
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        handle_event(event["id"], event, runtime)
        refund, _ = request_refund(order.id, idempotency_key="rk-permanent-1")
        gateway.fail_next(
            "create_refund",
            PaymentProviderError(
                "Charge has been disputed.", retryable=False, provider_code="charge_disputed"
            ),
        )
        result = submit_refund(refund.id, runtime)  # no exception: no pointless retry
        assert result.status == "failed"
        stored = Refund.get_by_id(refund.id)
        assert (stored.status, stored.stripe_refund_id) == ("failed", None)
        failed = [e for e in Order.get_by_id(order.id).events if e.type == "REFUND_FAILED"]
        assert failed[0].payload == {"refundId": refund.id, "message": "Charge has been disputed."}
        paid = Order.get_by_id(order.id)
        assert (paid.state, paid.amount_refunded) == ("PAID", 0)
        # Nothing is in flight any more: the whole amount may be asked for again.
        again, created = request_refund(order.id, idempotency_key="rk-permanent-2")
        assert created and again.amount == order.total
        # A second run of the failed refund's actor does not call Stripe again.
        calls = len(gateway.calls)
        assert submit_refund(refund.id, runtime).status == "failed"
        assert len(gateway.calls) == calls


class TestReconciledEvents:
    def test_a_missed_event_goes_to_the_inbox_and_its_message_carries_the_id_only(
        self, runtime: Any, jobs: Any, gateway: Any
    ) -> None:
        order = written_order(runtime)
        missed = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        assert clock.reconcile_events(runtime) == 1
        assert jobs.named("handle_stripe_event") == [(missed["id"],)]
        assert webhooks.received_event(runtime.redis, missed["id"]) == missed
        assert WebhookEvent.get(WebhookEvent.event_id == missed["id"]).status == "received"


class TestWebhookEnqueueFailure:
    def test_a_webhook_the_broker_cannot_take_is_503_so_stripe_retries(
        self, client: Any, runtime: Any, gateway: Any, monkeypatch: Any
    ) -> None:
        def broker_down(*_: Any) -> None:
            raise ConnectionError("broker unreachable")

        monkeypatch.setattr(runtime.jobs, "handle_stripe_event", broker_down)
        body, header = gateway.signed(gateway.event("payment_intent.succeeded", {"id": "pi_1"}))
        response = client.post(
            "/api/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": header},
            content_type="application/json",
        )
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"
        assert WebhookEvent.select().count() == 0  # nothing acknowledged, nothing recorded
