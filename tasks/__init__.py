"""Dramatiq actors: thin, taking ids, each calling one service.

Importing this package declares nothing: the worker's entry point (``tasks.worker``)
builds the broker and calls :func:`declare_actors`. Each actor is named after its
function and runs on the queue ``app.gateways.jobs.QUEUES`` gives it, so that web and
clock processes can send to it by name through ``runtime.jobs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from app.gateways.jobs import QUEUES
from app.services.webhooks import RETRIES as WEBHOOK_RETRIES
from tasks import (
    checkout,
    disputes,
    expiry,
    orders,
    payments,
    receipts,
    shop_webhooks,
    tax,
    webhooks,
)
from tasks.broker import retry_policy

# Every actor with its retry limit (the limit lives in the retry_when predicate, which
# Dramatiq lets take precedence over max_retries).
ACTORS: tuple[tuple[Callable[..., None], int], ...] = (
    (checkout.create_payment_intent, 20),
    (webhooks.handle_stripe_event, WEBHOOK_RETRIES),
    (expiry.expire_hold, 50),
    (receipts.send_receipt, 10),
    (orders.cancel_order, 20),
    (orders.create_refund, 20),
    (payments.confirm_payment, 20),
    (payments.capture_payment, 20),
    (payments.check_authorization, 20),
    # Refusals are retried by the service (3 days of back-off); these retries are for
    # our own faults (database, Redis).
    (shop_webhooks.deliver_shop_webhook, 10),
    (disputes.stage_dispute_evidence, 20),
    (tax.sync_tax, 20),
)


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every actor on ``broker``; returns them by name."""
    declared = {}
    for fn, retries in ACTORS:
        name = fn.__name__
        declared[name] = dramatiq.Actor(
            fn,
            broker=broker,
            actor_name=name,
            queue_name=QUEUES[name],
            priority=0,
            options={"retry_when": retry_policy(retries)},
        )
    return declared
