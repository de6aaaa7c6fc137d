"""Actors for admin actions on orders: cancel a pending order, submit a refund."""

from __future__ import annotations

from app.runtime import current
from app.services import expiry, refunds
from app.services.records import order_lock


def cancel_order(order_id: str, actor: str = "admin") -> None:
    """Cancel a PENDING order: its intent first, then its hold (I8); audited as ``actor``
    (a person's name: ``operator:<email>`` or ``admin:<sub>``)."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        expiry.cancel_order(order_id, runtime, actor)


def create_refund(refund_id: str) -> None:
    """Ask Stripe for a requested refund (idempotency key ``refund-<refundId>``)."""
    refunds.submit_refund(refund_id, current())
