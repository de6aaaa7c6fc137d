"""The right to erasure: a buyer's personal data leaves their orders; the money stays.

``flask --app wsgi buyers erase USER_ID`` deletes the buyer's Stripe Customer (and with it
their saved cards) and redacts, in every order of theirs: the e-mail, the names and
street lines of the addresses (country and state stay: tax records need them), and every
copy of those in audit payloads, outbox payloads (receipts), shop-webhook bodies, the
last payment error and the checkout read model; mail still queued for the buyer is
cancelled. Amounts, states, line items, audit event types and timestamps are kept. Each
order is redacted in one transaction and gets a ``PERSONAL_DATA_ERASED`` audit event;
running it again changes nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.services import checkout_status, customers
from app.services.records import lock_order, touch
from app.services.state_machine import record_event
from models import Order, OrderEvent, Outbox, ShopEvent
from models.db import database
from models.statuses import OutboxStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
ERASED_EVENT = "PERSONAL_DATA_ERASED"
# Address parts that name or locate a person; ``country`` and ``state`` are kept.
ADDRESS_PARTS = ("name", "line1", "line2", "city", "postalCode", "postal_code", "phone")
# Keys whose whole value is personal wherever they appear in a stored payload.
PERSONAL_KEYS = frozenset({"email", "receiptEmail", "receipt_email", "phone"})
ADDRESS_KEYS = frozenset(
    {"shippingAddress", "billingAddress", "shipping_address", "billing_address", "address"}
)


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: the orders redacted now, and whether a Customer was deleted."""

    orders: int
    customer_deleted: bool


def erased_email(order_id: str) -> str:
    """The e-mail an erased order keeps (the column is required; this reaches no one)."""
    return f"erased-{order_id}@redacted.invalid"


def erase_buyer(user_id: str, runtime: Runtime) -> Erasure:
    """Delete the buyer's Stripe Customer, then redact every order of theirs.

    Stripe first: a retryable failure propagates before anything is redacted, and a
    re-run finishes what a failed run left (deleting a deleted Customer is fine).
    """
    customer = customers.customer_of(user_id)
    if customer is not None:
        runtime.gateway.delete_customer(customer)
        customers.forget_customer(user_id)
    count = 0
    order_ids = [order.id for order in Order.select(Order.id).where(Order.user_id == user_id)]
    for order_id in order_ids:
        if redact_order(order_id):
            count += 1
        checkout_status.forget_personal_data(runtime.redis, order_id)
    log.info("buyer erased: %s orders redacted, customer deleted: %s", count, bool(customer))
    return Erasure(orders=count, customer_deleted=customer is not None)


def redact_order(order_id: str) -> bool:
    """Redact one order and what carries its buyer's data; False when nothing was left."""
    with database().atomic():
        order = lock_order(order_id)
        personal = personal_strings(order)
        changed = False
        for event in OrderEvent.select().where(OrderEvent.order == order_id):
            changed |= _save_if_changed(event, "payload", scrub(event.payload, personal))
        for row in Outbox.select().where(Outbox.order == order_id):
            changed |= _save_if_changed(row, "payload", scrub(row.payload, personal))
            if row.status == OutboxStatus.PENDING:
                # Its address is gone: the mail must never go out (nor be retried).
                row.status, row.last_error = OutboxStatus.FAILED, "personal data erased"
                row.save(only=[Outbox.status, Outbox.last_error])
                changed = True
        for shop_event in ShopEvent.select().where(ShopEvent.order == order_id):
            changed |= _save_if_changed(shop_event, "body", scrub(shop_event.body, personal))
        redacted = {
            "email": erased_email(order.id),
            "shipping_address": redact_address(order.shipping_address),
            "billing_address": redact_address(order.billing_address),
            "last_payment_error": scrub(order.last_payment_error, personal),
        }
        if any(getattr(order, name) != value for name, value in redacted.items()):
            changed = True
            touch(order, **redacted)
        if changed:
            record_event(order, ERASED_EVENT, {}, actor="cli")
    return changed


def personal_strings(order: Order) -> set[str]:
    """The buyer's own strings on this order (e-mail, names, street, city, postcode)."""
    found = {order.email} if order.email and order.email != erased_email(order.id) else set()
    for address in (order.shipping_address, order.billing_address):
        for part in ADDRESS_PARTS:
            value = (address or {}).get(part)
            if isinstance(value, str) and value.strip() and value != REDACTED:
                found.add(value)
    return found


def redact_address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    """The address without what names or locates the person (country and state stay)."""
    if not address:
        return address
    return {
        key: (REDACTED if key in ADDRESS_PARTS and value else value)
        for key, value in address.items()
    }


def scrub(value: Any, personal: set[str]) -> Any:
    """``value`` with personal keys, addresses, the buyer's own strings and e-mail redacted."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in PERSONAL_KEYS and isinstance(item, str) and item:
                out[key] = REDACTED
            elif key in ADDRESS_KEYS and isinstance(item, dict):
                out[key] = redact_address(scrub(item, personal))
            else:
                out[key] = scrub(item, personal)
        return out
    if isinstance(value, list):
        return [scrub(item, personal) for item in value]
    if isinstance(value, str):
        if value in personal:
            return REDACTED
        # Inside longer text only the e-mail is searched for: a name or a city ("Ada",
        # "Paris") would also match product names and messages that are not the buyer's.
        for email in (p for p in personal if "@" in p):
            value = value.replace(email, REDACTED)
        return value
    return value


def _save_if_changed(row: Any, field: str, value: Any) -> bool:
    if getattr(row, field) == value:
        return False
    setattr(row, field, value)
    row.save(only=[getattr(type(row), field)])
    return True
