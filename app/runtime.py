"""The process-wide wiring: configuration, the Redis client and the outside adapters.

The web app (``create_app``) and the worker (``tasks.broker``) each install one
:class:`Runtime`; services receive its parts as arguments and never reach for globals.
Tests install a runtime built on fakeredis and the fake gateway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from app.config import Config, load_config

if TYPE_CHECKING:
    from app.gateways.mail import Mailer
    from app.gateways.payments import PaymentGateway


@dataclass
class Runtime:
    """Everything a request or a message needs from the outside world."""

    config: Config
    redis: redis.Redis
    gateway: PaymentGateway
    mailer: Mailer


_lock = threading.Lock()
_current: Runtime | None = None


def build_runtime(config: Config) -> Runtime:
    """Construct the real adapters for ``config`` (no connection is opened yet)."""
    from app.gateways.mail import mailer_from_url
    from app.gateways.payments import StripeGateway
    from app.gateways.rate_limit import TokenBucket

    client = redis.Redis.from_url(config.redis_url, decode_responses=True, health_check_interval=30)
    gateway = StripeGateway(
        api_key=config.stripe_secret_key,
        api_base=config.stripe_api_base,
        webhook_secrets=config.stripe_webhook_secrets,
        webhook_tolerance=config.webhook_tolerance_seconds,
        rate_limiter=TokenBucket(client, config.stripe_requests_per_second),
    )
    return Runtime(config=config, redis=client, gateway=gateway, mailer=mailer_from_url(config))


def install(runtime: Runtime) -> Runtime:
    """Make ``runtime`` the current one for this process."""
    global _current
    with _lock:
        _current = runtime
    return runtime


def current() -> Runtime:
    """The installed runtime; builds one from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = build_runtime(load_config())
        return _current
