"""app/services/stock_adjustments.py: "+/- N with a reason" moves the database's stock
on hand and the Redis counter together, never below what is held, once per key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from app.errors import IdempotencyKeyReused, InsufficientStock, InvalidRequest, NotFound
from app.services.inventory import Inventory, rebuild_from_db
from app.services.stock_adjustments import AdjustmentRequest, adjust_stock, history
from models import Product, StockAdjustment
from models.db import close_database
from tests.fakes import stock

ACTOR = "operator:admin@shop.example"


def adjust(redis: Any, delta: int, key: str, reason: str = "received", note: str = "") -> Any:
    return adjust_stock(
        redis, AdjustmentRequest("TEE", delta, reason, note), actor=ACTOR, idempotency_key=key
    )


def numbers(redis: Any, sku: str = "TEE") -> tuple[int, int | None]:
    """(database on hand, the Redis counter wherever it lives)."""
    return Product.get_by_id(sku).stock_on_hand, Inventory(redis).counters([sku]).get(sku)


class TestDelta:
    def test_a_positive_delta_moves_database_and_redis_and_is_recorded(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        result = adjust(runtime.redis, 12, "key-received-1", note="PO 1182")
        assert numbers(runtime.redis) == (17, 17)
        assert result.replayed is False
        assert result.adjustment | {"id": 0, "createdAt": ""} == {
            "id": 0, "sku": "TEE", "delta": 12, "reason": "received", "note": "PO 1182",
            "actor": ACTOR, "onHandAfter": 17, "createdAt": "",
        }  # fmt: skip

    def test_a_negative_delta_keeps_the_units_held(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        Inventory(runtime.redis).hold("res-1", [("TEE", 3)], ttl_seconds=900)
        adjust(runtime.redis, -2, "key-damaged-1", reason="damaged")
        assert numbers(runtime.redis) == (3, 0)  # 3 on hand, all 3 held

    def test_taking_more_than_is_free_is_refused_and_changes_nothing(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        Inventory(runtime.redis).hold("res-1", [("TEE", 3)], ttl_seconds=900)
        with pytest.raises(InsufficientStock) as refused:
            adjust(runtime.redis, -3, "key-damaged-2", reason="damaged")
        assert refused.value.code == "insufficient_stock"
        assert refused.value.status == 409
        assert refused.value.message.startswith("TEE cannot drop by 3: only 2 units are free")
        assert numbers(runtime.redis) == (5, 2)
        assert StockAdjustment.select().count() == 0

    def test_an_inactive_products_parked_counter_moves(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        Product.update(active=False).execute()
        runtime.redis.hdel("{shop}:avail", "TEE")
        runtime.redis.hset("{shop}:avail:inactive", "TEE", 5)
        adjust(runtime.redis, -4, "key-recount-1", reason="recount")
        assert runtime.redis.hget("{shop}:avail:inactive", "TEE") == "1"
        assert runtime.redis.hget("{shop}:avail", "TEE") is None  # still not sold

    def test_the_rebuild_finds_the_same_numbers(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        Inventory(runtime.redis).hold("res-1", [("TEE", 1)], ttl_seconds=900)
        adjust(runtime.redis, 7, "key-a-0001")
        adjust(runtime.redis, -4, "key-b-0001", reason="damaged")
        before = runtime.redis.hget("{shop}:avail", "TEE")
        runtime.redis.delete("{shop}:avail")  # Redis lost the counter (I9)
        rebuild_from_db(runtime.redis)
        assert runtime.redis.hget("{shop}:avail", "TEE") == before == "7"

    def test_history_is_newest_first_with_actor_and_reason(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        adjust(runtime.redis, 2, "key-a-0002")
        adjust(runtime.redis, -1, "key-b-0002", reason="other", note="sample for a show")
        rows = history("TEE")
        assert [(r["delta"], r["reason"], r["onHandAfter"]) for r in rows] == [
            (-1, "other", 6),
            (2, "received", 7),
        ]
        assert {r["actor"] for r in rows} == {ACTOR}


class TestIdempotency:
    def test_the_same_key_adjusts_once(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        first = adjust(runtime.redis, 3, "key-twice-01")
        again = adjust(runtime.redis, 3, "key-twice-01")
        assert again.replayed is True
        assert again.adjustment == first.adjustment
        assert numbers(runtime.redis) == (8, 8)
        assert StockAdjustment.select().count() == 1

    def test_the_same_key_for_another_adjustment_is_refused(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        adjust(runtime.redis, 3, "key-twice-02")
        with pytest.raises(IdempotencyKeyReused):
            adjust(runtime.redis, 4, "key-twice-02")
        assert numbers(runtime.redis) == (8, 8)


class TestBadInput:
    @pytest.mark.parametrize(
        ("delta", "reason", "note", "field"),
        [
            (0, "received", "", "delta"),
            (10_000_001, "received", "", "delta"),
            (1, "stolen", "", "reason"),
            (1, "other", "  ", "note"),
            (1, "received", "x" * 201, "note"),
        ],
    )
    def test_fields_are_named(
        self, runtime: Any, delta: int, reason: str, note: str, field: str
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        with pytest.raises(InvalidRequest) as refused:
            adjust(runtime.redis, delta, "key-bad-0001", reason=reason, note=note)
        assert field in refused.value.extra["fields"]
        assert numbers(runtime.redis) == (5, 5)

    def test_an_unknown_product(self, runtime: Any) -> None:
        with pytest.raises(NotFound):
            adjust(runtime.redis, 1, "key-unknown-1")


def run_concurrently(target: Callable[[int], Any], count: int) -> list[Any]:
    """``target(i)`` in ``count`` threads at once: each result or the exception raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:  # the caller's assertions read it
            results[i] = exc
        finally:
            close_database()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.realredis
class TestConcurrencyOnRealServers:
    """Many admins at once on PostgreSQL (row locks) and the real Redis (the script)."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def redis(self, real_redis: Any) -> Any:
        return real_redis

    def test_removals_never_take_more_than_is_free(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=10)
        Inventory(runtime.redis).hold("res-1", [("TEE", 4)], ttl_seconds=900)
        results = run_concurrently(lambda i: adjust(runtime.redis, -1, f"key-take-{i:03d}"), 12)
        applied = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(applied) == 6
        assert all(isinstance(r, InsufficientStock) for r in refused)
        assert numbers(runtime.redis) == (4, 0)  # the 4 held stay held
        assert StockAdjustment.select().count() == 6

    def test_one_key_sent_at_once_adjusts_once(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=10)
        results = run_concurrently(lambda i: adjust(runtime.redis, 5, "key-same-0001"), 6)
        assert not [r for r in results if isinstance(r, Exception)]
        assert sorted(r.replayed for r in results) == [False] + [True] * 5
        assert numbers(runtime.redis) == (15, 15)
