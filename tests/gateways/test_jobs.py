"""app/gateways/jobs.py: the queue depths the console's dashboard shows, read where
Dramatiq's own Redis broker keeps its messages (its scripts run on fakeredis)."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
from dramatiq.brokers.redis import RedisBroker

from app.gateways.jobs import DramatiqJobs, queue_depths
from models.db import utcnow


def test_queue_depths_count_waiting_and_delayed_messages() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    broker = RedisBroker(client=client, maintenance_chance=0)
    jobs = DramatiqJobs(broker)
    assert queue_depths(client) == {"default": 0, "holds": 0, "shop_webhooks": 0}
    jobs.create_payment_intent("order-1")
    jobs.send_receipt(7)
    jobs.expire_hold("order-1", at=utcnow() + timedelta(minutes=15))  # a delayed message
    jobs.deliver_shop_webhook(3)
    assert queue_depths(client) == {"default": 2, "holds": 1, "shop_webhooks": 1}
