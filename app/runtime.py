"""The process-wide wiring: configuration, the Redis client and the outside adapters.

Each entry point builds one :class:`Runtime` — the web app (``wsgi.py`` through
``create_app``), the worker (``tasks.worker``) and the clock (``tasks.clock``) — and
installs it; services receive its parts as arguments and never reach for globals.
Tests install a runtime built on fakeredis, the fake gateway and a recording queue.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis

from app.config import Config
from app.gateways.jobs import DramatiqJobs, Jobs, redis_broker
from app.gateways.mail import Mailer, mailer_from_url
from app.gateways.payments import PaymentGateway, StripeGateway
from app.gateways.rate_limit import StripeBudget
from app.gateways.redis_client import connection_pool
from app.gateways.shop_webhooks import RequestsShopWebhookSender, ShopWebhookSender
from app.services.checkout_status import ChangeFeed


@dataclass
class Runtime:
    """Everything a request or a message needs from the outside world."""

    config: Config
    redis: redis.Redis
    gateway: PaymentGateway
    mailer: Mailer
    jobs: Jobs
    # Signed POSTs to the shop's own backend (shop webhooks).
    shop_hooks: ShopWebhookSender = field(default_factory=RequestsShopWebhookSender)
    # The process's one subscription to read-model changes (long-polls wait on it).
    feed: ChangeFeed = field(init=False)

    def __post_init__(self) -> None:
        self.feed = ChangeFeed(self.redis)


_lock = threading.Lock()
_current: Runtime | None = None


# How long a web request waits for room in the fleet's Stripe budget (a worker: 30 s). The
# web asks Stripe only for a buyer's saved cards; when the workers use the whole budget,
# a prompt 503 beats holding the request.
WEB_STRIPE_WAIT_SECONDS = 2.0
WORKER_STRIPE_WAIT_SECONDS = 30.0


def build_runtime(
    config: Config, jobs: Jobs | None = None, *, stripe_wait: float = WORKER_STRIPE_WAIT_SECONDS
) -> Runtime:
    """Construct the real adapters for ``config`` (no connection is opened yet).

    ``jobs`` defaults to Dramatiq messages on a Redis broker at ``config``'s Redis;
    the worker passes the broker it consumes from. ``stripe_wait``: how long a Stripe call
    waits for room in the fleet's budget (the web passes WEB_STRIPE_WAIT_SECONDS).
    """
    # A bounded pool that queues a caller for a free connection instead of failing: a
    # gevent web process may run hundreds of requests at once.
    pool = connection_pool(
        config,
        max_connections=config.redis_max_connections,
        decode_responses=True,
        health_check_interval=30,
    )
    client = redis.Redis(connection_pool=pool)
    gateway = StripeGateway(
        api_key=config.stripe_secret_key,
        api_base=config.stripe_api_base,
        webhook_secrets=config.stripe_webhook_secrets,
        webhook_tolerance=config.webhook_tolerance_seconds,
        budget=StripeBudget(
            client,
            config.stripe_budget,
            max_wait=stripe_wait,
        ),
    )
    if jobs is None:
        # This process only sends: the workers run the broker's maintenance.
        broker = redis_broker(config, maintenance_chance=0)
        jobs = DramatiqJobs(broker)
    return Runtime(
        config=config,
        redis=client,
        gateway=gateway,
        mailer=mailer_from_url(config),
        jobs=jobs,
    )


def install(runtime: Runtime) -> Runtime:
    """Make ``runtime`` the current one for this process."""
    global _current
    with _lock:
        _current = runtime
    return runtime


def uninstall() -> None:
    """Forget the current runtime (tests restore the state they found)."""
    global _current
    with _lock:
        _current = None


def current() -> Runtime:
    """The runtime this process's entry point installed."""
    with _lock:
        if _current is None:
            raise RuntimeError("no runtime installed: build one with build_runtime() first")
        return _current
