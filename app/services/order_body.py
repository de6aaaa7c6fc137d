"""The admin order body (``GET /api/orders/<id>``), rendered from the rows.

Below every use case, the state machine included: a shop event carries the order as it
is at the moment of the event, rendered inside the transaction that changes it
(``shop_events``). ``order_views`` serves the same body to the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from app.services.money import decimal_lines, decimal_totals
from models import Order, OrderEvent, Refund, statements


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the second (naive datetimes are taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_micro(moment: datetime | None) -> str | None:
    """A stored naive-UTC datetime as ISO 8601 with a Z, to the microsecond.

    The order bodies have always carried audit timestamps at full precision, so events
    written within one second still read in order; elsewhere :func:`iso_utc`
    (to the second) is the format.
    """
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def totals(order: Order) -> dict[str, Any]:
    """The contract's ``totals`` object of an order."""
    return {
        "subtotal": order.subtotal,
        "discount": order.discount,
        "shipping": order.shipping,
        "tax": order.tax,
        "total": order.total,
        "currency": order.currency,
    }


def priced(lines: list[dict[str, Any]], totals: dict[str, Any] | None) -> dict[str, Any]:
    """``lineItems``, ``totals`` and ``totalsDecimal`` of a body, the lines with their
    decimal twins; before the worker priced the cart (no totals) the twins are null."""
    if totals is None:
        return {"lineItems": lines, "totals": None, "totalsDecimal": None}
    totals = {"discount": 0, **totals}  # a read model from before discounts
    currency = str(totals["currency"])
    return {
        "lineItems": decimal_lines(lines, currency),
        "totals": totals,
        "totalsDecimal": decimal_totals(totals),
    }


def promotion_summary(promotion: dict[str, Any] | None) -> dict[str, str] | None:
    """``{code, description}`` of the code an order was priced with (None: no code)."""
    if not promotion:
        return None
    return {"code": promotion["code"], "description": promotion["description"]}


def order_view(
    order: Order, *, trail: list[OrderEvent] | None = None, locked: bool = False
) -> dict[str, Any]:
    """The full order (buyer or admin): events oldest first, refunds, payment ids.

    ``trail``: the order's whole trail as the current transaction knows it (a new
    order's events as just inserted; the events a change inserted beside the read of
    the earlier ones), so that it is not read again. ``locked``: the caller's
    transaction holds the order's row lock, so the trail is the whole story: refunds
    are read only when it opened one (:func:`may_have_refunds`).
    """
    events = order_events(order) if trail is None else trail
    if locked and not may_have_refunds(order, events):
        refunds: list[dict[str, Any]] = []
    else:
        refunds = order_refunds(order)
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "email": order.email,
        **priced(order.line_items or [], totals(order)),
        "shippingOptionId": order.shipping_option,
        "promotion": promotion_summary(order.promotion),
        "shippingAddress": order.shipping_address,
        "billingAddress": order.billing_address,
        "paymentIntentId": order.payment_intent_id,
        "paymentStatus": order.payment_status,
        "captureMethod": order.capture_method,
        "amountCaptured": order.amount_captured,
        "captureBefore": iso_utc_micro(order.capture_before),
        "reservationId": order.reservation_id,
        "amountRefunded": order.amount_refunded,
        "refunds": refunds,
        "dispute": order.dispute,
        "events": [
            {"ts": iso_utc_micro(e.ts), "type": e.type, "payload": e.payload or {}} for e in events
        ],
        "createdAt": iso_utc_micro(order.created_at),
    }


def order_events(order: Order) -> list[OrderEvent]:
    """The order's audit trail, oldest first (a statement compiled once)."""
    read = trail_read(order)
    return trail_of(statements.run(read.shape, read.build, read.params).fetchall())


def trail_read(order: Order) -> statements.Read:
    """The read of ``order``'s audit trail (every column of each event)."""
    return statements.Read(
        "order_body.order_events",
        lambda: OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.id),
        [order.id],
    )


def trail_of(rows: Iterable[Sequence[Any]]) -> list[OrderEvent]:
    """The events of :func:`trail_read`'s rows, oldest first (in any order given)."""
    events = [statements.instance(OrderEvent, row) for row in rows]
    return sorted(events, key=lambda event: int(event.id))


# Every refund row is opened with this event in the same transaction (records.open_refund,
# webhooks.find_refund): a trail without it has no refund row behind it.
REFUND_OPENED = "REFUND_REQUESTED"


def may_have_refunds(order: Order, events: list[OrderEvent]) -> bool:
    """Whether ``order`` may have refund rows: its trail opened one, or it counts refunded
    money (a new order's paid transaction skips the read, ~120 µs on the server)."""
    return bool(order.amount_refunded) or any(e.type == REFUND_OPENED for e in events)


def order_refunds(order: Order) -> list[dict[str, Any]]:
    """The order's refunds as the order body lists them, oldest first."""
    rows = Refund.select().where(Refund.order == order).order_by(Refund.created_at, Refund.id)
    return [
        {
            "refundId": r.id,
            "amount": r.amount,
            "status": r.status,
            "reason": r.reason,
            "restock": r.restock,
            "createdAt": iso_utc_micro(r.created_at),
        }
        for r in rows
    ]
