"""The Dramatiq broker, chosen from the environment, and the worker middleware.

``DRAMATIQ_BROKER=stub`` gives a :class:`StubBroker` (tests); otherwise a
:class:`RedisBroker` on ``REDIS_URL``, tuned so that a killed worker's messages are
redelivered within 90 s: its heartbeat goes stale after 30 s and every worker runs
queue maintenance (which requeues a dead worker's unacked messages) on about one
command in ten, i.e. about every second. ``from tasks.broker import broker`` is the
one broker of the process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, Retries

from app.errors import PaymentProviderError, ServiceError

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_MS = 30_000
MAINTENANCE_CHANCE = 100_000  # out of 1,000,000 commands
DEAD_MESSAGE_TTL_MS = 7 * 24 * 3600 * 1000
MAX_RETRIES = 20
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 5 * 60 * 1000


def retry_policy(max_retries: int = MAX_RETRIES) -> Callable[[int, BaseException], bool]:
    """A ``retry_when`` predicate: transient failures up to ``max_retries``, permanent never.

    Dramatiq lets ``retry_when`` take precedence over ``max_retries``, so actors that
    need another limit pass ``retry_when=retry_policy(N)`` rather than ``max_retries``.
    """

    def should_retry(retries: int, exc: BaseException) -> bool:
        if retries >= max_retries:
            return False
        if isinstance(exc, PaymentProviderError):
            return exc.retryable
        # Other domain errors (not found, invalid state, bad input) will not heal by waiting.
        return not (isinstance(exc, ServiceError) and exc.status < 500)

    return should_retry


should_retry = retry_policy()


class DatabaseMiddleware(Middleware):
    """Installs the runtime in worker processes; one DB connection per message."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """In a real worker process: build the runtime and bind the database."""
        from app.config import load_config
        from app.runtime import build_runtime, install
        from models.db import bind_database

        config = load_config()
        install(build_runtime(config))
        bind_database(config.database_url)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Open this thread's connection (the database must already be bound)."""
        from models.db import database_proxy

        if database_proxy.obj is not None:
            database_proxy.obj.connect(reuse_if_open=True)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Close this thread's connection so no connection idles between messages."""
        from models.db import database_proxy

        db = database_proxy.obj
        if db is not None and not db.is_closed() and db.transaction_depth() == 0:
            db.close()

    after_skip_message = after_process_message


class MetricsMiddleware(Middleware):
    """In multiprocess mode, a worker process that stops drops its live-gauge files."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Mark this process dead for prometheus_client (counters keep their totals)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


def make_broker(kind: str | None = None) -> dramatiq.Broker:
    """The broker for ``kind`` (``stub`` or ``redis``; default from DRAMATIQ_BROKER)."""
    # Read here, not in app.config: the broker must exist before any configuration is.
    kind = kind or os.environ.get("DRAMATIQ_BROKER", "redis")
    new: dramatiq.Broker
    if kind == "stub":
        new = StubBroker()
    else:
        from dramatiq.brokers.redis import RedisBroker

        from app.config import load_config

        new = RedisBroker(
            url=load_config().redis_url,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=MAINTENANCE_CHANCE,
            dead_message_ttl=DEAD_MESSAGE_TTL_MS,
        )
    for middleware in new.middleware:
        if isinstance(middleware, Retries):
            middleware.max_retries = MAX_RETRIES
            middleware.min_backoff = MIN_BACKOFF_MS
            middleware.max_backoff = MAX_BACKOFF_MS
            middleware.retry_when = should_retry
    new.add_middleware(DatabaseMiddleware())
    new.add_middleware(MetricsMiddleware())
    return new


broker = make_broker()
dramatiq.set_broker(broker)
