"""Actor: turn an admitted submission into an order with its PaymentIntent."""

from __future__ import annotations

from app.runtime import current
from app.services.confirmation import place_order
from app.services.records import order_lock


def create_payment_intent(order_id: str) -> None:
    """Write the order (idempotent), create its intent (and confirm it with the buyer's
    ConfirmationToken), schedule the hold's expiry."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        placed = place_order(order_id, runtime)
    if placed.expire_at is not None:
        runtime.jobs.expire_hold(order_id, at=placed.expire_at)
    for outbox_id in placed.outbox_ids:  # server-side confirmation paid it at once
        runtime.jobs.send_receipt(outbox_id)
