"""Benchmark (``make bench``): holds per second of hold.lua and admit.lua on the real Redis.

One client, sequential calls (one round trip each) and pipelined batches (the scripts'
own cost). Prints a table; asserts only that every call did its work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from app import keys, lua
from app.services.admission import Submission, admit
from app.services.inventory import Inventory
from tests.services.test_admission import make_body

pytestmark = [pytest.mark.bench, pytest.mark.realredis]

CALLS = 5000
BATCH = 100


def _rate(calls: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return calls / (time.perf_counter() - start)


def _evalsha_usec(client: Any) -> tuple[int, int]:
    """Server-side EVALSHA totals (calls, microseconds) from INFO commandstats."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _hold_sequential(client: Any) -> None:
    inv = Inventory(client)
    for n in range(CALLS):
        inv.hold(f"seq-{n}", [("A", 1), ("B", 1)], 900)


def _hold_pipelined(client: Any) -> None:
    expires = int(time.time()) + 900
    for start in range(0, CALLS, BATCH):
        pipe = client.pipeline(transaction=False)
        for n in range(start, start + BATCH):
            rid = f"pipe-{n}"
            lua.script("hold")(
                keys=[keys.AVAIL, keys.reservation(rid), keys.HOLDS],
                args=[rid, "", expires, keys.RESERVATION_KEEP_SECONDS, "A", 1, "B", 1],
                client=pipe,
            )
        pipe.execute()


def _admit_sequential(client: Any) -> None:
    body = make_body(("A", 1), ("B", 1))
    for n in range(CALLS):
        sub = Submission.create(body, idempotency_key=f"bench-key-{n:06d}", hold_ttl=900)
        admit(client, sub, hold_ttl=900, key_ttl=86400)


class TestHoldThroughput:
    def test_print_holds_per_second(self, real_redis: Any) -> None:
        lua.preload(real_redis)
        rows = []
        for name, run in (
            ("hold.lua, sequential", _hold_sequential),
            ("hold.lua, pipelined x100", _hold_pipelined),
            ("admit.lua, sequential", _admit_sequential),
        ):
            real_redis.flushdb()
            real_redis.hset(keys.AVAIL, mapping={"A": CALLS, "B": CALLS})
            calls_before, usec_before = _evalsha_usec(real_redis)
            rate = _rate(CALLS, lambda run=run: run(real_redis))  # type: ignore[misc]
            calls_after, usec_after = _evalsha_usec(real_redis)
            assert Inventory(real_redis).available() == {"A": 0, "B": 0}
            assert real_redis.zcard(keys.HOLDS) == CALLS
            # Other clients of a shared server may add a few calls: an estimate, not a test.
            per_call = (usec_after - usec_before) / max(calls_after - calls_before, 1)
            rows.append((name, rate, per_call))
        print(f"\n{'script (2-line cart, one client)':<36}{'holds/s':>10}{'server us/call':>16}")
        for name, rate, per_call in rows:
            print(f"{name:<36}{rate:>10,.0f}{per_call:>16.1f}")
