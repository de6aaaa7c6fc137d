"""One mail per outbox row on PostgreSQL when the webhook actor's send after commit and a
queued ``send_receipt`` (the clock's sweep re-queued the row) race for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from app.gateways.mail import Message
from app.services.receipts import queue_receipt, send_held, send_receipt
from models import Order, OrderEvent, Outbox
from models.db import close_database, database
from tests.models.test_constraints import make_order

pytestmark = pytest.mark.postgres
SENDER = "shop@example.com"


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class HeldMailer:
    """A mailer whose first send waits until :attr:`release` is set: its sender holds the
    row's lock meanwhile."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.sending = threading.Event()
        self.release = threading.Event()

    def send(self, message: Message) -> None:
        """Record ``message``, after waiting for the release if it is the first."""
        first = not self.sending.is_set()
        self.sending.set()
        if first:
            assert self.release.wait(30)
        self.sent.append(message)


def in_thread(results: dict[str, Any], name: str, send: Callable[[], bool]) -> threading.Thread:
    """Run ``send`` on a thread of its own (its own connection); its answer in ``results``."""

    def run() -> None:
        try:
            results[name] = send()
        except BaseException as exc:  # reported by the caller's assertions
            results[name] = exc
        finally:
            close_database()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until_one_waits_for_a_lock() -> None:
    """Until a backend of this database waits for a row lock (the second sender)."""
    for _ in range(500):
        waiting = database().execute_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting.fetchone()[0]:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the second sender never waited for the row's lock")


def race(first: str, order: Order) -> tuple[dict[str, Any], HeldMailer, int]:
    """``first`` ("inline" or "sweep") holds the row mid-send while the other tries it."""
    outbox_id = queue_receipt(order)
    mailer, results = HeldMailer(), {}
    sends = {
        "inline": lambda: send_held(outbox_id, order, mailer, SENDER),
        "sweep": lambda: send_receipt(outbox_id, mailer, SENDER),
    }
    second = "sweep" if first == "inline" else "inline"
    threads = [in_thread(results, first, sends[first])]
    assert mailer.sending.wait(10)
    threads.append(in_thread(results, second, sends[second]))
    wait_until_one_waits_for_a_lock()
    mailer.release.set()
    for thread in threads:
        thread.join(timeout=30)
    return results, mailer, outbox_id


@pytest.mark.parametrize("first", ["inline", "sweep"])
def test_the_inline_send_and_the_sweeps_send_racing_send_one_mail(db: Any, first: str) -> None:
    order = make_order()
    results, mailer, outbox_id = race(first, order)
    second = "sweep" if first == "inline" else "inline"
    assert results == {first: True, second: False}
    assert [m.to for m in mailer.sent] == ["buyer@example.com"]
    row = Outbox.get_by_id(outbox_id)
    assert (row.status, row.attempts) == ("sent", 1)
    sent = OrderEvent.select().where(
        (OrderEvent.order == order.id) & (OrderEvent.type == "RECEIPT_SENT")
    )
    assert sent.count() == 1
