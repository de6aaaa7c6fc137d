"""Order records: the helpers every use case shares, below all of them.

The per-order lock the actors take, the row lock inside a transaction, ``touch``, the
contract's ``totals``, and the checkout read model's mirror of an order row
(:func:`checkout_fields`, :func:`publish_after_commit`). Imports no other use case.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.lock import Lock

from app import keys, lua
from app.errors import NotFound
from app.services import checkout_status
from app.services.order_body import REFUND_OPENED, totals
from app.services.state_machine import record_event
from models import Order, Refund, statements
from models.db import database, is_postgres, utcnow
from models.statuses import RefundStatus

if TYPE_CHECKING:
    from app.gateways.jobs import ScriptedMessage
    from app.runtime import Runtime

log = logging.getLogger(__name__)

# Pauses between the tries of a read-model publish that met a connection error (about
# 12 s in all). A Redis failover refuses connections (or a demoted primary answers
# READONLY, which redis-py raises as a connection error) until Sentinel has promoted the
# replica, 2-3 s with the failover suite's 1 s down-after; the next try's connection
# asks the sentinels again and reaches the new primary.
PUBLISH_RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0)


@contextmanager
def order_lock(
    redis: Redis, order_id: str, ttl: float = keys.ORDER_LOCK_TTL_SECONDS
) -> Iterator[None]:
    """One actor at a time per order (``{shop}:lock:order:<id>``), across all workers.

    The lock lives ``ttl`` seconds and the process's :class:`LockRenewer` extends it
    every third of that while the actor runs, however long its Stripe calls take: a
    worker killed with the lock (``kill -9``, an OOM) holds the order up for at most
    ``ttl``. Writes handed to :func:`with_lock_release` meanwhile go in the release's
    round trip.
    """
    # thread_local=False: the renewer thread must see the token the acquiring thread got.
    lock = redis.lock(
        keys.order_lock(order_id), timeout=ttl, blocking_timeout=30, thread_local=False
    )
    if not lock.acquire():
        # Another worker holds the order for longer than we wait: retry later.
        raise TimeoutError(f"order {order_id} is locked by another worker")
    held = RENEWER.hold(lock, ttl / 3)
    outer = getattr(_riders, "held", None)
    riders = Riders(redis)
    _riders.held = riders
    try:
        yield
    finally:
        _riders.held = outer
        RENEWER.drop(held)
        if not release(lock, riders.riders):  # the lock expired meanwhile; nothing to release
            log.warning("order lock for %s expired before release", order_id)


# The writes waiting for this thread's order-lock release (None: no lock held).
_riders = threading.local()
Writes = Callable[[Pipeline], object]


@dataclass(frozen=True)
class Rider:
    """Writes that go with an order lock's release: ``fallback`` runs instead when they did
    not go (None: they may be lost), ``sent`` once they went."""

    writes: Writes
    fallback: Callable[[], object] | None = None
    sent: Callable[[], object] | None = None


@dataclass
class Riders:
    """The riders of one order lock's release, on the lock's client."""

    redis: Redis
    riders: list[Rider] = field(default_factory=list)


def with_lock_release(
    redis: Redis,
    writes: Writes,
    fallback: Callable[[], object] | None = None,
    sent: Callable[[], object] | None = None,
) -> None:
    """Send ``writes`` (Redis commands queued on a pipeline) with this thread's order-lock
    release, in its one round trip; at once, pipelined, when the thread holds no lock
    (or holds it on another client).

    Without a ``fallback``, for writes that may be lost (a fast-path key): a release that
    fails takes them with it, and a caller that holds the lock sees no error of theirs.
    With one, ``fallback`` runs instead when they did not go (the round trip failed, or
    one of their replies is an error): before the lock is released, unless the release
    itself went through; an error it raises is raised once the lock is dealt with.
    ``sent`` runs once they went.
    """
    rider = Rider(writes, fallback, sent)
    held: Riders | None = getattr(_riders, "held", None)
    if held is not None and held.redis is redis:
        held.riders.append(rider)
        return
    pipe = redis.pipeline(transaction=False)
    writes(pipe)
    if fallback is None:
        pipe.execute()
        _after([rider], [(0, 0)], [])
        return
    queued = len(pipe)
    try:
        replies: list[Any] | None = pipe.execute(raise_on_error=False)
    except Exception:  # the round trip failed: the fallback has its own way
        replies = None
    failure = _after([rider], [(0, queued)], replies)
    if failure is not None:
        raise failure


def enqueue_with_release(
    redis: Redis, message: ScriptedMessage | None, enqueue: Callable[[], object]
) -> None:
    """Queue ``message`` (built by the broker for a pipeline: ``Jobs.scripted_*``) with this
    thread's order-lock release; ``enqueue`` (the broker's own) when there is none (not
    Redis) or when the round trip failed, raising as an enqueue does."""
    if message is None:
        enqueue()
        return
    with_lock_release(redis, message.queue, enqueue, message.written)


def release(lock: Lock, riders: list[Rider]) -> bool:
    """Release ``lock`` if it is still ours (its token: redis-py's own release script),
    the ``riders``' writes before it in the same round trip; False if it was not ours.

    The script goes by its SHA (a pipelined redis-py ``Script`` would first ask
    ``SCRIPT EXISTS``); a server that does not know it yet (a restart, a failover) gets
    it through redis-py's own release. Any other failure is redis-py's release's too. A
    rider whose writes did not go has its fallback run (its error raised last).
    """
    token, script = lock.local.token, lock.lua_release
    if token is None:
        return False
    assert script is not None  # registered by the Lock's constructor
    spans: list[tuple[int, int]] = []
    try:
        pipe = lock.redis.pipeline(transaction=False)
        for rider in riders:
            start = len(pipe)
            rider.writes(pipe)
            spans.append((start, len(pipe)))
        pipe.evalsha(script.sha, 1, lock.name, token)
        replies: list[Any] | None = pipe.execute(raise_on_error=False)
    except Exception:  # the round trip failed: none of it is known to have been done
        log.debug("order lock %s: pipelined release failed", lock.name, exc_info=True)
        replies = None
    released = None if replies is None else replies[-1]
    if replies is None or isinstance(released, Exception):
        # Still ours, as far as we know: the riders' fallbacks run while the lock is held.
        failure = _after(riders, spans, replies)
        log.debug("order lock %s: pipelined release refused, released alone", lock.name)
        try:
            lock.release()  # NOSCRIPT above all: redis-py's release loads the script
        except LockError:
            released = False
        else:
            released = True
    else:
        lock.local.token = None
        failure = _after(riders, spans, replies)
    if failure is not None:
        raise failure
    return bool(released)


def _after(
    riders: list[Rider], spans: list[tuple[int, int]], replies: list[Any] | None
) -> Exception | None:
    """Each rider's ``sent`` when its writes went, else its fallback (every rider's
    without replies); the first error a fallback raised, after running them all."""
    failure: Exception | None = None
    for i, rider in enumerate(riders):
        went = replies is not None and i < len(spans)
        if went and replies is not None:
            start, end = spans[i]
            went = not any(isinstance(reply, Exception) for reply in replies[start:end])
        action = rider.sent if went else rider.fallback
        if action is None:
            continue
        try:
            action()
        except Exception as exc:  # the lock must still be released, the others run
            log.exception("a write riding an order lock's release failed")
            failure = failure or exc
    return failure


@dataclass(eq=False)
class HeldLock:
    """A lock the renewer keeps alive: renewed every ``every`` seconds, next at ``due``."""

    lock: Lock
    every: float
    due: float


class LockRenewer:
    """One daemon thread per process that extends every order lock its actors hold.

    A renewer thread per lock cost each locked message a thread's start and join, about
    0.3 ms of CPU: as much as the lock's own two round trips. This thread sleeps until
    the next renewal is due, and while no lock is held wakes every :data:`IDLE_WAKE`
    seconds: a new lock (due a third of its TTL later) then rarely needs to wake it. A
    lock given back while its renewal is in flight may see that renewal refused (the
    token is gone): that is not a lost lock, and is not reported as one.
    """

    IDLE_WAKE = keys.ORDER_LOCK_TTL_SECONDS / 3

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._held: set[HeldLock] = set()
        self._pid = 0  # the process whose thread runs: a forked child starts its own
        self._until = 0.0  # when the thread wakes next (monotonic); a new thread looks at once

    def hold(self, lock: Lock, every: float) -> HeldLock:
        """Renew ``lock`` every ``every`` seconds until :meth:`drop`."""
        held = HeldLock(lock, every, time.monotonic() + every)
        with self._wake:
            if self._pid != os.getpid():
                self._held.clear()  # a parent's locks are not this process's to renew
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="order-lock-renewer", daemon=True).start()
            self._held.add(held)
            if held.due < self._until:
                self._wake.notify()
        return held

    def drop(self, held: HeldLock) -> None:
        """Stop renewing (before the lock is released)."""
        with self._wake:
            self._held.discard(held)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [held for held in self._held if held.due <= now]
                if not due:
                    self._until = min(
                        (held.due for held in self._held), default=now + self.IDLE_WAKE
                    )
                    self._wake.wait(self._until - now)
                    continue
                for held in due:
                    held.due = now + held.every
            for held in due:
                self._renew(held)

    def _renew(self, held: HeldLock) -> None:
        """Reset one lock's TTL; forget it if it was lost while held."""
        try:
            held.lock.reacquire()
        except LockError:
            with self._wake:
                if held not in self._held:
                    return  # given back meanwhile: its release won the race
                self._held.discard(held)
            log.error("order lock %s lost while held (Redis restarted or flushed?)", held.lock.name)
        except Exception:  # a RedisError above all: the one thread outlives any failure
            log.warning(
                "order lock %s: renewal failed, trying again", held.lock.name, exc_info=True
            )


RENEWER = LockRenewer()


def lock_order(order_id: str) -> Order:
    """Re-read an order inside the current transaction, row-locked on PostgreSQL."""
    query = Order.select().where(Order.id == order_id)
    if is_postgres():
        query = query.for_update()
    order = query.get_or_none()
    if order is None:
        raise NotFound(f"Order {order_id} not found.")
    return order


def touch(order: Order, **changes: Any) -> Order:
    """Save ``changes`` on ``order`` with a fresh ``updated_at``."""
    for name, value in changes.items():
        setattr(order, name, value)
    order.updated_at = utcnow()
    statements.save(order, *(getattr(Order, n) for n in changes), Order.updated_at)
    return order


def checkout_fields(order: Order) -> dict[str, Any]:
    """The read-model fields that mirror an order row (published after each change)."""
    return {
        "state": order.state,
        "paymentStatus": order.payment_status,
        "intentId": order.payment_intent_id or "",
        "clientSecret": order.client_secret or "",
        "lineItems": order.line_items,
        "totals": totals(order),
        "checkout": checkout_block(order),
    }


def checkout_block(order: Order) -> dict[str, Any] | None:
    """A hosted order's ``checkout: {sessionId, url, expiresAt}`` (None before its
    Checkout Session exists, and for Payment Element orders)."""
    if order.checkout_session_id is None:
        return None
    expires = order.checkout_expires_at
    return {
        "sessionId": order.checkout_session_id,
        "url": order.checkout_url,
        "expiresAt": expires.replace(microsecond=0).isoformat() + "Z" if expires else None,
    }


def publish_after_commit(
    runtime: Runtime,
    order: Order,
    *,
    error: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Publish the order's read model (and ``extra`` fields) once the current transaction
    has committed."""
    fields = {**checkout_fields(order), "error": error, **(extra or {})}
    database().after_commit(lambda: publish_with_release(runtime, order, fields))


def publish_with_release(runtime: Runtime, order: Order, fields: dict[str, Any]) -> None:
    """Publish ``fields`` as ``order``'s read model with this thread's order-lock release
    (one round trip less), else at once; :func:`publish_with_retries` when that round trip
    failed, or the script was unknown (the row as it is then, if it changed meanwhile)."""
    name, names, args = checkout_status.publish_call(order.id, **fields)
    sha = lua.script(name).sha

    def writes(pipe: Pipeline) -> None:
        pipe.evalsha(sha, len(names), *names, *args)

    def fallback() -> None:
        publish_with_retries(runtime, order, _still_current(order, fields))

    with_lock_release(runtime.redis, writes, fallback)


def publish_with_retries(
    runtime: Runtime, order: Order, fields: dict[str, Any], *, reraise: bool = False
) -> bool:
    """Publish ``fields`` as ``order``'s read model; True once done, False if given up.

    A connection error is tried again after each of :data:`PUBLISH_RETRY_PAUSES`: the
    buyer long-polls the read model, and nothing else publishes a PAID order again, so
    a publish lost to a Redis failover left the buyer at PENDING for good (the failover
    suite's "paid but never saw PAID"). A retry publishes the row as it is then when
    another change was committed meanwhile, so an old publish never lands over a newer
    one. Any other error, or the last try's, is logged, not raised: the change is
    committed and the row answers once the read model expires; with ``reraise`` it is
    raised (an actor whose retry publishes again).
    """
    failure: Exception | None = None
    for pause in (*PUBLISH_RETRY_PAUSES, None):
        try:
            checkout_status.publish(runtime.redis, order.id, **fields)
            return True
        except (RedisConnectionError, RedisTimeoutError) as exc:
            failure = exc
            if pause is None:
                break
            log.warning("checkout status of %s not published yet, again in %.1fs", order.id, pause)
            time.sleep(pause)
            fields = _still_current(order, fields)
        except Exception as exc:
            failure = exc
            break
    log.error("could not publish checkout status of %s", order.id, exc_info=failure)
    if reraise and failure is not None:
        raise failure
    return False


def _still_current(order: Order, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` while ``order``'s row is unchanged, else the fields of the row now."""
    row = Order.get_or_none(Order.id == order.id)
    if row is None or row.updated_at == order.updated_at:
        return fields
    return {**checkout_fields(row), "error": row.last_payment_error or None}


def to_utc_naive(value: str | datetime) -> datetime:
    """An ISO 8601 string or datetime as the naive UTC datetime the database stores."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def after_commit(action: Callable[[], None], what: str) -> None:
    """Run ``action`` (hand work to ``runtime.jobs``) once the transaction has committed.

    A failure is logged, not raised: the change is committed, and the clock's sweep
    finds the work again (unsent outbox rows, unsubmitted refunds).
    """

    def run() -> None:
        try:
            action()
        except Exception:
            log.exception("could not enqueue %s after commit; the clock will", what)

    database().after_commit(run)


def open_refund(
    order: Order,
    *,
    key: str,
    amount: int,
    reason: str | None,
    actor: str,
    restock: bool = False,
) -> tuple[Refund, bool]:
    """A pending refund row and its REFUND_REQUESTED event (idempotent on ``key``):
    (row, created). The one place a refund is opened, an admin's or the service's own."""
    existing = Refund.get_or_none(Refund.idempotency_key == key)
    if existing is not None:
        return existing, False
    refund = Refund.create(
        id=f"rf_{uuid.uuid4().hex[:24]}",
        order=order,
        amount=amount,
        status=RefundStatus.PENDING,
        reason=reason,
        restock=restock,
        idempotency_key=key,
    )
    record_event(
        order,
        REFUND_OPENED,
        {"refundId": refund.id, "amount": amount, "reason": reason, "restock": restock},
        actor,
    )
    return refund, True
