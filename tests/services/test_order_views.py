"""The checkout status body's queue estimate while the intent is being created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app import keys
from app.gateways.rate_limit import StripeBudget
from app.services import order_views
from app.services.checkout_status import ChangeFeed, WaiterCaps, publish
from app.services.order_views import queue_estimate
from devstack.perf import counting


@pytest.fixture
def round_trips(real_redis: Any) -> Iterator[list[None]]:
    """One entry per Redis round trip from here on (the cost bench's own count)."""
    sent: list[None] = []
    uninstall = counting.install(
        statement=lambda: None, transaction=lambda: None, round_trip=lambda: sent.append(None)
    )
    yield sent
    uninstall()


@pytest.mark.realredis
class TestQueueEstimate:
    def test_position_and_eta_in_one_round_trip(
        self, real_redis: Any, round_trips: list[None]
    ) -> None:
        real_redis.zadd(keys.PENDING, {"o1": 1, "o2": 2, "o3": 3})
        # Warm: the script known to the server, the pool's connection open.
        queue_estimate(real_redis, "o1", StripeBudget(real_redis, 2))
        round_trips.clear()
        assert queue_estimate(real_redis, "o3", StripeBudget(real_redis, 2)) == {
            "position": 2,
            "etaSeconds": 2,  # three buyers at 2 intents a second
        }
        assert len(round_trips) == 1

    def test_the_budget_in_force_sets_the_eta(self, real_redis: Any) -> None:
        real_redis.zadd(keys.PENDING, {f"o{n}": n for n in range(10)})
        budget = StripeBudget(real_redis, 20, clock=lambda: 1000.0)
        assert budget.current() == 20
        real_redis.hset(keys.STRIPE_BUDGET, mapping={"rate": "5", "ts": "1000000"})
        assert queue_estimate(real_redis, "o9", budget) == {"position": 9, "etaSeconds": 2}

    def test_an_order_no_longer_queued_is_at_the_front(self, real_redis: Any) -> None:
        estimate = queue_estimate(real_redis, "gone", StripeBudget(real_redis, 23))
        assert estimate == {"position": 0, "etaSeconds": 1}

    def test_without_a_budget_no_eta(self, real_redis: Any) -> None:
        real_redis.zadd(keys.PENDING, {"o1": 1, "o2": 2})
        assert queue_estimate(real_redis, "o2", None) == {"position": 1, "etaSeconds": 0}


@pytest.mark.realredis
class TestPlainStatus:
    """A status read that does not wait: the read model and the queue estimate together."""

    def _status(self, redis: Any, order_id: str, **kwargs: Any) -> dict[str, Any]:
        waiting = order_views.Waiting(ChangeFeed(redis), WaiterCaps(5, 5, 5), "1.1.1.1")
        return order_views.checkout_status_body(
            redis, order_id, authorize=lambda token, user: f"token:{token}", waiting=waiting,
            budget=StripeBudget(redis, 2), **kwargs,
        )  # fmt: skip

    def test_while_creating_one_round_trip_reads_the_model_and_the_estimate(
        self, real_redis: Any, round_trips: list[None]
    ) -> None:
        real_redis.zadd(keys.PENDING, {"o1": 1, "o2": 2, "o3": 3})
        publish(real_redis, "o3", tokenHash="h", state="PENDING")
        self._status(real_redis, "o3", wait=0, since=None)  # warm: scripts, the connection
        round_trips.clear()
        body = self._status(real_redis, "o3", wait=25, since=0)
        assert body["queue"] == {"position": 2, "etaSeconds": 2}
        assert body["payment"]["status"] == "creating"
        assert len(round_trips) == 1

    def test_once_created_no_queue_shows(self, real_redis: Any) -> None:
        real_redis.zadd(keys.PENDING, {"o1": 1})
        publish(real_redis, "o1", tokenHash="h", paymentStatus="requires_payment_method")
        body = self._status(real_redis, "o1", wait=0, since=None)
        assert "queue" not in body and body["payment"]["status"] == "requires_payment_method"
