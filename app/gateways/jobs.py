"""Enqueueing work for the workers: the ``Jobs`` port and its Dramatiq adapter.

Views, services and the clock hand work to the workers through ``runtime.jobs`` and
never import ``tasks``: the web and clock processes send messages by actor name (the
way Dramatiq lets one service enqueue for actors defined in another), and only the
worker declares the actors (``tasks.declare_actors``). Tests use a recording fake, or
this adapter over a ``StubBroker`` with an in-process worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import uuid4

import dramatiq
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.middleware import Middleware
from redis import Redis
from redis.client import Pipeline

from app.config import Config
from app.gateways.redis_client import connection_pool
from models.db import utcnow

DEFAULT_QUEUE = "default"
HOLDS_QUEUE = "holds"  # delayed expiry messages live apart from the default queue
# Posts to the shop's backend wait on someone else's server: never ahead of a checkout.
SHOP_WEBHOOKS_QUEUE = "shop_webhooks"

# Each job is an actor of the same name; the worker declares it on this queue.
QUEUES: dict[str, str] = {
    "create_payment_intent": DEFAULT_QUEUE,
    "handle_stripe_event": DEFAULT_QUEUE,
    "expire_hold": HOLDS_QUEUE,
    "send_receipt": DEFAULT_QUEUE,
    "cancel_order": DEFAULT_QUEUE,
    "create_refund": DEFAULT_QUEUE,
    "confirm_payment": DEFAULT_QUEUE,
    "capture_payment": DEFAULT_QUEUE,
    "check_authorization": DEFAULT_QUEUE,
    "deliver_shop_webhook": SHOP_WEBHOOKS_QUEUE,
    "stage_dispute_evidence": DEFAULT_QUEUE,
    "sync_tax": DEFAULT_QUEUE,
}

# Redis broker tuning: a killed worker's messages are redelivered within 90 s. Its
# heartbeat goes stale after 30 s and every process runs queue maintenance (which
# requeues a dead worker's unacked messages) on about one command in ten.
HEARTBEAT_TIMEOUT_MS = 30_000
MAINTENANCE_CHANCE = 100_000  # out of 1,000,000 commands
DEAD_MESSAGE_TTL_MS = 7 * 24 * 3600 * 1000
# A worker's consumer that finds its queue empty sleeps Dramatiq's back-off before the next
# fetch (a Lua script on Redis each): 5-10 ms after the last message, doubling up to the
# worker timeout. Messages 20-60 a second apart met 1.5-2.5 empty fetches each; starting the
# back-off at its 4th step (40-80 ms) leaves 0.3-0.9, for ~25 ms more wait per message.
IDLE_POLL_MIN_MISSES = 3
# A delay queue's consumer (``<queue>.DQ``: hold expiries, retries, shop webhook retries)
# only takes messages due later and keeps them until due: it polls once per worker timeout
# (the back-off's cap, 0.5-1 s; 5 ms x 2^8 is past it), never faster. In a burst each
# order's hold expiry cost a fetch of its own; now a fetch takes a second's worth. A retry
# (1 s back-off at the least) is moved to its queue at most a second after it is due, as
# when the queue was idle before.
DELAY_POLL_MIN_MISSES = 8


class PatientConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, whose idle back-off starts at 40-80 ms, not 5-10 (and
    at the worker timeout for a delay queue)."""

    def __next__(self) -> Any:
        least = DELAY_POLL_MIN_MISSES if is_delay_queue(self.queue_name) else IDLE_POLL_MIN_MISSES
        self.misses = max(self.misses, least)
        return super().__next__()


def is_delay_queue(queue_name: str) -> bool:
    """Whether ``queue_name`` is one of Dramatiq's delay queues (``<queue>.DQ``)."""
    return dq_name(q_name(queue_name)) == queue_name


class FleetRedisBroker(RedisBroker):
    """Dramatiq's Redis broker with :class:`PatientConsumer` (only workers consume)."""

    @property
    def consumer_class(self) -> type[PatientConsumer]:
        """The consumer each worker process runs per queue."""
        return PatientConsumer


@dataclass(frozen=True)
class ScriptedMessage:
    """A Dramatiq message that a Lua script writes into its queue itself, inside the
    script's own atomic step (admit.lua: the admitted submit's ``create_payment_intent``).

    Dramatiq's Redis layout, as its ``dispatch.lua`` enqueues: ``HSET <messages_key>
    <message_id> <data>`` then ``RPUSH <queue_key> <message_id>``. Built by
    :meth:`DramatiqJobs.scripted_create_payment_intent`, which owns that layout; a script
    taking one documents the keys in its header. Once the script has written it,
    :meth:`written` tells the broker's middleware, as the broker's enqueue would.
    """

    messages_key: str  # <namespace>:<queue>.msgs: hash of message id -> encoded message
    queue_key: str  # <namespace>:<queue>: list of message ids, consumed from the left
    message_id: str  # the broker's ``redis_message_id``
    data: bytes  # the encoded message
    message: dramatiq.Message[Any]
    broker: dramatiq.Broker

    delay: int | None = None  # milliseconds: on the queue's delay queue (``.DQ``)

    def queue(self, pipe: Pipeline) -> None:
        """Queue the message on ``pipe`` as ``dispatch.lua`` does, for a caller that sends
        it beside other commands (an order lock's release); then call :meth:`written`."""
        pipe.hset(self.messages_key, self.message_id, self.data)
        pipe.rpush(self.queue_key, self.message_id)

    def written(self) -> None:
        """Run the broker's ``after_enqueue`` hooks: the script has queued the message."""
        self.broker.emit_after("enqueue", self.message, self.delay)


class Jobs(Protocol):
    """The work a request, a service or the clock may hand to the workers."""

    def create_payment_intent(self, order_id: str) -> None:
        """Write the admitted submission's order and create its PaymentIntent."""

    def scripted_create_payment_intent(self, order_id: str) -> ScriptedMessage | None:
        """The ``create_payment_intent(order_id)`` message for admit.lua to queue in the
        admission's own round trip; None when the broker is not Redis (then call
        :meth:`create_payment_intent` once admitted)."""

    def handle_stripe_event(self, event_id: str) -> None:
        """Apply one verified Stripe event (exactly once, by its id), kept by
        ``webhooks.receive`` or in its inbox row: a message never carries its body."""

    def scripted_handle_stripe_event(self, event_id: str) -> ScriptedMessage | None:
        """The ``handle_stripe_event(event_id)`` message for ``webhooks.receive`` to queue
        with the kept body (:meth:`ScriptedMessage.queue`); None when the broker is not
        Redis (then call :meth:`handle_stripe_event` once the body is kept)."""

    def expire_hold(self, order_id: str, at: datetime | None = None) -> None:
        """Expire the order's hold at ``at`` (naive UTC), or now."""

    def scripted_expire_hold(self, order_id: str, at: datetime) -> ScriptedMessage | None:
        """The ``expire_hold(order_id)`` message delayed until ``at``, for a caller that
        queues it beside other commands (``ScriptedMessage.queue``); None when the broker
        is not Redis (then call :meth:`expire_hold`)."""

    def send_receipt(self, outbox_id: int) -> None:
        """Deliver one queued receipt from the outbox."""

    def cancel_order(self, order_id: str, actor: str = "admin") -> None:
        """Cancel a PENDING order (its intent first, then its hold) or void an AUTHORIZED
        one, audited as ``actor``."""

    def create_refund(self, refund_id: str) -> None:
        """Ask Stripe for a requested refund."""

    def confirm_payment(self, order_id: str, confirmation_token: str) -> None:
        """A new payment attempt on the order's intent with a ConfirmationToken."""

    def capture_payment(self, order_id: str, request_id: str) -> None:
        """Capture an AUTHORIZED order's payment (a recorded capture request)."""

    def check_authorization(self, order_id: str) -> None:
        """Warn before an authorisation lapses; close the order once it has."""

    def deliver_shop_webhook(self, delivery_id: int, at: datetime | None = None) -> None:
        """Post one shop event to one endpoint at ``at`` (naive UTC), or now."""

    def stage_dispute_evidence(self, order_id: str) -> None:
        """Stage the evidence draft of the order's dispute at Stripe (not submitted)."""

    def sync_tax(self, order_id: str) -> None:
        """Record a Stripe-Tax-priced order's tax transaction (once paid) and a reversal
        per succeeded refund."""


def redis_broker(
    redis: Config | str,
    *,
    maintenance_chance: int = MAINTENANCE_CHANCE,
    middleware: list[Middleware] | None = None,
) -> RedisBroker:
    """The Redis broker of every process of the fleet (the same queues and timeouts), on
    ``redis``'s primary (a URL, or a configuration that may name sentinels).

    Its pool queues a caller for a free connection rather than failing: a gevent web
    process may enqueue from hundreds of requests at once. Processes that only send
    (web, clock) pass ``maintenance_chance=0``: requeueing a dead worker's messages is
    the workers' job, and a send then costs only its own enqueue. ``middleware``: the
    worker's (``tasks.broker.worker_middleware``); a sender keeps Dramatiq's defaults.
    """
    config = Config(redis_url=redis) if isinstance(redis, str) else redis
    pool = connection_pool(config, max_connections=config.redis_max_connections)
    return FleetRedisBroker(
        client=Redis(connection_pool=pool),
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=maintenance_chance,
        dead_message_ttl=DEAD_MESSAGE_TTL_MS,
        middleware=middleware,
    )


# Dramatiq's Redis broker keeps a queue's messages in ``<namespace>:<queue>.msgs`` (every
# message not yet acknowledged: waiting, taken by a worker, or scheduled under ``.DQ``).
BROKER_NAMESPACE = "dramatiq"


def queue_depths(redis: Redis) -> dict[str, int]:
    """Messages not yet done per queue, as Dramatiq's own ``qsize`` counts them (its
    ``.msgs`` hashes, the delayed queue's included): one pipelined round trip."""
    names = sorted(set(QUEUES.values()))
    with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hlen(f"{BROKER_NAMESPACE}:{name}.msgs")
            pipe.hlen(f"{BROKER_NAMESPACE}:{name}.DQ.msgs")
        counts = pipe.execute()
    return {name: int(counts[2 * i]) + int(counts[2 * i + 1]) for i, name in enumerate(names)}


def delay_ms(at: datetime) -> int:
    """Milliseconds from now until ``at`` (a naive UTC datetime); never negative."""
    return max(0, int((at - utcnow()).total_seconds() * 1000))


class DramatiqJobs:
    """:class:`Jobs` as Dramatiq messages on ``broker``, addressed by actor name."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def create_payment_intent(self, order_id: str) -> None:
        """Queue ``create_payment_intent(order_id)``."""
        self._send("create_payment_intent", order_id)

    def scripted_create_payment_intent(self, order_id: str) -> ScriptedMessage | None:
        """``create_payment_intent(order_id)`` for admit.lua to queue (None: not Redis)."""
        return self._scripted("create_payment_intent", order_id)

    def handle_stripe_event(self, event_id: str) -> None:
        """Queue ``handle_stripe_event(event_id)``."""
        self._send("handle_stripe_event", event_id)

    def scripted_handle_stripe_event(self, event_id: str) -> ScriptedMessage | None:
        """``handle_stripe_event(event_id)`` for the webhook's pipeline (None: not Redis)."""
        return self._scripted("handle_stripe_event", event_id)

    def expire_hold(self, order_id: str, at: datetime | None = None) -> None:
        """Queue ``expire_hold(order_id)``, delayed until ``at`` when given."""
        self._send("expire_hold", order_id, delay=None if at is None else delay_ms(at))

    def scripted_expire_hold(self, order_id: str, at: datetime) -> ScriptedMessage | None:
        """``expire_hold(order_id)`` delayed until ``at``, to queue beside other commands."""
        return self._scripted("expire_hold", order_id, delay=delay_ms(at))

    def send_receipt(self, outbox_id: int) -> None:
        """Queue ``send_receipt(outbox_id)``."""
        self._send("send_receipt", outbox_id)

    def cancel_order(self, order_id: str, actor: str = "admin") -> None:
        """Queue ``cancel_order(order_id, actor)``."""
        self._send("cancel_order", order_id, actor)

    def create_refund(self, refund_id: str) -> None:
        """Queue ``create_refund(refund_id)``."""
        self._send("create_refund", refund_id)

    def confirm_payment(self, order_id: str, confirmation_token: str) -> None:
        """Queue ``confirm_payment(order_id, confirmation_token)``."""
        self._send("confirm_payment", order_id, confirmation_token)

    def capture_payment(self, order_id: str, request_id: str) -> None:
        """Queue ``capture_payment(order_id, request_id)``."""
        self._send("capture_payment", order_id, request_id)

    def check_authorization(self, order_id: str) -> None:
        """Queue ``check_authorization(order_id)``."""
        self._send("check_authorization", order_id)

    def deliver_shop_webhook(self, delivery_id: int, at: datetime | None = None) -> None:
        """Queue ``deliver_shop_webhook(delivery_id)``, delayed until ``at`` when given."""
        delay = None if at is None else delay_ms(at)
        self._send("deliver_shop_webhook", delivery_id, delay=delay)

    def stage_dispute_evidence(self, order_id: str) -> None:
        """Queue ``stage_dispute_evidence(order_id)``."""
        self._send("stage_dispute_evidence", order_id)

    def sync_tax(self, order_id: str) -> None:
        """Queue ``sync_tax(order_id)``."""
        self._send("sync_tax", order_id)

    def _send(self, actor_name: str, *args: Any, delay: int | None = None) -> None:
        self.broker.enqueue(_message(actor_name, args), delay=delay)

    def _scripted(
        self, actor_name: str, *args: Any, delay: int | None = None
    ) -> ScriptedMessage | None:
        """The message as :meth:`RedisBroker.enqueue` would write it (``delay``: on the
        queue's delay queue, with its ``eta``), its ``before_enqueue`` hooks run; None on
        any other broker (the stub's tests)."""
        broker = self.broker
        if not isinstance(broker, RedisBroker):
            return None
        # Dramatiq gives each enqueue its own id in Redis (a retried message is enqueued
        # again under a new one), kept in the options the consumer acknowledges by.
        redis_id = str(uuid4())
        options: dict[str, Any] = {"redis_message_id": redis_id}
        queue_name = QUEUES[actor_name]
        if delay is not None:
            queue_name = dq_name(queue_name)
            options["eta"] = current_millis() + delay
        message = _message(actor_name, args, options, queue_name=queue_name)
        broker.emit_before("enqueue", message, delay)
        queue = f"{broker.namespace}:{message.queue_name}"
        return ScriptedMessage(
            messages_key=f"{queue}.msgs",
            queue_key=queue,
            message_id=redis_id,
            data=message.encode(),
            message=message,
            broker=broker,
            delay=delay,
        )


def _message(
    actor_name: str,
    args: tuple[Any, ...],
    options: dict[str, Any] | None = None,
    *,
    queue_name: str | None = None,
) -> dramatiq.Message[Any]:
    """A message for ``actor_name`` on ``queue_name``, else its queue (:data:`QUEUES`)."""
    return dramatiq.Message(
        queue_name=queue_name or QUEUES[actor_name],
        actor_name=actor_name,
        args=args,
        kwargs={},
        options=options or {},
    )
