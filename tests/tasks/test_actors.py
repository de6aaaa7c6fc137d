"""Actors through the Dramatiq stub broker and an in-process worker."""

from __future__ import annotations

import inspect
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest

from app.errors import InvalidState, PaymentProviderError
from app.services import checkout_status, webhooks
from app.services.inventory import Inventory
from models import Order, Outbox, Reservation, WebhookEvent
from models.db import utcnow
from tasks import ACTORS, clock
from tasks.broker import should_retry


def join(broker: Any, *queues: str) -> None:
    for queue in queues or ("default",):
        broker.join(queue, timeout=20_000)


def messages_sent(broker: Any, monkeypatch: Any) -> list[str]:
    """The actor of each message enqueued from now on, in order."""
    sent: list[str] = []
    enqueue = broker.enqueue

    def recording(message: Any, *, delay: int | None = None) -> Any:
        sent.append(message.actor_name)
        return enqueue(message, delay=delay)

    monkeypatch.setattr(broker, "enqueue", recording)
    return sent


class TestCreatePaymentIntentActor:
    def test_writes_order_creates_intent_and_schedules_expiry(
        self,
        broker: Any,
        worker: Any,
        runtime: Any,
        submission: Any,
        gateway: Any,
        scheduled: list[tuple[str, Any]],
    ) -> None:
        runtime.jobs.create_payment_intent(submission.order_id)
        join(broker)
        order = Order.get_by_id(submission.order_id)
        assert order.payment_intent_id in gateway.intents
        view = checkout_status.read(runtime.redis, order.id)
        assert view["clientSecret"] == order.client_secret
        reservation = Reservation.get(Reservation.order == order.id)
        assert scheduled == [(order.id, reservation.expires_at)]

    def test_running_twice_creates_one_order_and_one_intent(
        self,
        runtime: Any,
        broker: Any,
        worker: Any,
        submission: Any,
        gateway: Any,
        scheduled: list[tuple[str, Any]],
    ) -> None:
        runtime.jobs.create_payment_intent(submission.order_id)
        runtime.jobs.create_payment_intent(submission.order_id)
        join(broker)
        assert Order.select().count() == 1
        assert len(gateway.intents) == 1


class TestWebhookActor:
    def test_success_pays_and_sends_the_receipt(
        self, runtime: Any, broker: Any, order: Order, gateway: Any, mailer: Any
    ) -> None:
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        runtime.jobs.handle_stripe_event(event["id"])  # a duplicate delivery
        join(broker)
        assert Order.get_by_id(order.id).state == "PAID"
        assert [m.to for m in mailer.sent] == ["buyer@example.com"]
        assert Outbox.get().status == "sent"
        assert WebhookEvent.get().status == "processed"

    def test_the_paid_path_sends_one_mail_with_no_send_receipt_message(
        self, runtime: Any, broker: Any, order: Order, gateway: Any, mailer: Any, monkeypatch: Any
    ) -> None:
        sent = messages_sent(broker, monkeypatch)
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        assert sent == ["handle_stripe_event"]
        assert [m.to for m in mailer.sent] == ["buyer@example.com"]
        assert (Outbox.get().status, Outbox.get().attempts) == ("sent", 1)
        trail = [e.type for e in Order.get_by_id(order.id).events]
        assert (trail.count("RECEIPT_QUEUED"), trail.count("RECEIPT_SENT")) == (1, 1)

    def test_an_smtp_failure_after_commit_is_queued_and_sent_once(
        self, runtime: Any, broker: Any, order: Order, gateway: Any, mailer: Any, monkeypatch: Any
    ) -> None:
        """The event stays applied (no retry of it); the row, left pending by the failed
        send, goes to a send_receipt message at once, which sends it."""
        sent = messages_sent(broker, monkeypatch)
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        webhooks.receive(runtime.redis, event)
        mailer.failures = 1
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        assert sent == ["handle_stripe_event", "send_receipt"]
        assert [m.to for m in mailer.sent] == ["buyer@example.com"]
        assert (Outbox.get().status, Outbox.get().attempts) == ("sent", 2)
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("processed", 1)
        assert Order.get_by_id(order.id).state == "PAID"

    def test_a_replayed_event_sends_nothing_more(
        self, runtime: Any, broker: Any, order: Order, gateway: Any, mailer: Any, monkeypatch: Any
    ) -> None:
        """Delivered again, replayed with its dedupe key gone (the inbox row says done), or
        the same payment in a new event (the order is PAID already): one mail in all."""
        from app import keys

        paid = gateway.confirm(order.payment_intent_id)
        event = gateway.event("payment_intent.succeeded", paid)
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        sent = messages_sent(broker, monkeypatch)
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        runtime.redis.delete(keys.event_seen(event["id"]))
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        again = gateway.event("payment_intent.succeeded", paid)
        webhooks.receive(runtime.redis, again)
        runtime.jobs.handle_stripe_event(again["id"])
        join(broker)
        assert sent == ["handle_stripe_event"] * 3
        assert len(mailer.sent) == 1
        assert Outbox.select().count() == 1

    def test_a_replayed_delivery_of_a_done_event_is_skipped_before_the_order_lock(
        self, runtime: Any, broker: Any, order: Order, gateway: Any, monkeypatch: Any
    ) -> None:
        """The dedupe key is read with the kept body: a done event takes no lock, and
        the body its replayed delivery kept again is dropped."""
        from app import keys
        from tasks import webhooks as webhook_actor

        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        locked: list[str] = []
        original = webhook_actor.order_lock

        def recording_lock(redis: Any, order_id: str) -> Any:
            locked.append(order_id)
            return original(redis, order_id)

        monkeypatch.setattr(webhook_actor, "order_lock", recording_lock)
        webhooks.receive(runtime.redis, event)  # Stripe delivers it again
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        assert locked == []
        assert not runtime.redis.exists(keys.event_body(event["id"]))
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("processed", 1)

    def test_failing_handler_is_retried_and_never_marked_done(
        self, runtime: Any, broker: Any, order: Order, gateway: Any, monkeypatch: Any
    ) -> None:
        """I3: the handler fails once; Dramatiq redelivers and the event takes effect once."""
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        original = webhooks.HANDLERS["payment_intent.succeeded"]
        seen: list[str] = []

        def fails_first(*args: Any) -> None:
            row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
            seen.append(row.status)
            if len(seen) == 1:
                raise RuntimeError("database hiccup")
            original(*args)

        monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", fails_first)
        webhooks.receive(runtime.redis, event)
        runtime.jobs.handle_stripe_event(event["id"])
        join(broker)
        assert seen == ["received", "failed"]  # the retry found it failed, not done
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("processed", 2)
        assert Order.get_by_id(order.id).state == "PAID"
        assert Outbox.select().count() == 1


class TestExpiryActor:
    def overdue(self, order_id: str) -> None:
        past = utcnow() - timedelta(seconds=5)
        Reservation.update(expires_at=past).where(Reservation.order == order_id).execute()

    def test_cancels_first_then_releases(
        self, broker: Any, runtime: Any, order: Order, gateway: Any
    ) -> None:
        self.overdue(order.id)
        runtime.jobs.expire_hold(order.id)
        join(broker, "holds")
        order = Order.get_by_id(order.id)
        assert order.state == "CANCELED"
        assert gateway.intents[order.payment_intent_id].status == "canceled"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}

    def test_succeeded_confirms_and_sends_receipt(
        self, broker: Any, runtime: Any, order: Order, gateway: Any, mailer: Any
    ) -> None:
        gateway.confirm(order.payment_intent_id)
        self.overdue(order.id)
        runtime.jobs.expire_hold(order.id)
        broker.join("holds")
        join(broker)
        assert Order.get_by_id(order.id).state == "PAID"
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"
        assert len(mailer.sent) == 1

    def test_processing_extends(
        self,
        broker: Any,
        runtime: Any,
        order: Order,
        gateway: Any,
        scheduled: list[tuple[str, Any]],
    ) -> None:
        gateway.confirm(order.payment_intent_id, "pm_emulator_delayed")
        self.overdue(order.id)
        runtime.jobs.expire_hold(order.id)
        join(broker, "holds")
        assert scheduled and scheduled[-1][1] > utcnow()
        assert Order.get_by_id(order.id).state == "PENDING"
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"
        assert "cancel_intent" not in [c[0] for c in gateway.calls]


class TestRetryPolicy:
    def test_transient_errors_retry_and_permanent_ones_do_not(self) -> None:
        assert should_retry(0, PaymentProviderError("x", retryable=True))
        assert not should_retry(0, PaymentProviderError("x", retryable=False))
        assert not should_retry(0, InvalidState("x"))
        assert should_retry(0, ConnectionError("redis"))
        assert not should_retry(100, ConnectionError("redis"))

    @pytest.mark.parametrize(
        ("name", "limit"),
        [("handle_stripe_event", 25), ("expire_hold", 50), ("create_payment_intent", 20)],
    )
    def test_each_actor_keeps_its_own_retry_limit(self, broker: Any, name: str, limit: int) -> None:
        # Dramatiq's retry_when overrides max_retries: the limit must live in the predicate.
        actor = broker.get_actor(name)
        retry_when = actor.options["retry_when"]
        assert retry_when(limit - 1, ConnectionError("redis"))
        assert not retry_when(limit, ConnectionError("redis"))


class TestClock:
    def test_sweep_reenqueues_stale_work_once(
        self, broker: Any, runtime: Any, submission: Any, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr(clock, "STALE_SECONDS", -1)
        first = clock.sweep(runtime)
        assert first.counts == {"pending": 1}
        assert broker.queues["default"].qsize() == 1
        assert not clock.sweep(runtime)  # throttled: not re-enqueued again

    def test_run_stops_when_asked(self, runtime: Any, broker: Any) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=clock.run, args=(runtime, stop, 0.01))
        thread.start()
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive()


class TestActorArgumentsStayOutOfLogs:
    def test_a_failing_webhook_logs_no_client_secret_or_email(
        self,
        client: Any,
        runtime: Any,
        broker: Any,
        order: Order,
        gateway: Any,
        monkeypatch: Any,
        caplog: Any,
    ) -> None:
        """Dramatiq logs a failed message with its arguments: they must be ids only."""
        intent = gateway.confirm(order.payment_intent_id)
        event = gateway.event("payment_intent.succeeded", intent)
        event["data"]["object"]["receipt_email"] = order.email  # as Stripe sends it
        secret = event["data"]["object"]["client_secret"]
        assert secret

        original = webhooks.HANDLERS["payment_intent.succeeded"]
        tries: list[int] = []

        def fails_first(*args: Any) -> None:
            tries.append(1)
            if len(tries) == 1:
                raise RuntimeError("database hiccup")
            original(*args)

        monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", fails_first)
        body, header = gateway.signed(event)
        response = client.post(
            "/api/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": header},
            content_type="application/json",
        )
        assert response.status_code == 200
        with caplog.at_level("INFO"):
            join(broker)  # the first try fails and is logged; the retry applies it
        # What a deployment logs (INFO and up; peewee's DEBUG echoes every SQL statement).
        records = [r for r in caplog.records if r.levelno >= logging.INFO]
        logged = " ".join(r.getMessage() + str(r.exc_info or "") for r in records)
        assert "Failed to process message" in logged
        assert secret not in logged
        assert order.email not in logged
        assert Order.get_by_id(order.id).state == "PAID"  # the payload came from the inbox

    def test_an_event_whose_body_is_gone_is_left_to_reconciliation(
        self, runtime: Any, broker: Any, worker: Any, caplog: Any
    ) -> None:
        runtime.jobs.handle_stripe_event("evt_never_kept")
        join(broker)
        assert WebhookEvent.select().count() == 0
        assert "evt_never_kept" in caplog.text


def test_every_actor_takes_ids_only() -> None:
    """Dramatiq logs a failing message with its arguments: ids, never a payload."""
    for fn, _retries in ACTORS:
        for name, parameter in inspect.signature(fn).parameters.items():
            assert parameter.annotation in ("str", "int"), (fn.__name__, name)
