"""app/services/order_body.py: the order body a shop event carries, read in the
transaction that changes the order (which holds its row lock)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import peewee
import pytest

from app.services.order_body import order_events, order_view
from app.services.records import open_refund
from app.services.state_machine import record_event, transition
from models import Order, OrderEvent, Refund, ShopEvent, statements

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test on SQLite, then on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL the database is sent from here on."""
    log: list[str] = []
    execute_sql = peewee.Database.execute_sql

    def recorded(self: peewee.Database, sql: str, params: Any = None) -> Any:
        log.append(sql)
        return execute_sql(self, sql, params)

    monkeypatch.setattr(peewee.Database, "execute_sql", recorded)
    return log


LINE = {"sku": "TEE", "quantity": 1, "unitAmount": 2000, "amount": 2000}


@pytest.fixture
def order() -> Order:
    """A paid order with the start of a trail."""
    made = statements.create(
        Order, id="order-1", order_number="ORD-1", idempotency_key="key-1",
        email="ada@example.com", line_items=[LINE],
        subtotal=2000, total=2000, currency="usd", shipping_address={"name": "Ada"},
        reservation_id="res-1", checkout_token_hash="0" * 64, state="PAID",
    )  # fmt: skip
    record_event(made, "ORDER_CREATED", {"orderNumber": "ORD-1"}, "web")
    record_event(made, "PAYMENT_SUCCEEDED", {"amount": 2000}, "webhook")
    return made


def refund_reads(sql: list[str]) -> list[str]:
    """The statements among ``sql`` that read refunds."""
    return [s for s in sql if s.startswith("SELECT") and '"refund"' in s]


class TestLocked:
    def test_a_trail_that_opened_no_refund_reads_none(self, order: Order, sent: list[str]) -> None:
        locked = order_view(order, locked=True)
        assert refund_reads(sent) == []
        assert locked == order_view(order) and locked["refunds"] == []
        assert refund_reads(sent) != []  # unlocked (an HTTP read): read as before

    def test_a_refund_opened_is_read(self, order: Order, sent: list[str]) -> None:
        refund, _ = open_refund(order, key="rk-1", amount=500, reason=None, actor="admin:1")
        sent.clear()
        locked = order_view(order, locked=True)
        assert refund_reads(sent) != []
        assert [r["refundId"] for r in locked["refunds"]] == [refund.id]
        assert locked == order_view(order)

    def test_refunded_money_is_read_even_without_the_event(self, order: Order) -> None:
        # A row written without its REFUND_REQUESTED (data from before the trail said it).
        Refund.create(id="rf-old", order=order, amount=2000, idempotency_key="old")
        order.amount_refunded = 2000
        assert [r["refundId"] for r in order_view(order, locked=True)["refunds"]] == ["rf-old"]


def test_the_trail_is_the_instances_peewee_reads(order: Order) -> None:
    ours = order_events(order)
    theirs = list(OrderEvent.select().where(OrderEvent.order == order).order_by(OrderEvent.id))
    assert [e.__data__ for e in ours] == [e.__data__ for e in theirs]
    assert [e.type for e in ours] == ["ORDER_CREATED", "PAYMENT_SUCCEEDED"]
    assert not any(e.is_dirty() for e in ours)


class TestShopEventBody:
    """A change's shop event carries the body a fresh read gives at that moment (the
    trail answered beside the events' INSERT, refunds by the trail): the shop webhooks'
    contract."""

    def body_now(self, order: Order) -> Any:
        """order_view as a fresh read gives it, through the JSON a body is stored as."""
        from models.db import JSONField

        field = JSONField()
        return field.python_value(field.db_value(order_view(Order.get_by_id(order.id))))

    def test_a_state_change(self, order: Order) -> None:
        pending = statements.create(
            Order, id="order-2", order_number="ORD-2", idempotency_key="key-2",
            email="ada@example.com", line_items=[LINE], subtotal=2000, total=2000,
            currency="usd", shipping_address={"name": "Ada"}, reservation_id="res-2",
            checkout_token_hash="0" * 64,
        )  # fmt: skip
        record_event(pending, "ORDER_CREATED", {"orderNumber": "ORD-2"}, "web")
        with Order._meta.database.atomic():
            paid = ("PAYMENT_SUCCEEDED", {"amount": 2000, "pair": (1, 2)})  # a tuple: JSON's list
            transition(pending, "PAID", "payment_succeeded", "webhook", events=[paid])
        sent = ShopEvent.select().where(ShopEvent.order == pending.id).get()
        assert sent.body["data"]["order"] == self.body_now(pending)
        types = [e["type"] for e in sent.body["data"]["order"]["events"]]
        assert types == ["ORDER_CREATED", "PAYMENT_SUCCEEDED", "STATE_CHANGED"]

    def test_a_refund_and_its_state_change(self, order: Order) -> None:
        open_refund(order, key="rk-2", amount=2000, reason=None, actor="admin:1")
        with Order._meta.database.atomic():
            refunded = {Order.amount_refunded: 2000}
            transition(order, "REFUNDED", "refunded", "webhook", changes=refunded)
        sent = ShopEvent.select().where(ShopEvent.order == order.id).get()
        body = sent.body["data"]["order"]
        assert body["refunds"] and body["events"][-1]["type"] == "STATE_CHANGED"
        assert body == self.body_now(order)
