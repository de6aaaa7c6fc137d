"""Actor: post one shop event to one endpoint of the shop's backend."""

from __future__ import annotations

from app.runtime import current
from app.services import shop_webhooks


def deliver_shop_webhook(delivery_id: int) -> None:
    """Deliver if it is its endpoint's due head; schedule the retry or the next event."""
    runtime = current()
    attempt = shop_webhooks.deliver(delivery_id, runtime)
    if attempt.retry_at is not None:
        runtime.jobs.deliver_shop_webhook(delivery_id, at=attempt.retry_at)
    for following in attempt.follow:
        runtime.jobs.deliver_shop_webhook(following)
