"""Actor: apply one verified Stripe event exactly once (I3)."""

from __future__ import annotations

import logging
from contextlib import nullcontext

from app.runtime import current
from app.services import receipts, webhooks
from app.services.records import order_lock
from models.statuses import WebhookStatus

log = logging.getLogger(__name__)


def handle_stripe_event(event_id: str) -> None:
    """Dedupe on the event's id, load it (as received, else its inbox row), apply the
    handler, then send any receipt it queued (after its commit, from this run)."""
    runtime = current()
    seen, payload = webhooks.pending_event(runtime.redis, event_id)
    if seen:  # done already: a replayed delivery kept its body again
        webhooks.forget_received(runtime.redis, event_id)
        return
    if payload is None:  # its body lapsed unread: the clock's reconciliation fetches it
        log.error("Stripe event %s: no body kept for it; left to reconciliation", event_id)
        return
    # An event without a handler changes no order: recorded as ignored, without the lock.
    handled = webhooks.handled(str(payload.get("type", "")))
    order_id = webhooks.order_id_of_event(payload) if handled else None
    guard = order_lock(runtime.redis, order_id) if order_id else nullcontext()
    with guard:
        outcome = webhooks.handle_event(event_id, payload, runtime, unseen=True)
    if outcome.status not in (WebhookStatus.PROCESSED, WebhookStatus.IGNORED):
        webhooks.forget_received(runtime.redis, event_id)  # done ones dropped it already
    if outcome.expire_order:  # a late failure of a delayed payment: cancel, then release
        runtime.jobs.expire_hold(outcome.expire_order)
    # Committed: its mails go out from this run, not a message each (a failed send is
    # queued to send_receipt; nothing here fails or retries the applied event).
    receipts.send_now(runtime, outcome.order, outcome.outbox_ids)
