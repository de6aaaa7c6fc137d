"""Exactly-once under concurrency on PostgreSQL (I3): one event, many workers, one effect."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.services.checkout import create_order_from_submission
from app.services.webhooks import handle_event
from models import Order, OrderEvent, Outbox, Product, WebhookEvent
from models.db import close_database
from tests.fakes import admit_checkout, stock

pytestmark = pytest.mark.postgres
THREADS = 8


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def run_concurrently(target: Any, count: int) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(target())
        except BaseException as exc:  # reported by the caller's assertions
            errors.append(exc)
        finally:
            close_database()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


class TestExactlyOnceOnPostgres:
    def test_same_event_in_parallel_has_one_effect(self, runtime: Any, gateway: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))

        results, errors = run_concurrently(
            lambda: handle_event(event["id"], event, runtime).status, THREADS
        )

        assert errors == []
        assert sorted(results) == ["duplicate"] * (THREADS - 1) + ["processed"]
        assert Order.get_by_id(order.id).state == "PAID"
        succeeded = OrderEvent.select().where(OrderEvent.type == "PAYMENT_SUCCEEDED")
        assert succeeded.count() == 1
        assert Product.get_by_id("TEE").stock_on_hand == 3
        assert Outbox.select().count() == 1
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("processed", 1)

    def test_two_events_for_one_order_in_parallel_pay_once(
        self, runtime: Any, gateway: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        intent = gateway.confirm(order.payment_intent_id)
        events = [gateway.event("payment_intent.succeeded", intent) for _ in range(THREADS)]
        pending = list(events)
        lock = threading.Lock()

        def deliver_one() -> str:
            with lock:
                event = pending.pop()
            return handle_event(event["id"], event, runtime).status

        results, errors = run_concurrently(deliver_one, THREADS)
        assert errors == []
        assert results == ["processed"] * THREADS
        assert OrderEvent.select().where(OrderEvent.type == "PAYMENT_SUCCEEDED").count() == 1
        assert Product.get_by_id("TEE").stock_on_hand == 3
