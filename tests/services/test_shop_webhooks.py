"""Shop webhooks: one event per order change, signed, delivered in order to every endpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

from app import create_app
from app.cli import verify_example_command
from app.config import ROOT
from app.gateways.shop_webhooks import VERIFY_NODE, VERIFY_PYTHON
from app.services import shop_webhooks
from app.services.checkout import create_order_from_submission
from app.services.expiry import cancel_order
from app.services.fulfillment import update_fulfillment
from app.services.refunds import request_refund, submit_refund
from app.services.state_machine import PAID, transition
from app.services.webhooks import handle_event
from models import Order, OrderEvent, ShopDelivery, ShopEvent
from models.db import database, utcnow
from tasks.clock import sweep
from tasks.shop_webhooks import deliver_shop_webhook
from tests.fakes import Receiver, admit_checkout, sql_sent

SECRET = "whsec_shop_test"


def shop_types(order_id: str) -> list[str]:
    query = ShopEvent.select().where(ShopEvent.order == order_id).order_by(ShopEvent.id)
    return [e.type for e in query]


def pay(runtime: Any, gateway: Any, order: Order) -> Order:
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    handle_event(event["id"], event, runtime)  # a duplicate changes nothing
    return Order.get_by_id(order.id)


def refund(runtime: Any, gateway: Any, order: Order, amount: int) -> None:
    requested, _ = request_refund(order.id, idempotency_key=f"k-{amount}", amount=amount)
    submit_refund(requested.id, runtime)
    stripe_refund = gateway.refunds[max(gateway.refunds)]
    event = gateway.event("refund.updated", {**stripe_refund, "status": "succeeded"})
    handle_event(event["id"], event, runtime)


def endpoints_of(runtime: Any, *receivers: Receiver) -> None:
    runtime.config = runtime.config.with_overrides(
        shop_webhook_urls=tuple(r.url for r in receivers), shop_webhook_secrets=(SECRET,)
    )


def run_deliveries(runtime: Any, jobs: Any, rounds: int = 50) -> None:
    """The worker and the passing of time: run queued deliveries; a retry's time comes."""
    endpoints = runtime.config.shop_webhook_endpoints
    shop_webhooks.dispatch(endpoints)
    for delivery_id in shop_webhooks.stalled(endpoints, older_than=utcnow()):
        jobs.deliver_shop_webhook(delivery_id)
    for _ in range(rounds):
        queued = jobs.named("deliver_shop_webhook")
        jobs.calls.clear()
        if not queued:
            return
        for delivery_id, at in queued:
            if at is not None:  # a retry: let its back-off pass
                ShopDelivery.update(next_attempt_at=utcnow()).where(
                    ShopDelivery.id == delivery_id
                ).execute()
            deliver_shop_webhook(delivery_id)
    raise AssertionError("deliveries did not settle")


class TestOneEventPerChange:
    def test_a_whole_order_life(self, runtime: Any, gateway: Any, order: Order) -> None:
        assert shop_types(order.id) == ["order.created"]
        paid = pay(runtime, gateway, order)
        update_fulfillment(paid.id, "start", runtime=runtime)
        update_fulfillment(paid.id, "complete", runtime=runtime)
        refund(runtime, gateway, paid, 1000)
        refund(runtime, gateway, paid, paid.total - 1000)
        assert shop_types(order.id) == [
            "order.created",
            "order.paid",
            "order.fulfilling",
            "order.fulfilled",
            "order.partially_refunded",
            "order.refunded",
        ]

    def test_each_event_carries_the_order_as_it_was(
        self, runtime: Any, gateway: Any, order: Order
    ) -> None:
        paid = pay(runtime, gateway, order)
        update_fulfillment(paid.id, "start", runtime=runtime)
        first, second, third = ShopEvent.select().order_by(ShopEvent.id)
        assert [e.body["data"]["order"]["state"] for e in (first, second, third)] == [
            "PENDING",
            "PAID",
            "FULFILLING",
        ]
        body = second.body
        assert body["id"] == second.event_id and body["id"].startswith("evt_")
        assert body["type"] == "order.paid" and body["createdAt"].endswith("Z")
        assert body["data"]["order"]["orderId"] == order.id
        assert "STATE_CHANGED" in [e["type"] for e in body["data"]["order"]["events"]]

    def test_cancel_and_dispute(self, runtime: Any, gateway: Any, order: Order) -> None:
        cancel_order(order.id, runtime)
        assert shop_types(order.id) == ["order.created", "order.canceled"]
        other = pay(runtime, gateway, _second_order(runtime))
        dispute = {
            "id": "dp_1",
            "object": "dispute",
            "amount": other.total,
            "currency": "usd",
            "payment_intent": other.payment_intent_id,
            "reason": "fraudulent",
            "metadata": {},
        }
        event = gateway.event("charge.dispute.created", dispute)
        handle_event(event["id"], event, runtime)
        assert shop_types(other.id)[-1] == "order.disputed"

    def test_written_in_the_transaction_of_the_change(self, runtime: Any, order: Order) -> None:
        with database().atomic() as txn:
            transition(order, PAID, "test")
            assert shop_types(order.id) == ["order.created", "order.paid"]
            txn.rollback()
        assert shop_types(order.id) == ["order.created"]


def _second_order(runtime: Any) -> Order:
    submission = admit_checkout(runtime.redis, [("TEE", 1)], key="second-order-key")
    created = create_order_from_submission(submission.order_id, runtime)
    assert created is not None
    return created


class TestSignature:
    def test_verifiable_with_the_documented_snippets(
        self, runtime: Any, jobs: Any, order: Order, receivers: list[Receiver], tmp_path: Path
    ) -> None:
        receivers.append(Receiver())
        endpoints_of(runtime, *receivers)
        run_deliveries(runtime, jobs)
        headers, raw, _ = receivers[0].requests[0]
        body = json.loads(raw)
        assert headers["Content-Type"] == "application/json"
        assert headers["Checkout-Event-Id"] == body["id"]
        assert body["type"] == "order.created"

        printed = _cli_output(runtime, "python")
        assert VERIFY_PYTHON in printed
        scope: dict[str, Any] = {}
        exec(VERIFY_PYTHON, scope)
        verify = scope["verify"]
        signature = headers["Checkout-Signature"]
        assert verify(raw, signature, SECRET)
        assert not verify(raw, signature, "whsec_other")
        assert not verify(raw.replace(b"PENDING", b"PAID"), signature, SECRET)

        if shutil.which("node") is None:
            return
        (tmp_path / "body.json").write_bytes(raw)
        script = VERIFY_NODE + (
            "const fs = require('fs');\n"
            "const raw = fs.readFileSync(process.argv[1]);\n"
            "console.log(verify(raw, process.argv[2], process.argv[3]),"
            " verify(raw, process.argv[2], 'whsec_other'));\n"
        )
        ran = subprocess.run(
            ["node", "-e", script, str(tmp_path / "body.json"), signature, SECRET],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert ran.stdout.split() == ["true", "false"]

    def test_the_docs_show_the_same_snippets(self) -> None:
        docs = (ROOT / "docs" / "integration.md").read_text()
        assert VERIFY_PYTHON in docs and VERIFY_NODE in docs


def _cli_output(runtime: Any, lang: str) -> str:
    result = (
        create_app(runtime.config, runtime=runtime)
        .test_cli_runner()
        .invoke(verify_example_command, ["--lang", lang])
    )
    assert result.exit_code == 0, result.output
    return str(result.output)


class TestDelivery:
    def test_a_receiver_down_for_a_while_gets_every_event_in_order(
        self, runtime: Any, gateway: Any, jobs: Any, order: Order, receivers: list[Receiver]
    ) -> None:
        receivers.append(Receiver(statuses=[500, 500, 503]))
        endpoints_of(runtime, *receivers)
        paid = pay(runtime, gateway, order)
        update_fulfillment(paid.id, "start", runtime=runtime)
        update_fulfillment(paid.id, "complete", runtime=runtime)
        created = [e.event_id for e in ShopEvent.select().order_by(ShopEvent.id)]
        run_deliveries(runtime, jobs)
        down = receivers[0]
        assert down.delivered_ids() == created
        # While it was down only the oldest event was tried: the others waited their turn.
        assert down.attempted_ids() == [created[0]] * 4 + created[1:]
        first = ShopDelivery.get(ShopDelivery.event == ShopEvent.get(event_id=created[0]))
        assert (first.status, first.attempts, first.last_status_code) == ("delivered", 4, 200)
        assert first.last_error is None
        notified = OrderEvent.select().where(
            (OrderEvent.order == order.id) & (OrderEvent.type == "SHOP_NOTIFIED")
        )
        assert [e.payload["eventId"] for e in notified] == created

    def test_a_later_event_handed_over_while_the_head_backs_off_waits_its_turn(
        self, runtime: Any, jobs: Any, order: Order, receivers: list[Receiver]
    ) -> None:
        """The actor given the second event (a retry, the clock, a resend) while the first
        waits out its back-off posts nothing: the shop sees the events in order."""
        receivers.append(Receiver(statuses=[503]))
        endpoints_of(runtime, *receivers)
        transition(order, PAID, "test")
        shop_webhooks.dispatch(runtime.config.shop_webhook_endpoints)
        head, later = [d.id for d in ShopDelivery.select().order_by(ShopDelivery.event)]
        deliver_shop_webhook(head)  # 503: backs off
        backing_off = ShopDelivery.get_by_id(head)
        assert backing_off.status == "pending" and backing_off.next_attempt_at > utcnow()
        deliver_shop_webhook(later)  # out of turn
        assert receivers[0].attempted_ids() == [ShopEvent.get(type="order.created").event_id]
        assert ShopDelivery.get_by_id(later).attempts == 0
        run_deliveries(runtime, jobs)
        assert receivers[0].delivered_ids() == [
            ShopEvent.get(type=kind).event_id for kind in ("order.created", "order.paid")
        ]

    def test_failed_after_the_retry_window_and_the_next_one_goes(
        self, runtime: Any, jobs: Any, order: Order, receivers: list[Receiver]
    ) -> None:
        receivers.append(Receiver(statuses=[500, 500]))
        endpoints_of(runtime, *receivers)
        transition(order, PAID, "test")
        shop_webhooks.dispatch(runtime.config.shop_webhook_endpoints)
        oldest = ShopDelivery.select().order_by(ShopDelivery.event).first()
        oldest.retry_until = utcnow() - timedelta(seconds=1)
        oldest.save()
        run_deliveries(runtime, jobs)
        assert ShopDelivery.get_by_id(oldest.id).status == "failed"
        assert receivers[0].delivered_ids() == [ShopEvent.get(type="order.paid").event_id]

    def test_a_slow_receiver_does_not_delay_another(
        self, runtime: Any, gateway: Any, order: Order, receivers: list[Receiver], broker: Any,
        worker: Any,
    ) -> None:  # fmt: skip
        slow, fast = Receiver(), Receiver()
        receivers += [slow, fast]
        slow.gate.clear()  # the slow one answers nothing until released
        endpoints_of(runtime, slow, fast)
        paid = pay(runtime, gateway, order)
        update_fulfillment(paid.id, "start", runtime=runtime)
        created = [e.event_id for e in ShopEvent.select().order_by(ShopEvent.id)]
        for delivery_id in shop_webhooks.dispatch(runtime.config.shop_webhook_endpoints):
            runtime.jobs.deliver_shop_webhook(delivery_id)
        assert fast.wait_for(len(created))
        assert fast.delivered_ids() == created
        assert slow.requests == []  # still holding its first event
        slow.gate.set()
        assert slow.wait_for(len(created))
        broker.join("shop_webhooks")
        worker.join()
        assert slow.delivered_ids() == created

    def test_the_clock_dispatches_and_repairs_lost_messages(
        self, runtime: Any, jobs: Any, order: Order, receivers: list[Receiver]
    ) -> None:
        receivers.append(Receiver())
        endpoints_of(runtime, *receivers)
        sweep(runtime)
        (first,) = jobs.named("deliver_shop_webhook")
        jobs.calls.clear()
        ShopDelivery.update(next_attempt_at=utcnow() - timedelta(minutes=5)).execute()
        sweep(runtime)  # the message was lost: the head is due and nobody took it
        assert jobs.named("deliver_shop_webhook") == [first]


def waiting() -> int:
    return ShopEvent.select().where(ShopEvent.dispatched == False).count()  # noqa: E712


class TestNobodyToTell:
    def test_without_endpoints_the_clock_marks_every_waiting_event_dispatched(
        self, runtime: Any, jobs: Any, order: Order
    ) -> None:
        transition(order, PAID, "test")
        assert waiting() == 2
        assert "shop_webhooks" not in sweep(runtime).counts
        assert waiting() == 0
        assert ShopDelivery.select().count() == 0 and jobs.named("deliver_shop_webhook") == []

    def test_a_message_marks_nothing_so_an_endpoint_configured_before_the_sweep_has_them(
        self, runtime: Any, jobs: Any, order: Order, receivers: list[Receiver], monkeypatch: Any
    ) -> None:
        transition(order, PAID, "test")
        sent = sql_sent(monkeypatch)
        assert shop_webhooks.dispatch(()) == []  # after a message, with no endpoint
        assert sent == [] and waiting() == 2
        receivers.append(Receiver())
        endpoints_of(runtime, *receivers)
        sweep(runtime)
        run_deliveries(runtime, jobs)
        assert receivers[0].delivered_ids() == [e.event_id for e in ShopEvent.select()]


class TestResend:
    def test_resend_goes_out_again_in_its_place(
        self, runtime: Any, jobs: Any, order: Order, receivers: list[Receiver]
    ) -> None:
        receivers.append(Receiver())
        endpoints_of(runtime, *receivers)
        run_deliveries(runtime, jobs)
        (event,) = ShopEvent.select()
        for delivery_id in shop_webhooks.resend(
            event.event_id, runtime.config.shop_webhook_endpoints
        ):
            jobs.deliver_shop_webhook(delivery_id)
        run_deliveries(runtime, jobs)
        assert receivers[0].delivered_ids() == [event.event_id] * 2
