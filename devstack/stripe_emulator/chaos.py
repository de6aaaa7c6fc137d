"""Chaos settings: rate limits, random 500s, latency, and webhook misbehaviour.

Everything defaults to off. ``rateLimitPerSecond`` 25 mimics Stripe's test mode.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

# JSON names used by the control endpoint, mapped to the attribute names.
JSON_NAMES = {
    "rateLimitPerSecond": "rate_limit_per_second",
    "failureRate": "failure_rate",
    "latencyMs": "latency_ms",
    "duplicateRate": "duplicate_rate",
    "reorderRate": "reorder_rate",
    "deliveryDelayMs": "delivery_delay_ms",
    "seed": "seed",
}


@dataclass
class ChaosConfig:
    """What to break, and how often (rates are shares between 0 and 1)."""

    rate_limit_per_second: float = 0.0  # 0 = unlimited
    failure_rate: float = 0.0  # share of /v1 requests answered with a 500 api_error
    latency_ms: int = 0  # added to every /v1 request
    duplicate_rate: float = 0.0  # share of webhook events delivered twice
    reorder_rate: float = 0.0  # share of webhook events held back behind later ones
    delivery_delay_ms: int = 0  # added before every first webhook attempt
    seed: int | None = None  # makes the random choices repeatable

    def to_json(self) -> dict[str, Any]:
        """The camelCase form the control endpoint speaks."""
        values = asdict(self)
        return {json_name: values[attr] for json_name, attr in JSON_NAMES.items()}


class Chaos:
    """The live chaos settings plus the rate limiter's state."""

    def __init__(self, config: ChaosConfig | None = None) -> None:
        self._initial = config or ChaosConfig()
        self.config = ChaosConfig(**asdict(self._initial))
        self._lock = threading.Lock()
        self._window = 0
        self._count = 0
        # Requests per wall-clock second, [answered, rate limited], the last hour's.
        self.per_second: dict[int, list[int]] = {}
        self.random = random.Random(self.config.seed)

    def update(self, changes: dict[str, Any]) -> ChaosConfig:
        """Apply camelCase changes from the control endpoint; raises ValueError on bad input."""
        unknown = set(changes) - set(JSON_NAMES)
        if unknown:
            raise ValueError(f"unknown chaos settings: {', '.join(sorted(unknown))}")
        kinds = {f.name: f.type for f in fields(ChaosConfig)}
        with self._lock:
            for json_name, value in changes.items():
                attr = JSON_NAMES[json_name]
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    raise ValueError(f"{json_name} must be a number")
                if value is not None and value < 0:
                    raise ValueError(f"{json_name} must not be negative")
                if attr.endswith("_rate") and value is not None and value > 1:
                    raise ValueError(f"{json_name} is a share between 0 and 1")
                if "int" in str(kinds[attr]) and value is not None:
                    value = int(value)
                setattr(self.config, attr, value if value is not None or attr == "seed" else 0)
            if "seed" in changes:
                self.random = random.Random(self.config.seed)
        return self.config

    def reset(self) -> None:
        """Back to the settings the emulator started with."""
        with self._lock:
            self.config = ChaosConfig(**asdict(self._initial))
            self.random = random.Random(self.config.seed)
            self._window = self._count = 0
            self.per_second.clear()

    def over_rate_limit(self) -> bool:
        """Count one request; True when this second's budget is spent."""
        limit = self.config.rate_limit_per_second
        with self._lock:
            # A fixed one-second window, like Stripe's per-second limiter as clients see it.
            window = int(time.time())
            if window != self._window:
                self._window, self._count = window, 0
            self._count += 1
            refused = bool(limit) and self._count > limit
            tally = self.per_second.setdefault(window, [0, 0])
            tally[1 if refused else 0] += 1
            if len(self.per_second) > 3600:
                del self.per_second[min(self.per_second)]
            return refused

    def request_log(self) -> dict[str, Any]:
        """Requests per second as the limiter counted them (answered and refused)."""
        with self._lock:
            seconds = sorted(self.per_second.items())
        return {
            "rateLimitPerSecond": self.config.rate_limit_per_second,
            "seconds": [
                {"second": second, "answered": answered, "rateLimited": limited}
                for second, (answered, limited) in seconds
            ],
        }

    def chance(self, rate: float) -> bool:
        """True with probability ``rate``."""
        if rate <= 0:
            return False
        with self._lock:
            return self.random.random() < rate

    def uniform(self, low: float, high: float) -> float:
        """A random float in [low, high]."""
        with self._lock:
            return self.random.uniform(low, high)
