"""A worker killed mid-message loses nothing: the Redis broker redelivers its messages."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

pytestmark = pytest.mark.realredis


def broker_on(url: str, heartbeat_ms: int) -> RedisBroker:
    """A Redis broker whose every command runs maintenance (requeues dead workers' work)."""
    broker = RedisBroker(
        url=url, heartbeat_timeout=heartbeat_ms, maintenance_chance=1_000_000, namespace="redeliv"
    )
    broker.declare_queue("default")
    return broker


class TestRedelivery:
    def test_unacked_message_of_a_dead_worker_is_delivered_again(
        self, real_redis_url: str, real_redis: Any
    ) -> None:
        killed = broker_on(real_redis_url, heartbeat_ms=500)
        killed.enqueue(dramatiq.Message("default", "noop", (), {}, {}))
        consumer = killed.consume("default", prefetch=1, timeout=1000)
        taken = next(consumer)
        assert taken is not None  # the worker holds it... and dies without acking
        survivor = broker_on(real_redis_url, heartbeat_ms=500)
        again = survivor.consume("default", prefetch=1, timeout=200)
        redelivered = None
        deadline = time.monotonic() + 10
        while redelivered is None and time.monotonic() < deadline:
            redelivered = next(again)
        assert redelivered is not None
        assert redelivered.message_id == taken.message_id
        again.ack(redelivered)
        again.close()
        survivor.close()
