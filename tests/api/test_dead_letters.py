"""Dead letters: a webhook event whose handler exhausts its retries is marked ``dead``,
counted, listed by the admin API, alerted on by the clock, and replayable."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.errors import PaymentProviderError
from app.services import webhooks
from app.services.webhooks import MAX_ATTEMPTS, handle_event
from models import Order, WebhookEvent
from models.db import utcnow
from tasks import ACTORS
from tasks.clock import alert_dead_letters, sweep


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def row_of(event: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent.get(WebhookEvent.event_id == event["id"])


def kill(runtime: Any, gateway: Any, order: Order, monkeypatch: Any) -> dict[str, Any]:
    """A payment_intent.succeeded whose handler failed on every allowed attempt."""
    intent = gateway.confirm(order.payment_intent_id)
    event = gateway.event("payment_intent.succeeded", intent)

    def broken(*_: Any) -> None:
        raise PaymentProviderError("database of the warehouse is down", retryable=True)

    with monkeypatch.context() as patch:
        patch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", broken)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with pytest.raises(PaymentProviderError):
                handle_event(event["id"], event, runtime)
            expected = "dead" if attempt == MAX_ATTEMPTS else "failed"
            assert row_of(event).status == expected, attempt
    return event


@pytest.fixture
def dead_event(
    runtime: Any, gateway: Any, pending_order: Order, monkeypatch: Any
) -> dict[str, Any]:
    """An event dead for an hour (old enough for the clock's sweeps)."""
    event = kill(runtime, gateway, pending_order, monkeypatch)
    an_hour_ago = utcnow() - timedelta(hours=1)
    WebhookEvent.update(created_at=an_hour_ago).where(
        WebhookEvent.event_id == event["id"]
    ).execute()
    return event


class TestDeadLetters:
    def test_the_limit_is_the_actors_retries_plus_its_first_try(self) -> None:
        (retries,) = [n for fn, n in ACTORS if fn.__name__ == "handle_stripe_event"]
        assert retries + 1 == MAX_ATTEMPTS

    def test_exhausted_retries_mark_the_row_dead_with_its_error(
        self, runtime: Any, gateway: Any, pending_order: Order, monkeypatch: Any, caplog: Any
    ) -> None:
        before = metric("checkout_webhook_dead_letters_total")
        with caplog.at_level(logging.ERROR):
            event = kill(runtime, gateway, pending_order, monkeypatch)
        row = row_of(event)
        assert (row.status, row.attempts) == ("dead", MAX_ATTEMPTS)
        assert "warehouse is down" in row.last_error
        assert metric("checkout_webhook_dead_letters_total") == before + 1
        assert any("is dead after" in r.getMessage() for r in caplog.records)
        assert Order.get_by_id(pending_order.id).state == "PENDING"

    def test_the_clock_skips_and_alerts_on_dead_rows(
        self, runtime: Any, jobs: Any, dead_event: Any, caplog: Any
    ) -> None:
        alerts = metric("checkout_webhook_dead_alerts_total")
        with caplog.at_level(logging.ERROR, logger="tasks.clock"):
            sweep(runtime)
        assert jobs.named("handle_stripe_event") == []  # never re-enqueued by the clock
        assert metric("checkout_webhook_dead_events") == 1
        assert metric("checkout_webhook_dead_alerts_total") == alerts + 1
        assert any("are dead" in r.getMessage() for r in caplog.records)
        assert alert_dead_letters() == 1

    def test_listed_then_replayed_to_processed(
        self,
        client: Any,
        broker: Any,
        worker: Any,
        admin_headers: Any,
        dead_event: Any,
        pending_order: Order,
    ) -> None:
        listed = client.get("/api/admin/webhook-events?status=dead", headers=admin_headers)
        assert listed.status_code == 200
        (row,) = listed.get_json()["data"]
        assert (row["eventId"], row["status"], row["attempts"]) == (
            dead_event["id"],
            "dead",
            MAX_ATTEMPTS,
        )
        assert "warehouse is down" in row["lastError"]

        replay = client.post(
            f"/api/admin/webhook-events/{dead_event['id']}/replay", headers=admin_headers
        )
        assert replay.status_code == 202
        broker.join("default")
        worker.join()
        stored = row_of(dead_event)
        assert (stored.status, stored.attempts) == ("processed", 1)  # a fresh budget
        assert Order.get_by_id(pending_order.id).state == "PAID"
        still_dead = client.get("/api/admin/webhook-events?status=dead", headers=admin_headers)
        assert still_dead.get_json()["data"] == []
