"""What the console's order page shows: the order body, what is still refundable, the
shop webhook deliveries, the actions its state allows, and a version for live polling.

Reads only; the actions themselves are the admin services' (``admin.refund_order``,
``capture_order``, ``fulfil``, ``check_cancelable`` + the cancel job).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import peewee

from app.errors import NotFound
from app.services import shop_webhooks
from app.services.order_body import order_view
from app.services.refunds import REFUNDABLE_STATES, refundable_amount
from app.services.state_machine import AUTHORIZED, FULFILLING, PAID, PENDING
from models import Order, OrderEvent, Refund, ShopDelivery, ShopEvent

REFUND = "refund"
CAPTURE = "capture"
CANCEL = "cancel"
START_FULFILMENT = "start_fulfilment"
MARK_FULFILLED = "mark_fulfilled"
# The latest deliveries shown on the page (the Webhooks page lists them all).
DELIVERIES_SHOWN = 50


@dataclass(frozen=True)
class OrderPage:
    """One order as the console shows it."""

    order: dict[str, Any]
    refundable: int
    deliveries: list[dict[str, Any]]
    actions: frozenset[str]
    version: str


def allowed_actions(state: str, refundable: int) -> frozenset[str]:
    """The actions an order in ``state`` takes (the services refuse the others: 409)."""
    actions = set()
    if state in REFUNDABLE_STATES and refundable > 0:
        actions.add(REFUND)
    if state == AUTHORIZED:
        actions.add(CAPTURE)
    if state in (PENDING, AUTHORIZED):
        actions.add(CANCEL)
    if state in (PAID, AUTHORIZED):
        actions.add(START_FULFILMENT)  # an authorisation is captured first
    if state == FULFILLING:
        actions.add(MARK_FULFILLED)
    return frozenset(actions)


def order_page(order_id: str) -> OrderPage:
    """The order's page; NotFound for an order not written (yet)."""
    order = _order(order_id)
    refundable = refundable_amount(order.id) if order.state in REFUNDABLE_STATES else 0
    return OrderPage(
        order=order_view(order),
        refundable=max(refundable, 0),
        deliveries=shop_deliveries(order.id),
        actions=allowed_actions(order.state, refundable),
        version=_version(order),
    )


def order_version(order_id: str) -> str:
    """A digest that changes whenever anything the page shows changes."""
    return _version(_order(order_id))


def currency_of(order_id: str) -> str:
    """The order's currency (forms take amounts in its major units); NotFound."""
    currency: str = _order(order_id).currency
    return currency


def shop_deliveries(order_id: str) -> list[dict[str, Any]]:
    """The order's shop webhook deliveries, newest first."""
    rows = (
        ShopDelivery.select(ShopDelivery, ShopEvent)
        .join(ShopEvent)
        .where(ShopEvent.order == order_id)
        .order_by(ShopDelivery.id.desc())
        .limit(DELIVERIES_SHOWN)
    )
    return [shop_webhooks.delivery_row(row) for row in rows]


def _order(order_id: str) -> Order:
    if len(order_id) > Order.id.max_length:
        raise NotFound("No such order.")
    order = Order.get_or_none(Order.id == order_id)
    if order is None:
        raise NotFound("No such order.")
    return order


def _version(order: Order) -> str:
    """The state, the latest event, refund and delivery changes, in one digest."""
    fn = peewee.fn
    last_event = (
        OrderEvent.select(fn.MAX(OrderEvent.id)).where(OrderEvent.order == order.id).scalar()
    )
    refunds = (
        Refund.select(fn.COUNT(Refund.id), fn.MAX(Refund.updated_at))
        .where(Refund.order == order.id)
        .tuples()
        .get()
    )
    deliveries = (
        ShopDelivery.select(fn.MAX(ShopDelivery.id), fn.SUM(ShopDelivery.attempts))
        .join(ShopEvent)
        .where(ShopEvent.order == order.id)
        .tuples()
        .get()
    )
    parts = (order.state, order.updated_at, last_event, refunds, deliveries)
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:16]
