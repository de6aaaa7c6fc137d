"""Payments for an order: creating its PaymentIntent and applying the intent's status.

:func:`apply_intent` is the one place that turns a PaymentIntent status into order
effects; webhooks, expiry and repair sweeps all call it with the intent as Stripe
reports it *now*, so out-of-order deliveries end in the right state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from app.errors import PaymentProviderError
from app.gateways.payments import Intent
from app.services import checkout_status
from app.services.inventory import Inventory
from app.services.orders import checkout_fields, lock_order, touch
from app.services.receipts import queue_receipt
from app.services.state_machine import (
    CANCELED,
    FAILED,
    PAID,
    PENDING,
    record_event,
    transition,
)
from models import Order, OrderEvent, Product, Reservation
from models.db import database, utcnow

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

LATE_PAYMENTS = Counter(
    "checkout_payment_after_close_total",
    "Payments that succeeded on an order already canceled or failed (needs a refund).",
)

# Recorded by the expiry of an order that has no saved intent id (expiry.py): from then
# on no intent is created for the order, so Stripe's search can be trusted once the
# search delay has passed.
INTENT_LOOKUP = "PAYMENT_INTENT_LOOKUP"

STATUS_EVENTS = {
    "processing": "PAYMENT_PROCESSING",
    "requires_action": "PAYMENT_REQUIRES_ACTION",
}


def intent_metadata(order: Order) -> dict[str, str]:
    """The metadata every PaymentIntent of ours carries."""
    return {
        "orderId": order.id,
        "reservationId": order.reservation_id,
        "orderNumber": order.order_number,
    }


def ensure_intent(order: Order, runtime: Runtime) -> Order:
    """Create the order's PaymentIntent (once: key ``pi-create-<orderId>``) and publish it.

    Retryable provider errors propagate (the actor retries); permanent ones fail the
    order and release its hold.
    """
    if order.payment_intent_id is None:
        if intent_creation_stopped(order.id):
            log.warning("order %s: its hold expired; no intent is created any more", order.id)
            return order
        try:
            intent = runtime.gateway.create_intent(
                amount=order.total,
                currency=order.currency,
                idempotency_key=f"pi-create-{order.id}",
                metadata=intent_metadata(order),
                receipt_email=order.email,
                description=f"Order {order.order_number}",
            )
        except PaymentProviderError as exc:
            if exc.retryable:
                raise
            fail_without_intent(order, runtime, exc)
            return Order.get_by_id(order.id)
        order = store_intent(order.id, intent, runtime)
        if order.state == PENDING:
            checkout_status.publish(runtime.redis, order.id, **checkout_fields(order), error=None)
    else:
        # A re-run (duplicate message): republish, keeping any decline already shown.
        checkout_status.publish(runtime.redis, order.id, **checkout_fields(order))
    return order


def intent_creation_stopped(order_id: str) -> bool:
    """Whether the expiry is looking this order's intent up at Stripe (see INTENT_LOOKUP)."""
    return (
        OrderEvent.select()
        .where((OrderEvent.order == order_id) & (OrderEvent.type == INTENT_LOOKUP))
        .exists()
    )


def store_intent(order_id: str, intent: Intent, runtime: Runtime) -> Order:
    """Record the new intent on the order; cancel it if the order closed meanwhile."""
    with database().atomic():
        order = lock_order(order_id)
        if order.payment_intent_id is None:
            touch(
                order,
                payment_intent_id=intent.id,
                client_secret=intent.client_secret,
                payment_status=intent.status,
            )
            record_event(
                order,
                "PAYMENT_INTENT_CREATED",
                {"intentId": intent.id, "amount": intent.amount, "currency": intent.currency},
                actor="worker",
            )
    if order.state != PENDING and intent.status not in ("succeeded", "canceled"):
        # The hold expired while the intent was being created: it must never be paid.
        runtime.gateway.cancel_intent(
            intent.id, reason="abandoned", idempotency_key=f"pi-cancel-{order.id}"
        )
    return order


def fail_without_intent(order: Order, runtime: Runtime, exc: PaymentProviderError) -> None:
    """A permanent error creating the intent: FAILED, hold released, error published."""
    with database().atomic():
        order = lock_order(order.id)
        if order.state != PENDING:
            return
        release_hold(order, runtime, reason="payment_setup_failed")
        touch(
            order,
            payment_status="canceled",
            last_payment_error={"code": exc.provider_code, "message": exc.message},
        )
        transition(
            order,
            FAILED,
            "payment_setup_failed",
            actor="worker",
            payload={"providerCode": exc.provider_code},
        )
    checkout_status.publish(
        runtime.redis,
        order.id,
        **checkout_fields(order),
        error={"code": "payment_setup_failed", "message": "The payment could not be set up."},
    )
    log.error("order %s: permanent error creating its intent: %s", order.id, exc.message)


# --- applying an intent's status --------------------------------------------------


def apply_intent(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> list[int]:
    """Apply ``intent``'s current status to ``order`` (inside the caller's transaction).

    Returns the ids of outbox rows queued (receipts) so the caller can send them.
    """
    status = intent.status
    if status == "succeeded":
        return apply_success(order, intent, runtime, actor=actor)
    if order.state != PENDING:
        return []
    if status == "canceled":
        close_after_cancel(order, intent, runtime, actor=actor, expired=False)
    elif status == "requires_payment_method" and intent.last_error is not None:
        note_failure(order, intent, runtime, actor=actor)
    elif status != order.payment_status:
        if status in STATUS_EVENTS:
            record_event(order, STATUS_EVENTS[status], {"intentId": intent.id}, actor)
        touch(order, payment_status=status)
        publish_after_commit(runtime, order, error=None)
    return []


def apply_success(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> list[int]:
    """The payment succeeded: PAID, stock confirmed, receipt queued; loud if too late."""
    if order.state in (CANCELED, FAILED):
        record_event(
            order,
            "PAYMENT_AFTER_CLOSE",
            {"intentId": intent.id, "amount": intent.amount, "state": order.state},
            actor,
        )
        LATE_PAYMENTS.inc()
        log.error(
            "PAYMENT SUCCEEDED ON CLOSED ORDER %s (%s, intent %s): refund or fulfil by hand",
            order.id,
            order.state,
            intent.id,
        )
        return []
    if order.state != PENDING:
        return []  # already paid: a duplicate or a replay
    touch(order, payment_status="succeeded", last_payment_error=None)
    record_event(
        order,
        "PAYMENT_SUCCEEDED",
        {"intentId": intent.id, "amount": intent.amount, "charge": intent.latest_charge},
        actor,
    )
    transition(order, PAID, "payment_succeeded", actor)
    confirm_hold(order, runtime, actor)
    outbox_id = queue_receipt(order, actor)
    publish_after_commit(runtime, order, error=None)
    return [outbox_id]


def confirm_hold(order: Order, runtime: Runtime, actor: str) -> None:
    """HELD → CONFIRMED in the database (stock on hand decremented) and in Redis."""
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    if reservation is None or reservation.status != "HELD":
        return
    for sku, qty in reservation.items:
        Product.update(stock_on_hand=Product.stock_on_hand - int(qty), updated_at=utcnow()).where(
            Product.sku == sku
        ).execute()
    reservation.status, reservation.updated_at = "CONFIRMED", utcnow()
    reservation.save()
    # Idempotent; done before commit so a rolled-back transaction is simply redone.
    Inventory(runtime.redis).confirm(reservation.id)
    record_event(order, "STOCK_CONFIRMED", {"reservationId": reservation.id}, actor)


def release_hold(order: Order, runtime: Runtime, *, reason: str, actor: str = "worker") -> None:
    """HELD → RELEASED in the database and in Redis (units back on sale)."""
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    if reservation is None or reservation.status != "HELD":
        return
    reservation.status, reservation.updated_at = "RELEASED", utcnow()
    reservation.save()
    Inventory(runtime.redis).release(reservation.id)
    record_event(
        order, "STOCK_RELEASED", {"reservationId": reservation.id, "reason": reason}, actor
    )


def note_failure(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> None:
    """A declined attempt: PAYMENT_FAILED, the order stays PENDING, the buyer may retry."""
    error = intent.last_error
    assert error is not None
    details = {
        "code": "card_declined",
        "declineCode": error.decline_code or error.code,
        "message": error.message,
    }
    record_event(order, "PAYMENT_FAILED", {"intentId": intent.id, **details}, actor)
    touch(order, payment_status="requires_payment_method", last_payment_error=details)
    publish_after_commit(runtime, order, error=details)


def close_after_cancel(
    order: Order,
    intent: Intent | None,
    runtime: Runtime,
    *,
    actor: str,
    expired: bool,
    target: str | None = None,
) -> None:
    """The intent can no longer succeed: release the hold, end FAILED or CANCELED (I8)."""
    if expired:
        record_event(order, "HOLD_EXPIRED", {"reservationId": order.reservation_id}, actor)
    if intent is not None:
        record_event(
            order,
            "PAYMENT_INTENT_CANCELED",
            {"intentId": intent.id, "reason": "abandoned" if expired else "requested_by_customer"},
            actor,
        )
    release_hold(
        order, runtime, reason="hold_expired" if expired else "intent_canceled", actor=actor
    )
    touch(order, payment_status="canceled" if intent is not None else order.payment_status)
    attempted = order.last_payment_error is not None or (
        intent is not None and intent.last_error is not None
    )
    target = target or (FAILED if attempted else CANCELED)
    transition(order, target, "hold_expired" if expired else "intent_canceled", actor)
    message = "The hold on your items expired." if expired else "The payment was canceled."
    publish_after_commit(
        runtime,
        order,
        error={"code": "hold_expired" if expired else "payment_canceled", "message": message},
    )


def publish_after_commit(runtime: Runtime, order: Order, *, error: dict[str, Any] | None) -> None:
    """Publish the order's read model once the current transaction has committed."""
    fields = {**checkout_fields(order), "error": error}

    def publish() -> None:
        try:
            checkout_status.publish(runtime.redis, order.id, **fields)
        except Exception:  # the database is the record; a later publish repairs this
            log.exception("could not publish checkout status of %s", order.id)

    database().after_commit(publish)
