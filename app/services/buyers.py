"""What a signed-in buyer sees and manages of their own: saved cards and orders; and the
right to erasure. No Flask here.

Saved cards live at Stripe (on the buyer's Customer, :mod:`customers`): listing and
deleting them are the only Stripe calls made from the web, through the gateway port and
so under the fleet's Stripe budget. Orders are read from the database, newest first, in
keyset pages (the admin listing's cursors).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from app.errors import NotFound, PaymentProviderError, ServiceUnavailable
from app.gateways.payments import PaymentGateway, SavedCard
from app.services import customers
from app.services.admin import Page, newest_orders
from app.services.order_views import iso_utc_micro
from app.services.records import totals
from models import Order

# A PaymentMethod id as Stripe makes them; anything else is nobody's saved card.
PAYMENT_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]{1,250}$")


def card_body(card: SavedCard) -> dict[str, Any]:
    """One saved card as the contract shows it (no number, no fingerprint)."""
    return {
        "id": card.id,
        "brand": card.brand,
        "last4": card.last4,
        "expMonth": card.exp_month,
        "expYear": card.exp_year,
    }


def saved_cards(user_id: str, gateway: PaymentGateway) -> list[dict[str, Any]]:
    """The buyer's saved cards, newest first; none before their first checkout."""
    customer = customers.customer_of(user_id)
    if customer is None:
        return []
    try:
        cards = gateway.list_saved_cards(customer)
    except PaymentProviderError as exc:
        if exc.provider_code == "resource_missing":
            return []  # the Customer was deleted at Stripe: nothing is saved any more
        _provider_failed(exc)
    return [card_body(card) for card in cards]


def delete_saved_card(user_id: str, payment_method_id: str, gateway: PaymentGateway) -> None:
    """Detach one of the buyer's saved cards at Stripe; NotFound unless it is theirs."""
    customer = customers.customer_of(user_id)
    if customer is None or not PAYMENT_METHOD_ID.match(payment_method_id):
        raise NotFound("No such payment method.")
    try:
        if gateway.retrieve_saved_card(customer, payment_method_id) is None:
            raise NotFound("No such payment method.")
        gateway.detach_payment_method(payment_method_id)
    except PaymentProviderError as exc:
        if exc.provider_code == "resource_missing":
            raise NotFound("No such payment method.") from exc
        _provider_failed(exc)


def _provider_failed(exc: PaymentProviderError) -> NoReturn:
    """Stripe is busy or down: 503 (retry); anything else stays a provider error."""
    if exc.retryable:
        raise ServiceUnavailable("The payment provider is unavailable; retry.") from exc
    raise exc


def order_summary(order: Order) -> dict[str, Any]:
    """One of the buyer's orders in their listing."""
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "totals": totals(order),
        "lineItems": order.line_items or [],
        "createdAt": iso_utc_micro(order.created_at),
    }


def list_orders(user_id: str, *, limit: int, cursor: str | None) -> Page:
    """The buyer's orders, newest first (created_at, then id), one keyset page."""
    query = Order.select().where(Order.user_id == user_id)
    rows, following = newest_orders(query, limit=limit, cursor=cursor)
    return Page([order_summary(order) for order in rows], following)
