"""Signed but malformed Stripe events (issue 10): recorded in the inbox as ``failed``
with the error, once — never a crash before the inbox row, never 25 retries."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from app.services import webhooks
from app.services.webhooks import handle_event, order_id_of_event
from models import Order, WebhookEvent
from models.db import utcnow
from tasks import clock


def malformed_events(order_id: str) -> list[dict[str, Any]]:
    intent_meta = {"orderId": order_id}
    return [
        {"type": "payment_intent.succeeded", "data": [1, 2]},
        {"type": "payment_intent.succeeded", "data": {"object": [1]}},
        {
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "metadata": "x"}},
        },
        {
            "type": "payment_intent.succeeded",
            "data": {"object": {"object": "payment_intent", "metadata": intent_meta}},
        },
        {
            "type": "payment_intent.payment_failed",
            "data": {
                "object": {"id": ["pi_1"], "object": "payment_intent", "metadata": intent_meta}
            },
        },
        {
            "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "metadata": intent_meta, "refunds": "x"}},
        },
        {
            "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "metadata": intent_meta, "amount_refunded": "lots"}},
        },
        {
            "type": "refund.updated",
            "data": {"object": {"id": "re_1", "payment_intent": ["pi_1"], "amount": 1}},
        },
    ]


@pytest.mark.parametrize("index", range(8))
def test_malformed_event_lands_in_the_inbox_as_failed_once(
    runtime: Any, order: Order, index: int, caplog: Any
) -> None:
    event = {"id": f"evt_bad_{index}", "object": "event", "created": 1}
    event.update(malformed_events(order.id)[index])
    assert order_id_of_event(event) in (None, order.id)  # the actor's first step: no crash
    outcome = handle_event(event["id"], event, runtime)  # no exception: no Dramatiq retry
    assert outcome.status == "failed"
    row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error and row.last_error.startswith("MalformedEvent")
    assert Order.get_by_id(order.id).state == "PENDING"
    assert "lots" not in caplog.text and "[1, 2]" not in caplog.text  # the payload is not logged


def test_malformed_event_through_the_actor_runs_once(
    runtime: Any, broker: Any, worker: Any, order: Order
) -> None:
    event = {"id": "evt_bad_actor", "object": "event", "created": 1}
    event.update(malformed_events(order.id)[2])
    webhooks.receive(runtime.redis, event)
    runtime.jobs.handle_stripe_event(event["id"])
    broker.join("default", timeout=20_000)
    row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
    assert (row.status, row.attempts) == ("failed", 1)
    assert broker.dead_letters == []


def test_clock_does_not_retry_a_malformed_event(
    runtime: Any, broker: Any, order: Order, monkeypatch: Any
) -> None:
    event = {"id": "evt_bad_clock", "object": "event", "created": 1}
    event.update(malformed_events(order.id)[0])
    handle_event(event["id"], event, runtime)
    WebhookEvent.update(created_at=utcnow() - timedelta(hours=1)).execute()
    assert webhooks.retryable_failed(older_than=utcnow()) == []
    assert "webhooks" not in clock.sweep(runtime).counts


def test_a_well_formed_event_still_applies(runtime: Any, gateway: Any, order: Order) -> None:
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    assert handle_event(event["id"], event, runtime).status == "processed"
    assert Order.get_by_id(order.id).state == "PAID"


def test_errors_are_logged_without_the_payload(runtime: Any, order: Order, caplog: Any) -> None:
    caplog.set_level(logging.INFO)  # ours and Dramatiq's (peewee's DEBUG echoes SQL)
    event = {"id": "evt_bad_log", "object": "event", "created": 1, "secret": "s3cr3t-value"}
    event.update(malformed_events(order.id)[2])
    handle_event(event["id"], event, runtime)
    assert "evt_bad_log" in caplog.text
    assert "s3cr3t-value" not in caplog.text
