"""Reconciliation: find Stripe events whose webhook never arrived (or never finished).

Asks Stripe for the handled event types created since a checkpoint (kept in Redis)
and returns those the inbox has not processed; the clock enqueues them for the normal,
exactly-once webhook path. Mismatches are logged and counted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from redis import Redis

from app import keys
from app.gateways.payments import PaymentGateway
from app.services.webhooks import DONE, HANDLERS
from models import WebhookEvent

log = logging.getLogger(__name__)

FIRST_LOOKBACK_SECONDS = 24 * 3600
# Re-read a little before the checkpoint: events created in the same second as the last
# one seen, or delivered late by Stripe, are not skipped.
OVERLAP_SECONDS = 300

MISSED = Counter("checkout_reconcile_missed_events_total", "Stripe events found by reconciliation.")


@dataclass
class Reconciliation:
    """One pass: how many events were checked and which were missed."""

    checked: int = 0
    missed: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: int = 0


def reconcile(redis: Redis, gateway: PaymentGateway, *, now: float | None = None) -> Reconciliation:
    """Events since the checkpoint that our inbox has not processed; moves the checkpoint."""
    current = int(now if now is not None else time.time())
    stored = redis.get(keys.RECONCILE_CHECKPOINT)
    since = int(stored) if stored else current - FIRST_LOOKBACK_SECONDS
    result = Reconciliation(checkpoint=since)
    newest = since
    for event in gateway.list_events(created_gte=since - OVERLAP_SECONDS, types=list(HANDLERS)):
        result.checked += 1
        newest = max(newest, int(event.get("created") or 0))
        row = WebhookEvent.get_or_none(WebhookEvent.event_id == event["id"])
        if row is None or row.status not in DONE:
            result.missed.append(event)
    for event in result.missed:
        MISSED.inc()
        log.warning("reconcile: event %s (%s) not processed yet", event["id"], event.get("type"))
    result.checkpoint = min(newest, current)
    redis.set(keys.RECONCILE_CHECKPOINT, result.checkpoint)
    return result
