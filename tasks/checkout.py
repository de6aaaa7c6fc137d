"""Actor: turn an admitted submission into an order with its PaymentIntent."""

from __future__ import annotations

from app.runtime import current
from app.services.confirmation import place_order
from app.services.records import enqueue_with_release, order_lock


def create_payment_intent(order_id: str) -> None:
    """Write the order (idempotent), create its intent (and confirm it with the buyer's
    ConfirmationToken), schedule the hold's expiry (with the lock's release)."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        placed = place_order(order_id, runtime)
        at = placed.expire_at
        if at is not None:
            message = runtime.jobs.scripted_expire_hold(order_id, at)
            enqueue_with_release(
                runtime.redis, message, lambda: runtime.jobs.expire_hold(order_id, at=at)
            )
    for outbox_id in placed.outbox_ids:  # server-side confirmation paid it at once
        runtime.jobs.send_receipt(outbox_id)
