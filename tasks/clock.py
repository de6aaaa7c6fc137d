"""The scheduler process (``python -m tasks.clock``): repair sweeps every few seconds.

Each sweep re-enqueues work whose message may have been lost: submissions still
pending after 60 s, holds past their expiry, receipts not yet sent, webhook events that
failed or never finished. Every item is re-enqueued at most once per ``THROTTLE_SECONDS``
(a Redis SET NX key), and every actor is idempotent, so a duplicate costs nothing.
Stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app.runtime import Runtime
from app.services import admission, receipts
from app.services.inventory import Inventory
from models import Outbox, Reservation, WebhookEvent
from models.db import utcnow

log = logging.getLogger("tasks.clock")

INTERVAL_SECONDS = 5.0
STALE_SECONDS = 60
THROTTLE_SECONDS = 300
BATCH = 200
THROTTLE_PREFIX = "{shop}:clock:"
RECONCILE_EVERY = 12  # sweeps (about a minute)


@dataclass
class Sweep:
    """How many items one sweep re-enqueued, per kind."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        """Count one re-enqueued item of ``kind``."""
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def __bool__(self) -> bool:
        return any(self.counts.values())


def claim(redis: Any, kind: str, item: str) -> bool:
    """True at most once per THROTTLE_SECONDS for one item, across all clock processes."""
    return bool(redis.set(f"{THROTTLE_PREFIX}{kind}:{item}", "1", nx=True, ex=THROTTLE_SECONDS))


def sweep(runtime: Runtime) -> Sweep:
    """One pass of every repair; returns what it re-enqueued."""
    from tasks.checkout import create_payment_intent
    from tasks.expiry import expire_hold
    from tasks.receipts import send_receipt
    from tasks.webhooks import handle_stripe_event

    redis, done = runtime.redis, Sweep()
    for order_id in admission.pending_older_than(redis, STALE_SECONDS)[:BATCH]:
        if claim(redis, "pending", order_id):
            create_payment_intent.send(order_id)
            done.add("pending")
    for order_id in overdue_orders(redis):
        if claim(redis, "hold", order_id):
            expire_hold.send(order_id)
            done.add("holds")
    cutoff = utcnow() - timedelta(seconds=STALE_SECONDS)
    for outbox_id in receipts.unsent(BATCH):
        row = Outbox.get_by_id(outbox_id)
        if row.created_at < cutoff and claim(redis, "outbox", str(outbox_id)):
            send_receipt.send(outbox_id)
            done.add("receipts")
    stale_events = (
        WebhookEvent.select()
        .where(WebhookEvent.status.in_(["failed", "received"]) & (WebhookEvent.created_at < cutoff))
        .order_by(WebhookEvent.id)
        .limit(BATCH)
    )
    for event in stale_events:
        if claim(redis, "webhook", event.event_id):
            handle_stripe_event.send(event.event_id, event.payload)
            done.add("webhooks")
    return done


def reconcile_events(runtime: Runtime) -> int:
    """Enqueue Stripe events our inbox missed; returns how many."""
    from app.services.reconcile import reconcile
    from tasks.webhooks import handle_stripe_event

    result = reconcile(runtime.redis, runtime.gateway)
    for event in result.missed:
        if claim(runtime.redis, "webhook", event["id"]):
            handle_stripe_event.send(event["id"], event)
    return len(result.missed)


def overdue_orders(redis: Any) -> list[str]:
    """Orders whose hold is past due, from Redis and from the database (the record)."""
    found = {order_id for _, order_id in Inventory(redis).overdue() if order_id}
    held = (
        Reservation.select(Reservation.order)
        .where((Reservation.status == "HELD") & (Reservation.expires_at < utcnow()))
        .limit(BATCH)
        .tuples()
    )
    rows: Any = held  # tuples(): each row is (order_id,)
    found.update(str(row[0]) for row in rows)
    return sorted(found)[:BATCH]


def run(runtime: Runtime, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
    """Sweep every ``interval`` seconds until ``stop`` is set."""
    from models.db import database

    log.info("clock started: sweeping every %.0f s", interval)
    rounds = 0
    while not stop.is_set():
        try:
            with database().connection_context():
                result = sweep(runtime)
                if rounds % RECONCILE_EVERY == 0:
                    result.counts["reconciled"] = reconcile_events(runtime)
            rounds += 1
            if result:
                print(f"clock: re-enqueued {result.counts}", flush=True)
        except Exception:  # a sweep failing (Redis or DB blip) must not stop the clock
            log.exception("clock sweep failed")
        stop.wait(interval)
    log.info("clock stopped")


def main() -> int:
    """Entry point of the ``clock`` process."""
    import tasks  # noqa: F401  (declares the actors on the broker)
    from app.runtime import current
    from models.db import bind_database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runtime = current()
    bind_database(runtime.config.database_url)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(runtime, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
