"""Actor: a hold's expiry (I8) — cancel first, release after; extend or confirm instead."""

from __future__ import annotations

from app.runtime import current
from app.services import expiry
from app.services.records import order_lock


def expire_hold(order_id: str) -> None:
    """Expire ``order_id``'s hold now; reschedule when it was extended or not yet due."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        result = expiry.expire_hold(order_id, runtime)
    if result.retry_at is not None:
        runtime.jobs.expire_hold(order_id, at=result.retry_at)
    for outbox_id in result.outbox_ids:
        runtime.jobs.send_receipt(outbox_id)
