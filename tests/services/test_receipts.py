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
    send_receipt,
    unsent,
)
from models import Order, Outbox
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
