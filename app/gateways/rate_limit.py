"""The fleet's Stripe request budget, shared by every worker through Redis.

Stripe limits an account per second (test mode 25, live mode 100). The budget is a
sliding one-second window (``stripe_budget.lua``): no span of 1,000 ms ever holds more
grants than the budget, so a fixed-window limiter at Stripe never sees a burst. A 429
sets the whole fleet's budget to half of what the last second used (at most once a
second) and quiet seconds grow it back by a tenth of the ceiling each: additive increase,
multiplicative decrease. A caller that finds the window full reserves the next grant it
has room for and sleeps until then: callers queue in order, one round trip each.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from redis import Redis

from app import keys, lua
from app.errors import PaymentProviderError

BUDGET_WAITS = Counter(
    "checkout_stripe_budget_waits_total", "Stripe calls that waited for room in the budget."
)


SCRIPT = "stripe_budget"


class StripeBudget:
    """Blocks a caller until the shared window has room; gives up after ``max_wait``."""

    def __init__(
        self,
        redis: Redis,
        per_second: int,
        *,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = redis
        self.per_second = max(1, int(per_second))
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    def _run(self, mode: str, member: str = "", *extra: Any) -> int:
        return int(lua.run(self.redis, SCRIPT, *self._call(mode, member, *extra)))

    def _call(self, mode: str, member: str = "", *extra: Any) -> tuple[list[str], list[Any]]:
        """The keys and arguments of ``stripe_budget.lua`` in ``mode``, now."""
        now_ms = int(self.clock() * 1000)
        args = [now_ms, self.per_second, mode, member, *extra]
        return [keys.STRIPE_WINDOW, keys.STRIPE_BUDGET], args

    def peek_call(self) -> tuple[str, list[str], list[Any]]:
        """:meth:`current` as a script name, keys and arguments, for a caller that sends
        it beside other commands in one round trip (``lua.run_beside``)."""
        return (SCRIPT, *self._call("peek"))

    def try_acquire(self) -> int:
        """Take a grant if the window has room now: 0, else the milliseconds to wait."""
        return self._run("acquire", uuid.uuid4().hex)

    def reserve(self, max_wait: float) -> float | None:
        """Reserve the next grant the window has room for: the seconds until it (0: now),
        or None when it is more than ``max_wait`` seconds away (nothing reserved)."""
        wait_ms = self._run("reserve", uuid.uuid4().hex, int(max_wait * 1000))
        return None if wait_ms < 0 else wait_ms / 1000

    def acquire(self) -> None:
        """Wait for a grant, reserved in one round trip; raise a retryable
        PaymentProviderError when none is to be had within ``max_wait``.

        Waiting callers queue in the window in the order they asked: each asks once and
        sleeps until its turn (they used to ask again when room came, all of them, for
        one slot: about three more round trips per Stripe call with the budget full).
        """
        wait = self.reserve(self.max_wait)
        if wait is None:
            raise PaymentProviderError(
                "Local Stripe rate budget exhausted.",
                retryable=True,
                provider_code="rate_limit",
            )
        if wait > 0:
            BUDGET_WAITS.inc()
            self.sleep(wait)

    def penalize(self) -> int:
        """Stripe answered 429: halve what the fleet used; returns the new budget."""
        return self._run("penalize")

    def current(self) -> int:
        """The budget in force, grants per second."""
        return self._run("peek")

    def in_use(self) -> int:
        """Grants of the last second (the window's members younger than 1,000 ms; not
        those reserved ahead)."""
        now_ms = int(self.clock() * 1000)
        return int(self.redis.zcount(keys.STRIPE_WINDOW, f"({now_ms - 1000}", now_ms))
