"""Refunds (admin): request → a worker asks Stripe → webhooks confirm (``webhooks``).

:func:`request_refund` checks what is refundable and writes a ``pending`` Refund row
(idempotent per Idempotency-Key); :func:`submit_refund` calls Stripe with the key
``refund-<refundId>`` so a retried worker never refunds twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import peewee

from app.errors import InvalidState, PaymentProviderError
from app.schemas.admin import REFUND_REASONS
from app.services.records import lock_order, open_refund
from app.services.state_machine import FULFILLED, FULFILLING, PAID, record_event
from models import Order, Refund
from models.db import database, utcnow
from models.statuses import RefundStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

REFUNDABLE_STATES = frozenset({PAID, FULFILLING, FULFILLED})
OPEN_STATUSES = (RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION, RefundStatus.SUCCEEDED)


def refundable_amount(order_id: str) -> int:
    """What may still be refunded: total minus succeeded or in-flight refunds."""
    order = Order.get_by_id(order_id)
    taken = (
        Refund.select(peewee.fn.SUM(Refund.amount))
        .where((Refund.order == order_id) & (Refund.status.in_(OPEN_STATUSES)))
        .scalar()
    )
    # A partial capture (manual capture) took less than the total: only that is refundable.
    paid = order.total if order.amount_captured is None else order.amount_captured
    return paid - max(int(taken or 0), order.amount_refunded)


def request_refund(
    order_id: str,
    *,
    idempotency_key: str,
    amount: int | None = None,
    reason: str | None = None,
    restock: bool = False,
    actor: str = "admin",
) -> tuple[Refund, bool]:
    """A pending refund (amount defaults to the remainder); returns (refund, created).

    Raises InvalidState when the order is not paid, nothing is refundable, or ``amount``
    exceeds the remainder. A repeated ``idempotency_key`` returns the first refund.
    """
    existing = Refund.get_or_none(Refund.idempotency_key == idempotency_key)
    if existing is not None:
        return existing, False
    with database().atomic():
        order = lock_order(order_id)
        if order.state not in REFUNDABLE_STATES:
            raise InvalidState(f"An order in state {order.state} cannot be refunded.")
        remainder = refundable_amount(order.id)
        wanted = remainder if amount is None else amount
        if remainder <= 0 or wanted <= 0 or wanted > remainder:
            raise InvalidState(f"At most {max(remainder, 0)} can be refunded.")
        refund, _ = open_refund(
            order,
            key=idempotency_key,
            amount=wanted,
            reason=reason,
            actor=actor,
            restock=restock,
        )
    return refund, True


def submit_refund(refund_id: str, runtime: Runtime) -> Refund:
    """Create the refund at Stripe (once); the webhooks then settle it."""
    refund = Refund.get_by_id(refund_id)
    if refund.stripe_refund_id is not None or refund.status != RefundStatus.PENDING:
        return refund
    order = refund.order
    if order.payment_intent_id is None:
        raise InvalidState("The order has no payment to refund.")
    metadata = {"orderId": order.id, "refundId": refund.id}
    stripe_reason = refund.reason if refund.reason in REFUND_REASONS else None
    if refund.reason and stripe_reason is None:
        metadata["reason"] = refund.reason  # ours (e.g. stock_unavailable_after_payment)
    try:
        created = runtime.gateway.create_refund(
            intent_id=order.payment_intent_id,
            amount=refund.amount,
            reason=stripe_reason,
            idempotency_key=f"refund-{refund.id}",
            metadata=metadata,
        )
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        with database().atomic():
            refund.status, refund.updated_at = RefundStatus.FAILED, utcnow()
            refund.save()
            record_event(
                order, "REFUND_FAILED", {"refundId": refund.id, "message": exc.message}, "worker"
            )
        return refund
    with database().atomic():
        fresh = Refund.get_by_id(refund_id)
        if fresh.stripe_refund_id is None:
            fresh.stripe_refund_id, fresh.updated_at = created["id"], utcnow()
            fresh.save()
    return fresh


def unsubmitted(limit: int = 100, *, older_than: datetime | None = None) -> list[str]:
    """Pending refunds never sent to Stripe (a lost message), for the clock's sweep."""
    condition = (Refund.status == RefundStatus.PENDING) & Refund.stripe_refund_id.is_null()
    if older_than is not None:
        condition &= Refund.created_at < older_than
    query = Refund.select(Refund.id).where(condition).order_by(Refund.created_at)
    return [row.id for row in query.limit(limit)]
