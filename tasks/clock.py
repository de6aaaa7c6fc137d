"""The scheduler process (``python -m tasks.clock``): repair sweeps every few seconds.

Each sweep re-enqueues work whose message may have been lost: submissions still
pending after 60 s, orders written 60 s ago with no intent yet, holds past their
expiry, receipts not yet sent, webhook events that failed or never finished; it asks
for a check of every manual-capture authorisation within 24 h of ``capture_before``
(warn once) or past it (close the order); and it fans new shop events out to the shop's
endpoints and re-enqueues shop webhook deliveries due for a minute (their message
lost). Every item is re-enqueued at most once per ``THROTTLE_SECONDS`` (a Redis SET NX
key), and every actor is idempotent, so a duplicate costs nothing.
Stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import Counter, Gauge
from redis import Redis

from app import keys
from app.config import load_config
from app.runtime import Runtime, build_runtime, install
from app.services import (
    admission,
    authorizations,
    checkout,
    holds,
    receipts,
    refunds,
    shop_webhooks,
    tax_records,
    webhooks,
)
from app.services.reconcile import reconcile
from models.db import bind_database, database, utcnow

log = logging.getLogger("tasks.clock")

INTERVAL_SECONDS = 5.0
STALE_SECONDS = 60
BATCH = 200
RECONCILE_EVERY = 12  # sweeps (about a minute)

DEAD_WEBHOOKS = Gauge(
    "checkout_webhook_dead_events",
    "Webhook inbox rows marked dead (retries exhausted), as of the clock's last sweep.",
    multiprocess_mode="mostrecent",
)
DEAD_ALERTS = Counter(
    "checkout_webhook_dead_alerts_total", "Clock sweeps that found dead webhook rows."
)


@dataclass
class Sweep:
    """How many items one sweep re-enqueued, per kind."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        """Count one re-enqueued item of ``kind``."""
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def __bool__(self) -> bool:
        return any(self.counts.values())


def claim(redis: Redis, kind: str, item: str) -> bool:
    """True at most once per claim TTL (5 min) for one item, across all clock processes."""
    key = keys.clock_claim(kind, item)
    return bool(redis.set(key, "1", nx=True, ex=keys.CLOCK_CLAIM_TTL_SECONDS))


def sweep(runtime: Runtime) -> Sweep:
    """One pass of every repair; returns what it re-enqueued."""
    redis, jobs, done = runtime.redis, runtime.jobs, Sweep()
    for order_id in admission.pending_older_than(redis, STALE_SECONDS)[:BATCH]:
        if claim(redis, "pending", order_id):
            jobs.create_payment_intent(order_id)
            done.add("pending")
    cutoff = utcnow() - timedelta(seconds=STALE_SECONDS)
    for order_id in checkout.unopened_order_ids(BATCH, older_than=cutoff):
        if claim(redis, "pending", order_id):  # the same work as a stale submission's
            jobs.create_payment_intent(order_id)
            done.add("unopened")
    for order_id in holds.overdue_order_ids(redis, BATCH):
        if claim(redis, "hold", order_id):
            jobs.expire_hold(order_id)
            done.add("holds")
    for order_id in authorizations.due_order_ids(BATCH):
        # Manual capture: warn 24 h before capture_before; close once it has passed.
        if claim(redis, "auth", order_id):
            jobs.check_authorization(order_id)
            done.add("authorizations")
    for outbox_id in receipts.unsent(BATCH, older_than=cutoff):
        if claim(redis, "outbox", str(outbox_id)):
            jobs.send_receipt(outbox_id)
            done.add("receipts")
    for event_id in webhooks.retryable_failed(BATCH, older_than=cutoff):
        if claim(redis, "webhook", event_id):
            jobs.handle_stripe_event(event_id)
            done.add("webhooks")
    endpoints = runtime.config.shop_webhook_endpoints
    for delivery_id in shop_webhooks.sweep(endpoints):
        jobs.deliver_shop_webhook(delivery_id)
        done.add("shop_webhooks")
    for delivery_id in shop_webhooks.stalled(endpoints, older_than=cutoff):
        if claim(redis, "shophook", str(delivery_id)):
            jobs.deliver_shop_webhook(delivery_id)
            done.add("shop_webhooks")
    for refund_id in refunds.unsubmitted(BATCH, older_than=cutoff):
        if claim(redis, "refund", refund_id):
            jobs.create_refund(refund_id)
            done.add("refunds")
    for order_id in tax_records.behind(BATCH, older_than=cutoff):
        if claim(redis, "tax", order_id):
            jobs.sync_tax(order_id)
            done.add("tax")
    alert_dead_letters()
    return done


def alert_dead_letters() -> int:
    """Alert (ERROR log + metrics) on every sweep while dead webhook rows exist."""
    dead = webhooks.dead_count()
    DEAD_WEBHOOKS.set(dead)
    if dead:
        DEAD_ALERTS.inc()
        log.error(
            "%s webhook event(s) are dead (retries exhausted): GET "
            "/api/admin/webhook-events?status=dead, fix the cause, then replay",
            dead,
        )
    return dead


def reconcile_events(runtime: Runtime) -> int:
    """Enqueue Stripe events our inbox missed; returns how many."""
    result = reconcile(runtime.redis, runtime.gateway)
    for event in result.missed:
        if claim(runtime.redis, "webhook", event["id"]):
            webhooks.inbox_row(event["id"], event)  # the message carries the id only
            runtime.jobs.handle_stripe_event(event["id"])
    return len(result.missed)


def run(runtime: Runtime, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
    """Sweep every ``interval`` seconds until ``stop`` is set."""
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
    """Entry point of the ``clock`` process: builds its runtime (and so its broker) once."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runtime = install(build_runtime(load_config(require_secrets=True)))
    bind_database(runtime.config.database_url)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(runtime, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
