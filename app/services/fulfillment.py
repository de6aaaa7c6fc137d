"""Fulfilment of paid orders (admin): PAID → FULFILLING → FULFILLED, audited, and
published to the checkout read model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.errors import InvalidRequest, InvalidState
from app.services.records import lock_order, publish_after_commit
from app.services.state_machine import FULFILLED, FULFILLING, PAID, record_event, transition
from models import Order
from models.db import database

if TYPE_CHECKING:
    from app.runtime import Runtime

ACTIONS = {
    "start": (PAID, FULFILLING, "FULFILLMENT_STARTED"),
    "complete": (FULFILLING, FULFILLED, "FULFILLED"),
}


def update_fulfillment(
    order_id: str,
    action: str,
    *,
    runtime: Runtime,
    carrier: str | None = None,
    tracking_number: str | None = None,
    actor: str = "admin",
) -> Order:
    """Start or complete fulfilment; InvalidState unless the order is in the right state."""
    if action not in ACTIONS:
        raise InvalidRequest("Unknown action.", fields={"action": ["Must be start or complete."]})
    source, target, event = ACTIONS[action]
    with database().atomic():
        order = lock_order(order_id)
        if order.state != source:
            raise InvalidState(
                f"Only {source} orders can be {action}ed; this one is {order.state}."
            )
        details = {"carrier": carrier, "trackingNumber": tracking_number}
        record_event(order, event, {k: v for k, v in details.items() if v}, actor)
        transition(order, target, f"fulfillment_{action}", actor)
        publish_after_commit(runtime, order, error=None)
    return order
