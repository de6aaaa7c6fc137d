"""Actor: apply one verified Stripe event exactly once (I3)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from app.runtime import current
from app.services import webhooks
from app.services.records import order_lock


def handle_stripe_event(event_id: str, payload: dict[str, Any]) -> None:
    """Dedupe on the event id, apply the handler, then send any receipt it queued."""
    runtime = current()
    order_id = webhooks.order_id_of_event(payload)
    guard = order_lock(runtime.redis, order_id) if order_id else nullcontext()
    with guard:
        outcome = webhooks.handle_event(event_id, payload, runtime)
    for outbox_id in outcome.outbox_ids:
        runtime.jobs.send_receipt(outbox_id)
    if outcome.expire_order:  # a late failure of a delayed payment: cancel, then release
        runtime.jobs.expire_hold(outcome.expire_order)
