"""Broker set-up: stub in tests, Redis tuned for fast redelivery, retry policy, middleware."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from app.gateways.jobs import DELAY_POLL_MIN_MISSES, IDLE_POLL_MIN_MISSES
from tasks.broker import (
    HEARTBEAT_TIMEOUT_MS,
    MAINTENANCE_CHANCE,
    DatabaseMiddleware,
    make_broker,
    should_retry,
)


def retries_of(broker: Any) -> Retries:
    return next(m for m in broker.middleware if isinstance(m, Retries))


class TestMakeBroker:
    def test_tests_use_the_stub_broker_with_every_actor(self, broker: Any) -> None:
        assert isinstance(broker, StubBroker)
        assert {
            "create_payment_intent",
            "handle_stripe_event",
            "expire_hold",
            "send_receipt",
            "cancel_order",
            "create_refund",
        } <= set(broker.actors)

    def test_redis_broker_redelivers_a_dead_workers_messages_within_90_s(self) -> None:
        broker = make_broker("redis")
        assert isinstance(broker, RedisBroker)
        assert broker.heartbeat_timeout == HEARTBEAT_TIMEOUT_MS <= 60_000
        # Maintenance (which requeues a dead worker's messages) runs on ~10 % of commands;
        # an idle consumer polls about once a second, so it runs within seconds.
        assert broker.maintenance_chance == MAINTENANCE_CHANCE >= 50_000
        assert any(isinstance(m, DatabaseMiddleware) for m in broker.middleware)
        retries = retries_of(broker)
        assert retries.retry_when is should_retry
        assert retries.min_backoff == 1_000
        broker.close()

    @pytest.mark.parametrize("kind", ["stub", "redis"])
    def test_runs_only_the_middleware_our_actors_use(self, kind: str) -> None:
        broker = make_broker(kind)
        names = [type(m).__name__ for m in broker.middleware]
        broker.close()
        assert names == [
            "TimeLimit",
            "Retries",
            "DatabaseMiddleware",
            "MetricsMiddleware",
            "ShopEventsMiddleware",
        ]

    @pytest.mark.parametrize("option", ["max_age", "notify_shutdown", "on_success", "pipe_target"])
    def test_an_actor_asking_for_a_dropped_middleware_is_refused(self, option: str) -> None:
        """Not silently ignored: the middleware that would read the option is not there."""
        with pytest.raises(ValueError, match=option):
            dramatiq.actor(lambda: None, broker=make_broker("stub"), **{option: 1})


class TestDatabaseMiddleware:
    def test_opens_and_closes_the_connection_per_message(self, db: Any) -> None:
        middleware = DatabaseMiddleware()
        db.close()
        middleware.before_process_message(None, None)  # type: ignore[arg-type]
        assert not db.is_closed()
        middleware.after_process_message(None, None)  # type: ignore[arg-type]
        assert db.is_closed()


class TestShopEventsMiddleware:
    """After a message, the shop events that message recorded are fanned out; a message
    that recorded none leaves the outbox to the clock's sweep."""

    @staticmethod
    def new_order(runtime: Any) -> Any:
        """A PENDING order (its order.created event waits in the outbox), made outside
        any message; the record of it is taken, as a previous message's would be."""
        from app.services import shop_events
        from app.services.checkout import create_order_from_submission
        from tests.fakes import admit_checkout, stock

        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        order = create_order_from_submission(admit_checkout(runtime.redis).order_id, runtime)
        shop_events.take_recorded()
        return order

    @staticmethod
    def waiting() -> int:
        from models import ShopEvent

        return ShopEvent.select().where(ShopEvent.dispatched == False).count()  # noqa: E712

    @staticmethod
    def after_message() -> None:
        from types import SimpleNamespace

        from tasks.broker import ShopEventsMiddleware

        message = SimpleNamespace(actor_name="handle_stripe_event")
        ShopEventsMiddleware().after_process_message(None, message)  # type: ignore[arg-type]

    def test_a_message_that_recorded_an_event_fans_out(self, runtime: Any) -> None:
        from app.services.state_machine import PAID, transition
        from models import ShopDelivery

        runtime.config = runtime.config.with_overrides(
            shop_webhook_urls=("http://127.0.0.1:9/a",), shop_webhook_secrets=("whsec_a",)
        )
        transition(self.new_order(runtime), PAID, "test")  # in a message: order.paid
        assert self.waiting() == 2
        self.after_message()
        assert self.waiting() == 0 and ShopDelivery.select().count() == 2

    def test_with_no_endpoint_the_events_wait_for_the_clock(self, runtime: Any) -> None:
        from app.services.state_machine import PAID, transition

        transition(self.new_order(runtime), PAID, "test")
        self.after_message()
        assert self.waiting() == 2  # no statement per message: the clock's sweep marks them

    def test_a_message_that_recorded_none_leaves_the_outbox_alone(self, runtime: Any) -> None:
        from app.services import shop_events

        self.new_order(runtime)
        self.after_message()
        assert self.waiting() == 1  # the clock's sweep fans it out
        assert shop_events.take_recorded() is False


class TestIdlePolling:
    """A worker's consumer polls an empty queue after 40 ms at the least (not 5)."""

    def polled(self, monkeypatch: pytest.MonkeyPatch, batches: list[list[bytes]]) -> Any:
        broker = make_broker("redis")
        consumer = broker.consume("default", prefetch=4, timeout=1000)
        monkeypatch.setattr(broker, "do_fetch", lambda queue, n: batches.pop(0) if batches else [])
        return consumer

    def test_the_first_empty_poll_waits_40_ms(self, monkeypatch: pytest.MonkeyPatch) -> None:
        slept: list[float] = []
        monkeypatch.setattr("dramatiq.brokers.redis.time.sleep", slept.append)
        consumer = self.polled(monkeypatch, [])
        assert next(consumer) is None
        assert IDLE_POLL_MIN_MISSES == 3 and 0.04 <= slept[0] <= 0.08

    def test_so_does_the_one_after_a_message(self, monkeypatch: pytest.MonkeyPatch) -> None:
        slept: list[float] = []
        monkeypatch.setattr("dramatiq.brokers.redis.time.sleep", slept.append)
        message = Message(
            queue_name="default", actor_name="work", args=(), kwargs={}, options={}
        ).encode()
        consumer = self.polled(monkeypatch, [[message]])
        assert next(consumer) is not None
        assert next(consumer) is None
        assert len(slept) == 1 and 0.04 <= slept[0] <= 0.08

    def test_a_delay_queue_is_polled_once_per_worker_timeout(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Its messages are due later anyway: one fetch a second takes them all."""
        slept: list[float] = []
        monkeypatch.setattr("dramatiq.brokers.redis.time.sleep", slept.append)
        broker = make_broker("redis")
        consumer = broker.consume("holds.DQ", prefetch=4, timeout=1000)
        monkeypatch.setattr(broker, "do_fetch", lambda queue, n: [])
        assert next(consumer) is None
        assert next(consumer) is None
        assert DELAY_POLL_MIN_MISSES == 8 and all(0.5 <= pause <= 1.0 for pause in slept)
        assert len(slept) == 2
