"""Actor: turn an admitted submission into an order with its PaymentIntent."""

from __future__ import annotations

import dramatiq

from app.runtime import current
from app.services.orders import create_order_from_submission, order_lock
from models import Reservation
from tasks.broker import broker, retry_policy


@dramatiq.actor(broker=broker, retry_when=retry_policy(20))
def create_payment_intent(order_id: str) -> None:
    """Write the order (idempotent), create its intent, schedule the hold's expiry."""
    from tasks.expiry import schedule_expiry

    runtime = current()
    with order_lock(runtime.redis, order_id):
        order = create_order_from_submission(order_id, runtime)
    if order is not None and order.state == "PENDING":
        reservation = Reservation.get_or_none(Reservation.order == order.id)
        if reservation is not None:
            schedule_expiry(order.id, reservation.expires_at)
