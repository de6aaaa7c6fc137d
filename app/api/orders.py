"""Order endpoints: the buyer's full order view and the public tracking lookup.

Before the worker has written the order row, ``GET /api/orders/<id>`` answers from the
checkout read model: state PENDING, no events yet, no refunds (a documented choice: the
buyer who just submitted sees the order at once rather than a 404).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, jsonify

from app import current_runtime
from app.api import auth
from app.api.requests import json_object
from app.errors import NotFound
from app.schemas.common import load
from app.schemas.orders import TrackSchema
from app.services import checkout_status

blueprint = Blueprint("orders", __name__, url_prefix="/api/orders")
_track_schema = TrackSchema()


def load_order(order_id: str) -> Any | None:
    """The order row, or None."""
    from models import Order

    return Order.get_or_none(Order.id == order_id)


def iso(moment: Any) -> str | None:
    """A stored naive-UTC datetime as ISO 8601 with a Z."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def totals(order: Any) -> dict[str, Any]:
    """The contract's totals object of an order row."""
    return {
        "subtotal": order.subtotal,
        "shipping": order.shipping,
        "tax": order.tax,
        "total": order.total,
        "currency": order.currency,
    }


def _events(order: Any) -> list[Any]:
    from models import OrderEvent

    return list(OrderEvent.select().where(OrderEvent.order == order).order_by(OrderEvent.id))


def _refunds(order: Any) -> list[dict[str, Any]]:
    from models import Refund

    rows = Refund.select().where(Refund.order == order).order_by(Refund.created_at, Refund.id)
    return [
        {
            "refundId": r.id,
            "amount": r.amount,
            "status": r.status,
            "reason": r.reason,
            "restock": r.restock,
            "createdAt": iso(r.created_at),
        }
        for r in rows
    ]


def order_view(order: Any) -> dict[str, Any]:
    """The full order (buyer or admin): events oldest first, refunds, payment ids."""
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "email": order.email,
        "lineItems": order.line_items or [],
        "totals": totals(order),
        "shippingAddress": order.shipping_address,
        "billingAddress": order.billing_address,
        "paymentIntentId": order.payment_intent_id,
        "paymentStatus": order.payment_status,
        "reservationId": order.reservation_id,
        "amountRefunded": order.amount_refunded,
        "refunds": _refunds(order),
        "events": [
            {"ts": iso(e.ts), "type": e.type, "payload": e.payload or {}} for e in _events(order)
        ],
        "createdAt": iso(order.created_at),
    }


def pending_view(order_id: str, model: dict[str, Any]) -> dict[str, Any]:
    """The order as the read model knows it before the worker wrote the row."""
    submission = model.get("submission") or {}
    return {
        "orderId": order_id,
        "orderNumber": model.get("orderNumber"),
        "state": model.get("state") or "PENDING",
        "email": submission.get("email"),
        "lineItems": model.get("lineItems") or [],
        "totals": model.get("totals") or None,
        "shippingAddress": submission.get("shippingAddress"),
        "billingAddress": submission.get("billingAddress"),
        "paymentIntentId": model.get("intentId") or None,
        "paymentStatus": model.get("paymentStatus") or "creating",
        "reservationId": model.get("reservationId") or submission.get("reservationId"),
        "amountRefunded": 0,
        "refunds": [],
        "events": [],
        "createdAt": submission.get("submittedAt"),
    }


def public_view(order: Any) -> dict[str, Any]:
    """What anyone with the order number and e-mail may see (no payloads, no ids)."""
    return {
        "orderNumber": order.order_number,
        "state": order.state,
        "lineItems": order.line_items or [],
        "totals": totals(order),
        "createdAt": iso(order.created_at),
        "events": [{"ts": iso(e.ts), "type": e.type} for e in _events(order)],
    }


@blueprint.get("/<order_id>")
def get_order(order_id: str) -> Response:
    """The order with its audit trail (checkout token, the buyer's JWT or admin)."""
    order = load_order(order_id)
    if order is not None:
        auth.require_order_access(order.checkout_token_hash, order.user_id)
        return jsonify(order_view(order))
    model = checkout_status.read(current_runtime().redis, order_id)
    if model is None:
        raise NotFound("No such order.")
    auth.require_order_access(model.get("tokenHash"), model.get("userId") or None)
    return jsonify(pending_view(order_id, model))


@blueprint.post("/track")
def track() -> Response:
    """Public tracking by order number and e-mail; 404 when they do not match."""
    from models import Order

    data = load(_track_schema, json_object())
    order = Order.get_or_none(Order.order_number == data["order_number"].upper())
    # Compare e-mails in constant time and answer the same 404 for both mismatches.
    if order is None or not hmac.compare_digest(
        order.email.strip().lower().encode(), data["email"].strip().lower().encode()
    ):
        raise NotFound("No order matches this order number and e-mail.")
    return jsonify(public_view(order))
