"""Order endpoints: the buyer's full order view and the public tracking lookup.

Before the worker has written the order row, ``GET /api/orders/<id>`` answers from the
checkout read model: state PENDING, no events yet, no refunds (a documented choice: the
buyer who just submitted sees the order at once rather than a 404).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.api import auth
from app.api.requests import json_object
from app.context import current_runtime
from app.schemas.common import load
from app.schemas.orders import TrackSchema
from app.services import order_views

blueprint = Blueprint("orders", __name__, url_prefix="/api/orders")
_track_schema = TrackSchema()


@blueprint.get("/<order_id>")
def get_order(order_id: str) -> Response:
    """The order with its audit trail (checkout token, the buyer's JWT or admin)."""
    located = order_views.locate_order(current_runtime().redis, order_id)
    auth.require_order_access(located.token_hash, located.user_id)
    return jsonify(order_views.order_body(located))


@blueprint.post("/track")
def track() -> Response:
    """Public tracking by order number and e-mail; 404 when they do not match."""
    data = load(_track_schema, json_object())
    return jsonify(order_views.track(data["order_number"], data["email"]))
