"""The shop's outbox: one event per order change, written in the transaction that makes it.

:func:`record` is called where changes are recorded — ``state_machine.transition`` (every
transition), ``state_machine.record_event`` (disputes), the refund bookkeeping in
``webhooks`` (partial refunds) and ``checkout.write_order`` (creation) — so no code path
can change an order without its event. The body is rendered now, so it carries the
order as it is at the moment of the event; ``shop_webhooks`` delivers it.
"""

from __future__ import annotations

import threading
import uuid

from app.services.order_body import iso_utc_micro, order_view
from models import Order, OrderEvent, ShopEvent, statements
from models.db import utcnow
from models.statuses import ShopEventType

# Audit events that are themselves shop events (the dispute's opening and close).
AUDIT_EVENTS: dict[str, ShopEventType] = {
    "DISPUTE_CREATED": ShopEventType.ORDER_DISPUTED,
    "DISPUTE_OPENED": ShopEventType.ORDER_DISPUTED,
    "DISPUTE_CLOSED": ShopEventType.ORDER_DISPUTE_CLOSED,
    # A late payment refunded for want of stock: the order is (or stays) CANCELED.
    "LATE_PAYMENT_REFUNDED": ShopEventType.ORDER_CANCELED,
}


# Whether this thread recorded an event since ``take_recorded`` last asked (the worker's
# fan-out after each message; under gevent, per greenlet).
_recorded = threading.local()


def take_recorded() -> bool:
    """Whether this thread recorded an event since the last call; resets the answer."""
    recorded = bool(getattr(_recorded, "any", False))
    _recorded.any = False
    return recorded


def new_event_id() -> str:
    """A fresh ``evt_…`` id (receivers dedupe on it)."""
    return f"evt_{uuid.uuid4().hex}"


def type_for_state(state: str) -> ShopEventType:
    """The event of an order reaching ``state`` (``PAID`` → ``order.paid``); ValueError if none."""
    return ShopEventType(f"order.{state.lower()}")


def record(
    order: Order, type_: ShopEventType, *, trail: list[OrderEvent] | None = None
) -> ShopEvent:
    """Write one event about ``order`` as it is now (inside the caller's transaction,
    which holds the order's row lock: every caller changes the order);
    ``trail``: the order's whole trail, known to the transaction (``order_view``)."""
    now = utcnow()
    event_id = new_event_id()
    body = {
        "id": event_id,
        "type": type_.value,
        "createdAt": iso_utc_micro(now),
        "data": {"order": order_view(order, trail=trail, locked=True)},
    }
    event = statements.create(
        ShopEvent, event_id=event_id, type=type_.value, order=order, body=body, created_at=now
    )
    _recorded.any = True
    return event
