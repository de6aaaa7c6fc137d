"""The signed-in buyer's own things (a buyer JWT): saved cards and orders.

Listing and deleting saved cards ask Stripe from the web (the contract's answer is
Stripe's), through the buyers service and the gateway port, under the Stripe budget.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.api import auth
from app.context import current_runtime
from app.schemas.admin import EmptySchema, PageQuerySchema
from app.schemas.common import load
from app.services import buyers

blueprint = Blueprint("me", __name__, url_prefix="/api/me")
_page_query = PageQuerySchema()
_no_query = EmptySchema()


@blueprint.get("/payment-methods")
def payment_methods() -> Response:
    """The buyer's saved cards: ``[{id, brand, last4, expMonth, expYear}]``."""
    user_id = auth.require_buyer()
    load(_no_query, request.args.to_dict())
    return jsonify(buyers.saved_cards(user_id, current_runtime().gateway))


@blueprint.delete("/payment-methods/<payment_method_id>")
def delete_payment_method(payment_method_id: str) -> tuple[str, int]:
    """Detach one of the buyer's saved cards at Stripe: 204; 404 when it is not theirs."""
    user_id = auth.require_buyer()
    buyers.delete_saved_card(user_id, payment_method_id, current_runtime().gateway)
    return "", 204


@blueprint.get("/orders")
def orders() -> Response:
    """The buyer's orders, newest first: ``{data, nextCursor}`` (``?limit=&cursor=``)."""
    user_id = auth.require_buyer()
    query = load(_page_query, request.args.to_dict())
    return jsonify(buyers.list_orders(user_id, **query).body())
