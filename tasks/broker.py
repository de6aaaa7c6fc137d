"""The worker's Dramatiq broker: retry policy, middleware, and the actor declarations.

Nothing here runs on import. The entry points build the broker once:
``tasks.worker`` (``dramatiq tasks.worker``) for the worker processes, tests with
``make_broker("stub")``. Web and clock processes only send messages (``app.gateways.jobs``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, Retries, TimeLimit

from app.config import Config
from app.errors import PaymentProviderError, ServiceError
from app.gateways.jobs import HEARTBEAT_TIMEOUT_MS, MAINTENANCE_CHANCE, redis_broker
from app.runtime import current
from app.services import shop_events, shop_webhooks
from models.db import database_proxy

__all__ = [
    "HEARTBEAT_TIMEOUT_MS",
    "MAINTENANCE_CHANCE",
    "DatabaseMiddleware",
    "MetricsMiddleware",
    "ShopEventsMiddleware",
    "make_broker",
    "retry_policy",
    "should_retry",
    "worker_middleware",
]

log = logging.getLogger(__name__)

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
    """A database connection per message: taken before it (from the process's pool on
    PostgreSQL, see ``DATABASE_POOL_SIZE``) and given back after it."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Open this thread's connection (the database must already be bound)."""
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
        """Give this thread's connection back (to the pool, or closed when unpooled)."""
        db = database_proxy.obj
        if db is not None and not db.is_closed() and db.transaction_depth() == 0:
            db.close()

    after_skip_message = after_process_message


class MetricsMiddleware(Middleware):
    """In multiprocess mode, a worker process that stops drops its live-gauge files."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Mark this process dead for prometheus_client (counters keep their totals)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Imported late: prometheus_client picks its value store from the
            # environment on first import, which the worker's entry point sets up.
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


class ShopEventsMiddleware(Middleware):
    """After each message, the shop events it wrote go to their endpoints' queues.

    Every order change writes its shop event in its own transaction (the outbox), from
    whichever actor made it; fanning out here means no actor has to remember. A message
    that recorded no event skips it (most Stripe events change nothing a shop is told
    of). The clock's sweep fans out every few seconds, for the web's changes
    (fulfilment) and whatever a crash left behind.
    """

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Fan new shop events out and enqueue the deliveries now due."""
        recorded = shop_events.take_recorded()  # asked every time: it resets the answer
        if not recorded or message.actor_name == "deliver_shop_webhook":
            return
        if database_proxy.obj is None:
            return
        try:
            runtime = current()
            for delivery_id in shop_webhooks.dispatch(runtime.config.shop_webhook_endpoints):
                runtime.jobs.deliver_shop_webhook(delivery_id)
        except Exception:  # never fail the message: the clock's sweep catches up
            log.exception("could not dispatch shop events after %s", message.actor_name)


def worker_middleware() -> list[Middleware]:
    """The middleware a worker runs around every message, in order.

    Dramatiq's defaults less the four no actor of ours uses: ``AgeLimit`` (``max_age``),
    ``ShutdownNotifications`` (``notify_shutdown``), ``Callbacks`` (``on_success``,
    ``on_failure``) and ``Pipelines`` (``pipe_target``). Their hooks ran on every message
    all the same (25-40 µs a message, a third of a worker thread's overhead); an actor
    declared with one of their options (``dramatiq.actor``) is now refused, not ignored.
    ``TimeLimit`` (ten minutes, one monitor thread per process) and ``Retries`` stay.
    """
    return [
        TimeLimit(),
        Retries(
            max_retries=MAX_RETRIES,
            min_backoff=MIN_BACKOFF_MS,
            max_backoff=MAX_BACKOFF_MS,
            retry_when=should_retry,
        ),
        DatabaseMiddleware(),
        MetricsMiddleware(),
        # After the database's: after-hooks run in reverse, so this one runs while the
        # message's connection is still open.
        ShopEventsMiddleware(),
    ]


def make_broker(kind: str = "redis", redis: Config | str | None = None) -> dramatiq.Broker:
    """A worker broker, ``stub`` (tests) or ``redis`` on ``redis``'s primary (a URL or a
    configuration naming sentinels), with our middleware."""
    middleware = worker_middleware()
    if kind == "stub":
        return StubBroker(middleware=middleware)
    return redis_broker(redis or Config(), middleware=middleware)
