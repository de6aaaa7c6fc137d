"""Webhook handlers: every handled type, duplicates, replays, out-of-order delivery (I3)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from app import keys
from app.services import checkout_status
from app.services.checkout import create_order_from_submission
from app.services.inventory import Inventory
from app.services.webhooks import HANDLERS, Context, handle_event, inbox_row
from models import Order, Outbox, Product, Refund, Reservation, WebhookEvent
from models.db import utcnow
from tests.fakes import intent_dict, sql_sent


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


ON_HAND = 10  # units of TEE before the order holds 2


def deliver(runtime: Any, gateway: Any, type_: str, obj: Any) -> Any:
    event = gateway.event(type_, obj)
    return event, handle_event(event["id"], event, runtime)


class TestSucceeded:
    def test_pays_confirms_stock_and_queues_receipt(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id, "pm_card_visa")
        _, outcome = deliver(runtime, gateway, "payment_intent.succeeded", intent)
        paid = Order.get_by_id(order.id)
        assert paid.state == "PAID"
        assert paid.payment_status == "succeeded"
        assert Reservation.get(Reservation.order == order.id).status == "CONFIRMED"
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"
        assert Product.get_by_id("TEE").stock_on_hand == 8
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 8}
        assert outcome.status == "processed"
        assert [o.id for o in Outbox.select()] == outcome.outbox_ids
        assert types(order.id)[3:] == [
            "PAYMENT_SUCCEEDED",
            "STATE_CHANGED",
            "STOCK_CONFIRMED",
            "RECEIPT_QUEUED",
        ]
        assert checkout_status.read(runtime.redis, order.id)["state"] == "PAID"

    def test_duplicate_delivery_changes_nothing(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id)
        event = gateway.event("payment_intent.succeeded", intent)
        handle_event(event["id"], event, runtime)
        before = types(order.id)
        assert handle_event(event["id"], event, runtime).status == "duplicate"
        runtime.redis.delete(keys.event_seen(event["id"]))  # even without the fast path
        assert handle_event(event["id"], event, runtime).status == "duplicate"
        assert types(order.id) == before
        assert Product.get_by_id("TEE").stock_on_hand == 8
        assert Outbox.select().count() == 1
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("processed", 1)

    def test_second_event_id_for_same_success_is_harmless(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id)
        deliver(runtime, gateway, "payment_intent.succeeded", intent)
        _, outcome = deliver(runtime, gateway, "payment_intent.succeeded", intent)
        assert outcome.status == "processed"
        assert types(order.id).count("PAYMENT_SUCCEEDED") == 1
        assert Product.get_by_id("TEE").stock_on_hand == 8

    def test_late_success_on_canceled_order_is_recorded_and_made_whole(
        self, runtime: Any, gateway: Any, order: Order, caplog: Any
    ) -> None:
        """tests/services/test_late_payments.py covers both outcomes in depth."""
        Order.update(state="CANCELED").where(Order.id == order.id).execute()
        intent = gateway.confirm(order.payment_intent_id)
        deliver(runtime, gateway, "payment_intent.succeeded", intent)
        assert Order.get_by_id(order.id).state == "PAID"
        assert "PAYMENT_AFTER_CLOSE" in types(order.id)
        assert any("late payment" in r.getMessage() for r in caplog.records)


class TestOutOfOrder:
    def test_succeeded_before_processing_ends_paid(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        processing = gateway.confirm(order.payment_intent_id, "pm_emulator_delayed")
        succeeded = gateway.set_status(processing.id, "succeeded")
        deliver(runtime, gateway, "payment_intent.succeeded", succeeded)
        deliver(runtime, gateway, "payment_intent.processing", processing)
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_status) == ("PAID", "succeeded")

    def test_failed_after_succeeded_ends_paid(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        failed = gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        succeeded = gateway.confirm(order.payment_intent_id, "pm_card_visa")
        deliver(runtime, gateway, "payment_intent.succeeded", succeeded)
        deliver(runtime, gateway, "payment_intent.payment_failed", failed)
        assert Order.get_by_id(order.id).state == "PAID"
        assert checkout_status.read(runtime.redis, order.id)["error"] is None

    def test_stale_failure_while_processing_is_recorded_but_not_shown(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        failed = gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        gateway.confirm(order.payment_intent_id, "pm_emulator_delayed")
        deliver(runtime, gateway, "payment_intent.payment_failed", failed)
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_status) == ("PENDING", "processing")
        assert "PAYMENT_FAILED" in types(order.id)
        assert checkout_status.read(runtime.redis, order.id)["error"] is None


class TestOtherIntentEvents:
    def test_payment_failed_keeps_order_pending_with_decline(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclinedInsufficientFunds")
        deliver(runtime, gateway, "payment_intent.payment_failed", intent)
        stored = Order.get_by_id(order.id)
        assert stored.state == "PENDING"
        view = checkout_status.read(runtime.redis, order.id)
        assert view["paymentStatus"] == "requires_payment_method"
        assert view["error"] == {
            "code": "card_declined",
            "declineCode": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        }
        assert "PAYMENT_FAILED" in types(order.id)
        assert Inventory(runtime.redis).status(order.reservation_id) == "HELD"

    def test_duplicate_create_message_keeps_the_decline_shown(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        deliver(runtime, gateway, "payment_intent.payment_failed", intent)
        create_order_from_submission(order.id, runtime)
        assert checkout_status.read(runtime.redis, order.id)["error"]["code"] == "card_declined"

    def test_processing_and_requires_action_are_recorded(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        action = gateway.confirm(order.payment_intent_id, "pm_card_threeDSecure2Required")
        deliver(runtime, gateway, "payment_intent.requires_action", action)
        assert checkout_status.read(runtime.redis, order.id)["paymentStatus"] == "requires_action"
        processing = gateway.confirm(order.payment_intent_id, "pm_emulator_delayed")
        deliver(runtime, gateway, "payment_intent.processing", processing)
        assert Order.get_by_id(order.id).payment_status == "processing"
        assert {"PAYMENT_REQUIRES_ACTION", "PAYMENT_PROCESSING"} <= set(types(order.id))

    def test_canceled_elsewhere_releases_hold_and_cancels_order(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        intent = gateway.set_status(order.payment_intent_id, "canceled")
        deliver(runtime, gateway, "payment_intent.canceled", intent)
        assert Order.get_by_id(order.id).state == "CANCELED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 10}
        assert "STOCK_RELEASED" in types(order.id)


def stripe_calls(gateway: Any) -> list[str]:
    """The gateway's API calls so far, by name (the fake records each as Stripe would see it)."""
    return [name for name, _ in gateway.calls]


def no_reread(gateway: Any, monkeypatch: Any) -> None:
    """From now on, re-reading an intent fails the test, and no call has been made yet."""

    def reread(intent_id: str) -> Any:
        raise AssertionError(f"re-read {intent_id} from Stripe")

    monkeypatch.setattr(gateway, "retrieve_intent", reread)
    gateway.calls.clear()


class TestFinalIntents:
    """A final intent (succeeded, canceled) never changes again: its own signed event says
    what Stripe has now, so it is applied without a re-read; any other status is re-read,
    and so is a final one whose event lacks a field the handlers read."""

    def test_succeeded_is_applied_from_the_event_without_a_stripe_call(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any
    ) -> None:
        paid = gateway.confirm(order.payment_intent_id)
        no_reread(gateway, monkeypatch)
        _, outcome = deliver(runtime, gateway, "payment_intent.succeeded", paid)
        assert outcome.status == "processed"
        assert gateway.calls == []  # nor the hosted session's (a Payment Element order)
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.amount_captured) == ("PAID", paid.amount_received)
        succeeded = next(e for e in stored.events if e.type == "PAYMENT_SUCCEEDED")
        assert succeeded.payload["charge"] == paid.latest_charge
        assert Inventory(runtime.redis).status(order.reservation_id) == "CONFIRMED"

    def test_canceled_is_applied_from_the_event_without_a_stripe_call(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any
    ) -> None:
        gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        canceled = gateway.set_status(order.payment_intent_id, "canceled")
        no_reread(gateway, monkeypatch)
        deliver(runtime, gateway, "payment_intent.canceled", canceled)
        assert gateway.calls == []
        # The event's last_payment_error says a payment was attempted: FAILED, not CANCELED.
        assert Order.get_by_id(order.id).state == "FAILED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 10}

    def test_a_voided_authorisation_is_applied_from_the_event(
        self, runtime: Any, gateway: Any, authorized: Order, monkeypatch: Any
    ) -> None:
        intent = gateway.set_status(
            authorized.payment_intent_id, "canceled", cancellation_reason="automatic"
        )
        no_reread(gateway, monkeypatch)
        deliver(runtime, gateway, "payment_intent.canceled", intent)
        assert gateway.calls == []
        assert Order.get_by_id(authorized.id).state == "CANCELED"
        assert "AUTHORIZATION_EXPIRED" in types(authorized.id)  # the event's reason: lapsed

    @pytest.mark.parametrize(
        ("type_", "method"),
        [
            ("payment_intent.processing", "pm_emulator_delayed"),
            ("payment_intent.requires_action", "pm_card_threeDSecure2Required"),
            ("payment_intent.payment_failed", "pm_card_chargeDeclined"),
        ],
    )
    def test_a_status_that_can_still_change_is_re_read(
        self, runtime: Any, gateway: Any, order: Order, type_: str, method: str
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id, method)
        gateway.calls.clear()
        deliver(runtime, gateway, type_, intent)
        assert stripe_calls(gateway) == ["retrieve_intent"]

    def test_payment_failed_after_a_succeeded_applied_from_its_event_ends_paid(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        failed = gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
        succeeded = gateway.confirm(order.payment_intent_id, "pm_card_visa")
        gateway.calls.clear()
        deliver(runtime, gateway, "payment_intent.succeeded", succeeded)
        deliver(runtime, gateway, "payment_intent.payment_failed", failed)
        assert stripe_calls(gateway) == ["retrieve_intent"]  # the failure's, not the success's
        assert Order.get_by_id(order.id).state == "PAID"
        assert checkout_status.read(runtime.redis, order.id)["error"] is None
        assert types(order.id).count("PAYMENT_SUCCEEDED") == 1

    def test_succeeded_replayed_after_paid_changes_nothing(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any
    ) -> None:
        paid = gateway.confirm(order.payment_intent_id)
        event, _ = deliver(runtime, gateway, "payment_intent.succeeded", paid)
        before = types(order.id)
        no_reread(gateway, monkeypatch)
        runtime.redis.delete(keys.event_seen(event["id"]))  # past the fast skip
        assert handle_event(event["id"], event, runtime).status == "duplicate"
        _, again = deliver(runtime, gateway, "payment_intent.succeeded", paid)  # a new id
        assert again.status == "processed"
        assert types(order.id) == before
        assert Outbox.select().count() == 1 and gateway.calls == []

    @pytest.mark.parametrize(
        "missing",
        # latest_charge: an endpoint on an API version before 2022-11-15 sends ``charges``.
        ["latest_charge", "amount_received", "cancellation_reason", "last_payment_error"],
    )
    def test_a_final_event_without_a_field_the_handlers_read_is_re_read(
        self, runtime: Any, gateway: Any, order: Order, missing: str
    ) -> None:
        paid = gateway.confirm(order.payment_intent_id)
        obj = intent_dict(paid)
        del obj[missing]
        self.assert_paid_as_stripe_has_it(runtime, gateway, order, obj)

    @pytest.mark.parametrize("odd", [{"amount_received": "4000"}, {"latest_charge": {"id": 1}}])
    def test_a_final_event_of_a_shape_the_handlers_would_misread_is_re_read(
        self, runtime: Any, gateway: Any, order: Order, odd: dict[str, Any]
    ) -> None:
        paid = gateway.confirm(order.payment_intent_id)
        self.assert_paid_as_stripe_has_it(runtime, gateway, order, intent_dict(paid) | odd)

    @staticmethod
    def assert_paid_as_stripe_has_it(
        runtime: Any, gateway: Any, order: Order, obj: dict[str, Any]
    ) -> None:
        """``obj``'s succeeded event re-reads the intent and pays with Stripe's figures."""
        paid = gateway.intents[order.payment_intent_id]
        gateway.calls.clear()
        deliver(runtime, gateway, "payment_intent.succeeded", obj)
        assert stripe_calls(gateway) == ["retrieve_intent"]
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.amount_captured) == ("PAID", paid.amount_received)
        succeeded = next(e for e in stored.events if e.type == "PAYMENT_SUCCEEDED")
        assert succeeded.payload["charge"] == paid.latest_charge


class TestIgnored:
    def test_unhandled_type_is_ignored(self, runtime: Any, gateway: Any) -> None:
        _, outcome = deliver(runtime, gateway, "customer.created", {"id": "cus_1"})
        assert outcome.status == "ignored"

    def test_object_without_our_metadata_is_ignored(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        foreign = {**intent_dict(gateway.intents[order.payment_intent_id]), "metadata": {}}
        _, outcome = deliver(runtime, gateway, "payment_intent.succeeded", foreign)
        assert outcome.status == "ignored"
        assert Order.get_by_id(order.id).state == "PENDING"

    def test_unknown_order_is_ignored(self, runtime: Any, gateway: Any) -> None:
        obj = {
            "id": "pi_x",
            "object": "payment_intent",
            "status": "succeeded",
            "metadata": {"orderId": "elsewhere"},
        }
        _, outcome = deliver(runtime, gateway, "payment_intent.succeeded", obj)
        assert outcome.status == "ignored"

    @pytest.mark.parametrize("odd", ["o-\ud800", "o-\x00", "o" * 300])
    @pytest.mark.parametrize(
        ("type_", "obj"),
        [
            ("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}),
            ("charge.refunded", {"id": "ch_x", "object": "charge"}),
        ],
    )
    def test_an_order_or_intent_id_no_order_can_have_is_ignored_not_a_poison_message(
        self, runtime: Any, gateway: Any, odd: str, type_: str, obj: dict[str, Any]
    ) -> None:
        """A lone surrogate could not even be sent to the database: every retry failed
        before the inbox row recorded anything."""
        for variant in ({**obj, "metadata": {"orderId": odd}}, {**obj, "payment_intent": odd}):
            event, outcome = deliver(runtime, gateway, type_, variant)
            assert outcome.status == "ignored"
            assert WebhookEvent.get(WebhookEvent.event_id == event["id"]).status == "ignored"


class TestStatements:
    """What the inbox costs the database (the cost of one order, issue 20)."""

    def test_an_unhandled_event_is_one_insert(
        self, runtime: Any, gateway: Any, monkeypatch: Any
    ) -> None:
        event = gateway.event("customer.created", {"id": "cus_1"})
        sent = sql_sent(monkeypatch)
        assert handle_event(event["id"], event, runtime).status == "ignored"
        assert sent == ["INSERT"]  # no SELECT first, no transaction of its own
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts, row.type) == ("ignored", 1, "customer.created")
        assert row.processed_at is not None

    def test_an_earlier_row_of_an_unhandled_event_is_marked_ignored(
        self, runtime: Any, gateway: Any
    ) -> None:
        event = gateway.event("customer.created", {"id": "cus_1"})
        inbox_row(event["id"], event)  # the clock's sweep wrote it, say
        assert handle_event(event["id"], event, runtime).status == "ignored"
        runtime.redis.delete(keys.event_seen(event["id"]))
        assert handle_event(event["id"], event, runtime).status == "duplicate"
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("ignored", 1)

    def test_a_new_inbox_row_is_one_insert_and_a_known_one_is_read(
        self, monkeypatch: Any, runtime: Any
    ) -> None:
        payload = {"id": "evt_1", "type": "customer.created"}
        sent = sql_sent(monkeypatch)
        first = inbox_row("evt_1", payload)
        assert sent == ["INSERT"]
        again = inbox_row("evt_1", payload)
        assert again.id == first.id and again.status == "received"
        assert sent == ["INSERT", "INSERT", "SELECT"]


class TestFailingHandler:
    def test_failure_is_recorded_retried_and_never_marked_done(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any
    ) -> None:
        intent = gateway.confirm(order.payment_intent_id)
        event = gateway.event("payment_intent.succeeded", intent)
        original = HANDLERS["payment_intent.succeeded"]

        def broken(*args: Any) -> None:
            original(*args)
            raise RuntimeError("disk on fire")

        monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", broken)
        with pytest.raises(RuntimeError):
            handle_event(event["id"], event, runtime)
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts) == ("failed", 1)
        assert "disk on fire" in row.last_error
        assert Order.get_by_id(order.id).state == "PENDING"  # rolled back
        assert not runtime.redis.exists(keys.event_seen(event["id"]))

        monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", original)
        assert handle_event(event["id"], event, runtime).status == "processed"
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        assert (row.status, row.attempts, row.last_error) == ("processed", 2, None)
        assert Order.get_by_id(order.id).state == "PAID"
        assert Product.get_by_id("TEE").stock_on_hand == 8

    def test_the_clock_reads_failed_rows_ids_not_their_payloads(
        self, runtime: Any, gateway: Any, order: Order, monkeypatch: Any, caplog: Any
    ) -> None:
        from app.services.webhooks import retryable_failed

        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))

        def broken(*args: Any) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", broken)
        with pytest.raises(RuntimeError):
            handle_event(event["id"], event, runtime)
        caplog.set_level(logging.DEBUG, logger="peewee")  # peewee logs each query's SQL
        assert retryable_failed(older_than=utcnow() + timedelta(seconds=1)) == [event["id"]]
        (sql,) = [r.getMessage() for r in caplog.records if "webhook_event" in r.getMessage()]
        assert '"payload"' not in sql and '"event_id"' in sql, sql


def paid(runtime: Any, gateway: Any, order: Order) -> Order:
    intent = gateway.confirm(order.payment_intent_id)
    deliver(runtime, gateway, "payment_intent.succeeded", intent)
    return Order.get_by_id(order.id)


class TestRefundsAndDisputes:
    def test_partial_then_full_refund(self, runtime: Any, gateway: Any, order: Order) -> None:
        order = paid(runtime, gateway, order)

        def refunded(amount: int, key: str) -> None:
            intent = order.payment_intent_id
            gateway.create_refund(
                intent_id=intent, amount=amount, reason=None, idempotency_key=key, metadata={}
            )
            charge = gateway.retrieve_charge(gateway.intents[intent].latest_charge)
            deliver(runtime, gateway, "charge.refunded", charge)

        refunded(1000, "r1")
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.amount_refunded) == ("PAID", 1000)
        refunded(order.total - 1000, "r2")
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.amount_refunded) == ("REFUNDED", order.total)
        assert types(order.id).count("REFUNDED") == 2

    def test_refund_events_track_refund_rows(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        order = paid(runtime, gateway, order)
        refund = {
            "id": "re_1",
            "object": "refund",
            "amount": 500,
            "currency": "usd",
            "status": "pending",
            "payment_intent": order.payment_intent_id,
            "metadata": {"orderId": order.id},
        }
        deliver(runtime, gateway, "refund.created", refund)
        deliver(runtime, gateway, "refund.updated", {**refund, "status": "succeeded"})
        row = Refund.get(Refund.stripe_refund_id == "re_1")
        assert (row.status, row.amount) == ("succeeded", 500)
        assert Order.get_by_id(order.id).amount_refunded == 500
        deliver(runtime, gateway, "refund.created", {**refund, "id": "re_2", "status": "pending"})
        deliver(
            runtime,
            gateway,
            "refund.failed",
            {**refund, "id": "re_2", "status": "failed", "failure_reason": "expired_card"},
        )
        assert Refund.get(Refund.stripe_refund_id == "re_2").status == "failed"
        assert Order.get_by_id(order.id).amount_refunded == 500
        assert {"REFUND_REQUESTED", "REFUND_FAILED", "REFUNDED"} <= set(types(order.id))

    def test_full_refund_with_restock_puts_units_back_once(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        order = paid(runtime, gateway, order)
        Refund.create(id="rf1", order=order, amount=order.total, restock=True, idempotency_key="k1")
        refund = {
            "id": "re_9",
            "object": "refund",
            "amount": order.total,
            "currency": "usd",
            "status": "succeeded",
            "payment_intent": order.payment_intent_id,
            "metadata": {"orderId": order.id, "refundId": "rf1"},
        }
        deliver(runtime, gateway, "refund.updated", refund)
        charge = {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": order.payment_intent_id,
            "amount": order.total,
            "currency": "usd",
            "amount_refunded": order.total,
            "metadata": {},
        }
        deliver(runtime, gateway, "charge.refunded", charge)
        assert Order.get_by_id(order.id).state == "REFUNDED"
        assert Product.get_by_id("TEE").stock_on_hand == 10
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 10}

    def test_dispute_is_recorded_and_alerted(
        self, runtime: Any, gateway: Any, order: Order, caplog: Any
    ) -> None:
        order = paid(runtime, gateway, order)
        dispute = {
            "id": "dp_1",
            "object": "dispute",
            "amount": order.total,
            "currency": "usd",
            "payment_intent": order.payment_intent_id,
            "reason": "fraudulent",
            "charge": "ch_1",
            "metadata": {},
        }
        deliver(runtime, gateway, "charge.dispute.created", dispute)
        assert "DISPUTE_OPENED" in types(order.id)
        assert any("DISPUTE" in r.getMessage() for r in caplog.records)


class TestHandlersAsData:
    def test_every_design_event_type_has_a_handler(self) -> None:
        assert set(HANDLERS) == {
            "payment_intent.succeeded",
            "payment_intent.processing",
            "payment_intent.payment_failed",
            "payment_intent.canceled",
            "payment_intent.requires_action",
            "charge.refunded",
            "refund.created",
            "refund.updated",
            "refund.failed",
            "charge.refund.updated",
            "charge.dispute.created",
            "payment_intent.amount_capturable_updated",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
        }

    def test_handler_called_directly_with_plain_dicts(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        obj = intent_dict(gateway.confirm(order.payment_intent_id))
        ctx = Context(runtime=runtime, event={"type": "payment_intent.succeeded"})
        HANDLERS["payment_intent.succeeded"](Order.get_by_id(order.id), obj, ctx)
        assert Order.get_by_id(order.id).state == "PAID"
        assert len(ctx.outbox_ids) == 1
