"""Actor: a hold's expiry (I8) — cancel first, release after; extend or confirm instead."""

from __future__ import annotations

from datetime import datetime

import dramatiq

from app.runtime import current
from app.services import expiry
from app.services.orders import order_lock
from tasks.broker import broker, retry_policy
from tasks.scheduling import HOLDS_QUEUE, delay_ms


@dramatiq.actor(broker=broker, queue_name=HOLDS_QUEUE, retry_when=retry_policy(50))
def expire_hold(order_id: str) -> None:
    """Expire ``order_id``'s hold now; reschedule when it was extended or not yet due."""
    from tasks.receipts import send_receipt

    runtime = current()
    with order_lock(runtime.redis, order_id):
        result = expiry.expire_hold(order_id, runtime)
    if result.retry_at is not None:
        schedule_expiry(order_id, result.retry_at)
    for outbox_id in result.outbox_ids:
        send_receipt.send(outbox_id)


def schedule_expiry(order_id: str, at: datetime) -> None:
    """Enqueue :func:`expire_hold` to run at ``at`` (naive UTC)."""
    expire_hold.send_with_options(args=(order_id,), delay=delay_ms(at))
