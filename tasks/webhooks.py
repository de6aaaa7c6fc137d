"""Actor: apply one verified Stripe event exactly once (I3)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import dramatiq

from app.runtime import current
from app.services import webhooks
from app.services.orders import order_lock
from tasks.broker import broker, retry_policy


@dramatiq.actor(broker=broker, retry_when=retry_policy(25))
def handle_stripe_event(event_id: str, payload: dict[str, Any]) -> None:
    """Dedupe on the event id, apply the handler, then send any receipt it queued."""
    from tasks.receipts import send_receipt

    runtime = current()
    order_id = ((payload.get("data") or {}).get("object") or {}).get("metadata", {}).get("orderId")
    guard = order_lock(runtime.redis, str(order_id)) if order_id else nullcontext()
    with guard:
        outcome = webhooks.handle_event(event_id, payload, runtime)
    for outbox_id in outcome.outbox_ids:
        send_receipt.send(outbox_id)
