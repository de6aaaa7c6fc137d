"""Shop webhooks: the shop events of ``shop_events`` delivered to every endpoint.

Each event is fanned out once (:func:`dispatch`) to the endpoints configured then, one
``ShopDelivery`` per (event, endpoint). An endpoint's deliveries go out one at a time in
the order the events were created: only its *head* (its oldest pending delivery) is
posted, under a per-endpoint Redis lock, and when the head is delivered or given up the
next one is returned to be enqueued. A refusal (non-2xx, no answer in 10 s) is retried
with exponential back-off and jitter until ``retry_until`` (3 days), then marked failed.
A dead endpoint holds back only its own queue: the others have their own heads and locks.

Services return what should happen next (:class:`Attempt`); the actor and the clock
enqueue it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import peewee

from app import keys
from app.errors import NotFound
from app.gateways.shop_webhooks import Answer
from app.services.order_body import iso_utc_micro
from app.services.state_machine import record_event
from models import ShopDelivery, ShopEvent
from models.db import database, is_postgres, utcnow
from models.statuses import ShopDeliveryStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = (
    ShopDeliveryStatus.PENDING,
    ShopDeliveryStatus.DELIVERED,
    ShopDeliveryStatus.FAILED,
)
RETRY_WINDOW = timedelta(days=3)
FIRST_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
DISPATCH_BATCH = 200

Endpoints = Sequence[tuple[str, str]]  # (url, secret), Config.shop_webhook_endpoints


@dataclass(frozen=True)
class Attempt:
    """What follows a delivery run: retry it at ``retry_at``; deliver ``follow`` now."""

    retry_at: datetime | None = None
    follow: list[int] = field(default_factory=list)


def encode(body: dict[str, Any]) -> bytes:
    """The raw bytes posted (and signed) for a stored event body."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def backoff_seconds(attempts: int, rand: Callable[[], float] = random.random) -> float:
    """The wait after ``attempts`` failures: 30 s doubling to 1 h, jittered to 50 to 100 %."""
    base = min(FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return base / 2 + rand() * base / 2


def endpoint_hash(url: str) -> str:
    """A short stable name for an endpoint (its lock key)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


# --- fan-out and heads -----------------------------------------------------------------


def dispatch(endpoints: Endpoints, limit: int = DISPATCH_BATCH) -> list[int]:
    """Fan events not yet dispatched out to ``endpoints``; the deliveries now due.

    Each event is claimed once (compare-and-set on ``dispatched``) with its deliveries in
    the same transaction. With no endpoint configured nothing is done: the events wait
    for the clock's :func:`sweep` (after every message, marking them cost an autocommitted
    UPDATE and its WAL flush, twice per paid order).
    """
    urls = [url for url, _ in endpoints]
    if not urls:
        return []
    touched: set[str] = set()
    batch = list(
        ShopEvent.select(ShopEvent.id, ShopEvent.created_at)
        .where(ShopEvent.dispatched == False)  # noqa: E712
        .order_by(ShopEvent.id)
        .limit(limit)
    )
    for event in batch:
        with database().atomic():
            claimed = (
                ShopEvent.update(dispatched=True)
                .where((ShopEvent.id == event.id) & (ShopEvent.dispatched == False))  # noqa: E712
                .execute()
            )
            if not claimed:
                continue  # another worker fanned it out
            for url in urls:
                ShopDelivery.insert(
                    event=event.id,
                    endpoint=url,
                    next_attempt_at=event.created_at,
                    retry_until=event.created_at + RETRY_WINDOW,
                    created_at=utcnow(),
                ).on_conflict_ignore().execute()
        touched.update(urls)
    return due_heads(touched)


def sweep(endpoints: Endpoints) -> list[int]:
    """The clock's fan-out: :func:`dispatch`; with no endpoint configured, the waiting
    events are marked dispatched instead (:func:`mark_waiting`), once per sweep.

    An event recorded while no endpoint is configured waits until then: one configured
    meanwhile (or on a restart before the sweep) still receives it, as before the marking
    moved here from after every message.
    """
    if not endpoints:
        mark_waiting()
        return []
    return dispatch(endpoints)


def mark_waiting(batch: int = DISPATCH_BATCH, rounds: int = 100) -> None:
    """With nobody to tell, mark waiting events dispatched: id-ordered batches, each row
    taken ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.

    The clock does this (:func:`sweep`), and did it alongside every worker thread when
    they marked after each message: one statement over every waiting row made markers
    wait on each other's rows, and under load (the soak, 20 orders a second) PostgreSQL
    found thousands of deadlocks. Skipped rows are another marker's.
    """
    for _ in range(rounds):
        waiting = (
            ShopEvent.select(ShopEvent.id)
            .where(ShopEvent.dispatched == False)  # noqa: E712
            .order_by(ShopEvent.id)
            .limit(batch)
        )
        chosen: Any = ShopEvent.id.in_(waiting)
        if is_postgres():
            # = ANY(ARRAY(…)): the chosen ids are looked up by primary key. With IN, a
            # table without statistics yet (a young database; the bench's) was read whole
            # to hash-join the batch the planner took to be 200 rows.
            waiting = waiting.for_update(skip_locked=True)
            chosen = ShopEvent.id == peewee.fn.ANY(peewee.fn.ARRAY(waiting))
        if ShopEvent.update(dispatched=True).where(chosen).execute() < batch:
            return


def head(url: str) -> ShopDelivery | None:
    """The endpoint's oldest pending delivery (by event creation), or None."""
    return (
        ShopDelivery.select()
        .where((ShopDelivery.endpoint == url) & (ShopDelivery.status == PENDING))
        .order_by(ShopDelivery.event, ShopDelivery.id)
        .first()
    )


def due_heads(urls: Iterable[str], *, due_by: datetime | None = None) -> list[int]:
    """The heads of these endpoints whose next attempt is due by ``due_by`` (now)."""
    cutoff = due_by or utcnow()
    found = []
    for url in sorted(set(urls)):
        row = head(url)
        if row is not None and row.next_attempt_at <= cutoff:
            found.append(int(row.id))
    return found


def stalled(endpoints: Endpoints, *, older_than: datetime) -> list[int]:
    """Heads due since before ``older_than``: their message was lost (the clock's sweep)."""
    return due_heads((url for url, _ in endpoints), due_by=older_than)


# --- one delivery ----------------------------------------------------------------------


def deliver(delivery_id: int, runtime: Runtime) -> Attempt:
    """Post one delivery if it is its endpoint's due head; what to enqueue next.

    Another worker posting to the same endpoint, a delivery that is not the head yet, or
    one not due yet: nothing happens (whoever runs the head enqueues the next; the clock
    catches what a lost message leaves behind).
    """
    row = ShopDelivery.get_or_none(ShopDelivery.id == delivery_id)
    if row is None or row.status != PENDING:
        return Attempt()
    lock = runtime.redis.lock(
        keys.shop_hook_lock(endpoint_hash(row.endpoint)),
        timeout=keys.SHOP_HOOK_LOCK_TIMEOUT_SECONDS,
    )
    if not lock.acquire(blocking=False):
        return Attempt()
    try:
        return _deliver_head(delivery_id, runtime)
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: the next run re-checks the head anyway
            log.warning("shop webhook lock for delivery %s expired before release", delivery_id)


def _deliver_head(delivery_id: int, runtime: Runtime) -> Attempt:
    row = ShopDelivery.get_by_id(delivery_id)  # re-read under the endpoint's lock
    first = head(row.endpoint)
    if row.status != PENDING or first is None or first.id != row.id:
        return Attempt()
    if row.next_attempt_at > utcnow():
        return Attempt()
    secrets = dict(runtime.config.shop_webhook_endpoints)
    event = row.event
    if row.endpoint not in secrets:
        answer = Answer(None, "endpoint no longer configured (SHOP_WEBHOOK_URLS)")
        return _record(row, answer, give_up=True)
    answer = runtime.shop_hooks.deliver(
        row.endpoint, secret=secrets[row.endpoint], event_id=event.event_id, body=encode(event.body)
    )
    return _record(row, answer)


def _record(row: ShopDelivery, answer: Answer, *, give_up: bool = False) -> Attempt:
    """Keep the attempt on the row; delivered, retried later, or failed for good."""
    now = utcnow()
    retry_at = None
    with database().atomic():
        if answer.ok:
            # Lock the event first: two endpoints finishing together see each other.
            _lock_event(row.__data__["event"])
        row.attempts += 1
        row.last_status_code = answer.status_code
        row.last_error = answer.error
        if answer.ok:
            row.status, row.delivered_at = DELIVERED, now
        elif give_up or now >= row.retry_until:
            row.status = FAILED
            log.error(
                "shop webhook delivery %s to %s failed after %s attempts: %s",
                row.id,
                row.endpoint,
                row.attempts,
                answer.error,
            )
        else:
            retry_at = min(now + timedelta(seconds=backoff_seconds(row.attempts)), row.retry_until)
            row.next_attempt_at = retry_at
        row.save()
        if answer.ok:
            _note_if_everywhere(row.__data__["event"])
    if retry_at is not None:
        return Attempt(retry_at=retry_at)
    return Attempt(follow=due_heads([row.endpoint]))


def _lock_event(event_pk: int) -> ShopEvent:
    query = ShopEvent.select().where(ShopEvent.id == event_pk)
    return (query.for_update() if is_postgres() else query).get()


def _note_if_everywhere(event_pk: int) -> None:
    """``SHOP_NOTIFIED`` on the order once every endpoint has the event (once per event)."""
    undelivered = ShopDelivery.select().where(
        (ShopDelivery.event == event_pk) & (ShopDelivery.status != DELIVERED)
    )
    if undelivered.exists():
        return
    marked = (
        ShopEvent.update(notified_at=utcnow())
        .where((ShopEvent.id == event_pk) & ShopEvent.notified_at.is_null())
        .execute()
    )
    if marked:
        event = ShopEvent.get_by_id(event_pk)
        endpoints = ShopDelivery.select().where(ShopDelivery.event == event_pk).count()
        record_event(
            event.order,
            "SHOP_NOTIFIED",
            {"eventId": event.event_id, "type": event.type, "endpoints": endpoints},
            "worker",
        )


# --- admin -----------------------------------------------------------------------------


def resend(event_id: str, endpoints: Endpoints) -> list[int]:
    """Deliver ``event_id`` again to every endpoint (a fresh 3-day window); heads due now.

    It goes out in its place in each endpoint's order: after older pending events,
    before newer ones. NotFound for an unknown event.
    """
    event = ShopEvent.get_or_none(ShopEvent.event_id == event_id)
    if event is None:
        raise NotFound("No such shop event.")
    now = utcnow()
    urls = [url for url, _ in endpoints]
    with database().atomic():
        ShopEvent.update(dispatched=True).where(ShopEvent.id == event.id).execute()
        for url in urls:
            ShopDelivery.insert(
                event=event.id, endpoint=url, retry_until=now + RETRY_WINDOW, next_attempt_at=now
            ).on_conflict(
                conflict_target=[ShopDelivery.event, ShopDelivery.endpoint],
                update={
                    ShopDelivery.status: PENDING,
                    ShopDelivery.next_attempt_at: now,
                    ShopDelivery.retry_until: now + RETRY_WINDOW,
                    ShopDelivery.delivered_at: None,
                },
            ).execute()
    return due_heads(urls)


def delivery_row(row: ShopDelivery) -> dict[str, Any]:
    """One delivery as the admin listing shows it."""
    event = row.event
    return {
        "deliveryId": row.id,
        "eventId": event.event_id,
        "type": event.type,
        "orderId": event.__data__["order"],  # the FK id, no query
        "endpoint": row.endpoint,
        "status": row.status,
        "attempts": row.attempts,
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "nextAttemptAt": iso_utc_micro(row.next_attempt_at) if row.status == PENDING else None,
        "createdAt": iso_utc_micro(row.created_at),
        "deliveredAt": iso_utc_micro(row.delivered_at),
    }
