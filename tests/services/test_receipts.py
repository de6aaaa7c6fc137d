"""Receipts through the outbox: queued once per order, sent once, retried on failure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from app.services.receipts import (
    MAX_ATTEMPTS,
    RENDERED,
    RENDERERS,
    queue_receipt,
    send_held,
    send_now,
    send_receipt,
    unsent,
)
from models import Order, OrderEvent, Outbox
from tasks import clock
from tests.fakes import sql_sent
from tests.models.test_constraints import make_order


@pytest.fixture
def order(db: Any) -> Order:
    return make_order(email="ada@example.com")


class TestReceipts:
    def test_queued_once_per_order(self, order: Order) -> None:
        first = queue_receipt(order)
        assert queue_receipt(order) == first
        assert Outbox.select().count() == 1
        assert [e.type for e in order.events] == ["RECEIPT_QUEUED"]

    def test_queueing_is_one_insert_and_sending_one_read(
        self, order: Order, mailer: Any, monkeypatch: Any
    ) -> None:
        sent = sql_sent(monkeypatch)
        outbox_id = queue_receipt(order)
        assert sent == ["INSERT", "INSERT"]  # the row, its RECEIPT_QUEUED (no SELECT first)
        sent.clear()
        queue_receipt(order)
        assert sent == ["INSERT", "SELECT"]  # the key was taken: its row is read
        sent.clear()
        send_receipt(outbox_id, mailer, "shop@example.com")
        assert sent == ["BEGIN", "SELECT", "UPDATE", "INSERT"]  # row and order in one read

    def test_sent_once(self, order: Order, mailer: Any) -> None:
        outbox_id = queue_receipt(order)
        assert send_receipt(outbox_id, mailer, "shop@example.com") is True
        assert send_receipt(outbox_id, mailer, "shop@example.com") is False
        assert len(mailer.sent) == 1
        message = mailer.sent[0]
        assert message.to == "ada@example.com"
        assert order.order_number in message.subject
        assert "10.00 USD" in message.text
        assert Outbox.get_by_id(outbox_id).status == "sent"
        assert unsent() == []
        assert "RECEIPT_SENT" in [e.type for e in Order.get_by_id(order.id).events]

    def test_failure_counts_and_stays_pending(self, order: Order, mailer: Any) -> None:
        outbox_id = queue_receipt(order)
        mailer.failures = 1
        with pytest.raises(ConnectionError):
            send_receipt(outbox_id, mailer, "shop@example.com")
        row = Outbox.get_by_id(outbox_id)
        assert (row.status, row.attempts) == ("pending", 1)
        assert unsent() == [outbox_id]
        assert send_receipt(outbox_id, mailer, "shop@example.com") is True

    def test_gives_up_after_max_attempts(self, order: Order, mailer: Any) -> None:
        outbox_id = queue_receipt(order)
        mailer.failures = MAX_ATTEMPTS
        for _ in range(MAX_ATTEMPTS):
            with pytest.raises(ConnectionError):
                send_receipt(outbox_id, mailer, "shop@example.com")
        assert Outbox.get_by_id(outbox_id).status == "failed"
        assert unsent() == []


def audit_types(order: Order) -> list[str]:
    """The order's audit trail, oldest first."""
    events = OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.id)
    return [e.type for e in events]


class TestSendHeld:
    """The webhook actor's send after its commit: the order it holds, no re-read."""

    def test_claims_and_audits_in_two_statements_without_a_read(
        self, order: Order, mailer: Any, monkeypatch: Any
    ) -> None:
        outbox_id = queue_receipt(order)
        sent = sql_sent(monkeypatch)
        assert send_held(outbox_id, order, mailer, "shop@example.com") is True
        assert sent == ["BEGIN", "UPDATE", "INSERT"]  # the claim's RETURNING, RECEIPT_SENT
        message = mailer.sent[0]
        assert (message.to, message.sender) == ("ada@example.com", "shop@example.com")
        assert order.order_number in message.subject and "10.00 USD" in message.text
        row = Outbox.get_by_id(outbox_id)
        assert (row.status, row.attempts, row.sent_at is not None) == ("sent", 1, True)
        assert audit_types(order) == ["RECEIPT_QUEUED", "RECEIPT_SENT"]

    def test_sends_what_the_queued_path_sends(self, db: Any, mailer: Any) -> None:
        held, queued = make_order(email="ada@example.com"), make_order(email="ada@example.com")
        send_held(queue_receipt(held), held, mailer, "shop@example.com")
        send_receipt(queue_receipt(queued), mailer, "shop@example.com")
        inline, sent = mailer.sent
        number = (held.order_number, queued.order_number)
        assert (inline.subject, inline.text) == (
            sent.subject.replace(*reversed(number)),
            sent.text.replace(*reversed(number)),
        )

    def test_a_row_is_sent_once_whichever_path_comes_first(self, order: Order, mailer: Any) -> None:
        outbox_id = queue_receipt(order)
        assert send_held(outbox_id, order, mailer, "shop@example.com") is True
        assert send_held(outbox_id, order, mailer, "shop@example.com") is False
        assert send_receipt(outbox_id, mailer, "shop@example.com") is False
        other = make_order()
        other_id = queue_receipt(other)
        assert send_receipt(other_id, mailer, "shop@example.com") is True
        assert send_held(other_id, other, mailer, "shop@example.com") is False
        assert len(mailer.sent) == 2
        assert Outbox.get_by_id(outbox_id).attempts == 1

    def test_a_failure_counts_and_leaves_the_row_pending(self, order: Order, mailer: Any) -> None:
        outbox_id = queue_receipt(order)
        mailer.failures = 1
        with pytest.raises(ConnectionError):
            send_held(outbox_id, order, mailer, "shop@example.com")
        row = Outbox.get_by_id(outbox_id)
        assert (row.status, row.attempts) == ("pending", 1)
        assert audit_types(order) == ["RECEIPT_QUEUED"]
        # Counted: the row is its retrying sender's now, not a held send's.
        assert send_held(outbox_id, order, mailer, "shop@example.com") is False
        assert mailer.sent == []
        assert send_receipt(outbox_id, mailer, "shop@example.com") is True
        assert Outbox.get_by_id(outbox_id).attempts == 2

    def test_refuses_a_row_of_another_order(self, order: Order, mailer: Any) -> None:
        outbox_id = queue_receipt(make_order())
        with pytest.raises(ValueError, match="is not order"):
            send_held(outbox_id, order, mailer, "shop@example.com")
        assert mailer.sent == []
        assert Outbox.get_by_id(outbox_id).status == "pending"


class TestSendNow:
    """After commit, from the actor's run: a failed send is queued at once, never raised."""

    def test_sends_with_nothing_queued(self, runtime: Any, order: Order, jobs: Any) -> None:
        send_now(runtime, order, [queue_receipt(order)])
        assert [m.to for m in runtime.mailer.sent] == ["ada@example.com"]
        assert jobs.calls == []

    def test_a_failed_send_is_queued_at_once_and_sent_once(
        self, runtime: Any, order: Order, jobs: Any, caplog: Any
    ) -> None:
        outbox_id = queue_receipt(order)
        runtime.mailer.failures = 1
        send_now(runtime, order, [outbox_id])  # does not raise
        assert (Outbox.get_by_id(outbox_id).status, unsent()) == ("pending", [outbox_id])
        assert jobs.named("send_receipt") == [(outbox_id,)]
        assert "the send after commit failed" in caplog.text
        for (queued,) in jobs.named("send_receipt") * 2:  # the message, then a duplicate
            send_receipt(queued, runtime.mailer, runtime.config.mail_from)
        assert len(runtime.mailer.sent) == 1
        assert audit_types(order) == ["RECEIPT_QUEUED", "RECEIPT_SENT"]

    def test_a_failed_enqueue_too_leaves_the_row_to_the_sweep(
        self, runtime: Any, order: Order, jobs: Any, monkeypatch: Any
    ) -> None:
        outbox_id = queue_receipt(order)
        runtime.mailer.failures = 1

        def broker_down(outbox_id: int) -> None:
            raise ConnectionError("Redis unavailable")

        monkeypatch.setattr(jobs, "send_receipt", broker_down)
        send_now(runtime, order, [outbox_id])  # does not raise
        monkeypatch.undo()
        assert unsent() == [outbox_id] and jobs.calls == []
        Outbox.update(created_at=datetime(2000, 1, 1)).execute()  # a minute old and more
        assert clock.sweep(runtime).counts == {"receipts": 1}
        assert jobs.named("send_receipt") == [(outbox_id,)]

    def test_an_order_not_held_has_each_row_queued(
        self, runtime: Any, order: Order, jobs: Any
    ) -> None:
        outbox_id = queue_receipt(order)
        send_now(runtime, None, [outbox_id])
        assert jobs.named("send_receipt") == [(outbox_id,)]
        assert runtime.mailer.sent == []


class TestRenderedColumns:
    def test_every_kind_renders_the_same_from_the_columns_the_send_reads(self, db: Any) -> None:
        # Every column set to something its default is not: one a renderer reads and the
        # send does not (RENDERED) would read as None and change the mail, or raise.
        order = make_order(
            email="ada@example.com",
            line_items=[
                {"sku": "MUG", "name": "Mug", "quantity": 2, "unitAmount": 600, "amount": 1200},
                {"sku": "TEE", "quantity": 1, "unitAmount": 2000, "amount": 2000},
            ],
            subtotal=3200,
            discount=500,
            promotion_code="SPRING",
            shipping=700,
            tax=90,
            total=3490,
            currency="eur",
            state="PAID",
            capture_before=datetime(2026, 12, 14, 9, 30),
        )
        payload = {
            "email": "ops@example.com",
            "to": "ops@example.com",
            "amount": 3490,
            "event": "opened",
            "dispute": {"id": "dp_1", "status": "needs_response", "amount": 3490},
        }
        whole = Order.get_by_id(order.id)
        read = Order.select(*RENDERED).where(Order.id == order.id).get()
        for kind, render in RENDERERS.items():
            assert render(read, payload, "shop@example.com") == render(
                whole, payload, "shop@example.com"
            ), kind
