"""The per-order lock of the actors (app/services/records.order_lock)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from app import keys
from app.services.records import order_lock


class TestOrderLock:
    def test_held_past_its_ttl_while_the_actor_runs(self, any_redis: Any) -> None:
        """The renewer keeps a short TTL alive for as long as the actor holds the lock."""
        key = keys.order_lock("o-1")
        with order_lock(any_redis, "o-1", ttl=0.3):
            time.sleep(0.9)  # three TTLs
            assert any_redis.exists(key)
            # What a killed worker leaves behind lapses within the TTL.
            assert 0 < any_redis.pttl(key) <= 300
        assert not any_redis.exists(key)

    def test_a_second_actor_waits_for_the_first(self, any_redis: Any) -> None:
        order: list[str] = []

        def second() -> None:
            with order_lock(any_redis, "o-3", ttl=0.3):
                order.append("second")

        with order_lock(any_redis, "o-3", ttl=0.3):
            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.5)  # past the TTL: only the renewal keeps the second one out
            order.append("first")
        thread.join(5)
        assert order == ["first", "second"]

    def test_a_lost_lock_stops_the_renewer_and_the_actor_finishes(
        self, any_redis: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        with order_lock(any_redis, "o-4", ttl=0.3):
            any_redis.delete(keys.order_lock("o-4"))  # a flush while held
            time.sleep(0.3)
        assert "lost while held" in caplog.text
