"""Constraints the database enforces whatever the code does (I2, I3, I5)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import peewee
import pytest

from models import Order, OrderEvent, Outbox, Product, Refund, Reservation, WebhookEvent
from models.db import utcnow


def make_order(**overrides: Any) -> Order:
    """An order row with plausible defaults."""
    order_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "id": order_id,
        "order_number": f"CO-{order_id[:8]}",
        "idempotency_key": f"key-{order_id}",
        "email": "buyer@example.com",
        "line_items": [{"sku": "TEE", "quantity": 1, "unitAmount": 1000, "amount": 1000}],
        "subtotal": 1000,
        "total": 1000,
        "currency": "usd",
        "shipping_address": {"name": "A", "country": "US"},
        "reservation_id": f"res-{order_id}",
        "checkout_token_hash": "0" * 64,
    }
    fields.update(overrides)
    return Order.create(**fields)


@pytest.mark.usefixtures("db")
class TestOrderConstraints:
    def test_idempotency_key_is_unique(self) -> None:
        make_order(idempotency_key="same-key")
        with pytest.raises(peewee.IntegrityError):
            make_order(idempotency_key="same-key")

    def test_payment_intent_is_unique_but_nullable(self) -> None:
        make_order()
        make_order()  # two NULL intents are fine
        make_order(payment_intent_id="pi_1")
        with pytest.raises(peewee.IntegrityError):
            make_order(payment_intent_id="pi_1")

    def test_checkout_session_is_unique_but_nullable(self) -> None:
        make_order()
        make_order()
        make_order(checkout_session_id="cs_1")
        with pytest.raises(peewee.IntegrityError):
            make_order(checkout_session_id="cs_1")

    def test_json_fields_round_trip(self) -> None:
        order = make_order(last_payment_error={"code": "card_declined"})
        again = Order.get_by_id(order.id)
        assert again.line_items[0]["sku"] == "TEE"
        assert again.last_payment_error == {"code": "card_declined"}
        assert again.amount_refunded == 0
        assert again.state == "PENDING"

    def test_events_are_read_oldest_first(self) -> None:
        order = make_order()
        for kind in ("ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED"):
            OrderEvent.create(order=order, type=kind, payload={})
        assert [e.type for e in order.events] == [
            "ORDER_CREATED",
            "STOCK_HELD",
            "PAYMENT_INTENT_CREATED",
        ]

    def test_one_reservation_per_order(self) -> None:
        order = make_order()
        expires = utcnow() + timedelta(minutes=15)
        Reservation.create(id="r1", order=order, items=[["TEE", 1]], expires_at=expires)
        with pytest.raises(peewee.IntegrityError):
            Reservation.create(id="r2", order=order, items=[["TEE", 1]], expires_at=expires)

    def test_event_needs_an_existing_order(self) -> None:
        with pytest.raises(peewee.IntegrityError):
            OrderEvent.create(order="no-such-order", type="ORDER_CREATED", payload={})


@pytest.mark.postgres
class TestOrderConstraintsOnPostgres(TestOrderConstraints):
    """The same on PostgreSQL, where the unique indexes are partial (``IS NOT NULL``)."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


@pytest.mark.usefixtures("db")
class TestOtherConstraints:
    def test_webhook_event_id_is_unique(self) -> None:
        WebhookEvent.create(event_id="evt_1", type="x", payload={})
        with pytest.raises(peewee.IntegrityError):
            WebhookEvent.create(event_id="evt_1", type="x", payload={})

    def test_outbox_key_is_unique(self) -> None:
        order = make_order()
        Outbox.create(key=f"receipt:{order.id}", kind="receipt", order=order)
        with pytest.raises(peewee.IntegrityError):
            Outbox.create(key=f"receipt:{order.id}", kind="receipt", order=order)

    def test_refund_keys_are_unique_and_amount_positive(self) -> None:
        order = make_order()
        Refund.create(id="rf1", order=order, amount=100, idempotency_key="k1")
        with pytest.raises(peewee.IntegrityError):
            Refund.create(id="rf2", order=order, amount=100, idempotency_key="k1")
        with pytest.raises(peewee.IntegrityError):
            Refund.create(id="rf3", order=order, amount=0, idempotency_key="k3")

    def test_stock_on_hand_cannot_go_negative(self) -> None:
        Product.create(sku="TEE", name="Tee", price_amount=1000, currency="usd", stock_on_hand=1)
        with pytest.raises(peewee.IntegrityError):
            Product.update(stock_on_hand=Product.stock_on_hand - 2).execute()
