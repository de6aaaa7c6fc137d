"""Holds per second of the Lua scripts on the real Redis, from one client: sequential
calls (one round trip each) and the admission script as the submit path runs it."""

from __future__ import annotations

import time
from typing import Any

import redis as redis_lib

from app import keys, lua
from app.services.admission import Submission, admit
from app.services.inventory import Inventory

CALLS = 5000
BODY = {
    "items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}],
    "email": "bench@example.com",
    "shippingAddress": {"name": "Bench", "line1": "1 Main St", "city": "Austin",
                        "state": "TX", "postalCode": "73301", "country": "US"},
}  # fmt: skip


def _fresh(client: Any) -> None:
    client.flushdb()
    client.hset(keys.AVAIL, mapping={"A": CALLS, "B": CALLS})
    lua.preload(client)


def holds_per_second(redis_url: str) -> dict[str, float]:
    """``hold.lua`` and ``admit.lua`` calls per second for a two-line cart."""
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    rates: dict[str, float] = {}
    _fresh(client)
    inventory = Inventory(client)
    started = time.perf_counter()
    for n in range(CALLS):
        inventory.hold(f"seq-{n}", [("A", 1), ("B", 1)], 900)
    rates["hold.lua"] = CALLS / (time.perf_counter() - started)
    _fresh(client)
    submissions = [
        Submission.create(BODY, idempotency_key=f"bench-key-{n:06d}", hold_ttl=900)
        for n in range(CALLS)
    ]
    started = time.perf_counter()
    for submission in submissions:
        admit(client, submission, hold_ttl=900, key_ttl=86400)
    rates["admit.lua"] = CALLS / (time.perf_counter() - started)
    if Inventory(client).available() != {"A": 0, "B": 0}:
        raise RuntimeError("the Lua benchmark did not hold every unit")
    client.flushdb()
    client.close()
    return rates
