"""Actors for admin actions on orders: cancel a pending order, submit a refund."""

from __future__ import annotations

import dramatiq

from app.runtime import current
from app.services import expiry, refunds
from app.services.orders import order_lock
from tasks.broker import broker, retry_policy


@dramatiq.actor(broker=broker, retry_when=retry_policy(20))
def cancel_order(order_id: str) -> None:
    """Cancel a PENDING order: its intent first, then its hold (I8)."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        expiry.cancel_order(order_id, runtime)


@dramatiq.actor(broker=broker, retry_when=retry_policy(20))
def create_refund(refund_id: str) -> None:
    """Ask Stripe for a requested refund (idempotency key ``refund-<refundId>``)."""
    refunds.submit_refund(refund_id, current())
