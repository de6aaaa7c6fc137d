"""A token bucket in Redis shared by every worker, keeping the fleet under Stripe's
account-wide request rate (``config.stripe_requests_per_second``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis

from app import keys, lua
from app.errors import PaymentProviderError


class TokenBucket:
    """Blocks a caller until a token is free; gives up after ``max_wait`` seconds."""

    def __init__(
        self,
        redis: Redis,
        rate: float,
        *,
        capacity: int | None = None,
        key: str = keys.STRIPE_BUCKET,
        max_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = redis
        self.rate = rate
        self.capacity = capacity or max(1, int(rate))
        self.key = key
        self.max_wait = max_wait
        self.sleep = sleep

    def try_acquire(self) -> int:
        """Take a token if one is free; return 0, else the milliseconds to wait."""
        return int(lua.run(self.redis, "token_bucket", [self.key], [self.rate, self.capacity]))

    def acquire(self) -> None:
        """Wait for a token; raise a retryable PaymentProviderError after ``max_wait``."""
        waited = 0.0
        while True:
            wait_ms = self.try_acquire()
            if wait_ms == 0:
                return
            if waited + wait_ms / 1000 > self.max_wait:
                raise PaymentProviderError(
                    "Local Stripe rate budget exhausted.",
                    retryable=True,
                    provider_code="rate_limit",
                )
            self.sleep(wait_ms / 1000)
            waited += wait_ms / 1000
