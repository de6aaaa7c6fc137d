"""Hold expiry (I8): a hold is released only after its PaymentIntent can no longer succeed.

At expiry the intent is re-read: ``processing`` extends the hold, ``succeeded`` confirms
it, anything else is canceled at Stripe first (``cancellation_reason=abandoned``) and
only when that succeeded is the stock released. A cancel refused because the intent
moved on re-reads it and acts on the new status.

An order without a saved intent id may still have one at Stripe (the worker died after
Stripe created it, before the order saved its id): it is looked up by metadata first,
see :func:`orphan_intent`.

Payments that settle later (bank debits: days in ``processing``) keep their hold,
extended PROCESSING_EXTENSION_SECONDS at a time, up to PROCESSING_HOLD_MAX_SECONDS after
the hold's original expiry; past that bound the hold is still kept (I8: a processing
intent cannot be canceled and may still succeed) but the operator is alerted once
(``PAYMENT_PROCESSING_OVERDUE``, ERROR log, metric) and it is re-checked hourly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import Counter

from app.errors import InvalidState, PaymentProviderError
from app.gateways.payments import FINAL_STATUSES, Intent
from app.services import admission, checkout_status, hosted
from app.services.checkout import (
    INTENT_LOOKUP,
    Unprocessable,
    intent_creation_stopped,
    reject_submission,
    store_intent,
)
from app.services.holds import original_hold_expiry, sync_redis_hold
from app.services.inventory import Inventory
from app.services.payments import apply_intent, close_after_cancel, close_authorization
from app.services.records import lock_order
from app.services.state_machine import AUTHORIZED, CANCELED, PENDING, record_event
from models import Order, OrderEvent, Reservation
from models.db import database, utcnow
from models.statuses import PaymentStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

# How long a hold is extended while its payment is processing (bank debits take days;
# cards seconds): the expiry re-checks then.
PROCESSING_EXTENSION_SECONDS = 600
# The bound on those extensions: ACH debits settle within 4 business days, so 7 days
# after the hold first expired covers a long weekend and a bank holiday. Beyond it the
# hold is kept (I8) but alerted and re-checked hourly.
PROCESSING_HOLD_MAX_SECONDS = 7 * 24 * 3600
PROCESSING_OVERDUE_EXTENSION_SECONDS = 3600
# Tolerated lateness: a message delivered this early still counts as "at expiry".
EARLY_SLACK_SECONDS = 2
MAX_REREADS = 3
# Where several intents carry one order id (I2 forbids it), the one to apply first.
STATUS_PRIORITY: dict[str, int] = {PaymentStatus.SUCCEEDED: 0, PaymentStatus.PROCESSING: 1}

PROCESSING_OVERDUE = Counter(
    "checkout_processing_overdue_total",
    "Payments still processing past the hold's bound (the stock stays held; look at them).",
)


@dataclass(frozen=True)
class Expiry:
    """What :func:`expire_hold` did; ``retry_at`` asks the caller to run it again then."""

    action: str  # noop | early | extended | confirmed | canceled | unprocessable
    retry_at: datetime | None = None
    outbox_ids: list[int] = field(default_factory=list)


def expire_hold(order_id: str, runtime: Runtime, *, now: datetime | None = None) -> Expiry:
    """Handle the expiry of ``order_id``'s hold; safe to run any number of times."""
    moment = now or utcnow()
    order = Order.get_or_none(Order.id == order_id)
    if order is None:
        return expire_submission(order_id, runtime)
    if order.state != PENDING:
        sync_redis_hold(order, runtime)
        return Expiry("noop")
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    if reservation and reservation.expires_at > moment + timedelta(seconds=EARLY_SLACK_SECONDS):
        return Expiry("early", retry_at=reservation.expires_at)
    if order.checkout_session_id is None and order.checkout_expires_at is not None:
        # The worker chose the session's expiry but recorded no session: it may exist.
        order = recover_session(order, runtime)
    if order.checkout_session_id is not None:
        # Hosted Checkout: the session is expired at Stripe first (I8), unless it completed.
        session_intent = hosted.close_session(order, runtime)
        if session_intent is None:
            return finish(order.id, None, runtime)
        intent = session_intent
    elif order.checkout_expires_at is not None:
        return finish(order.id, None, runtime)  # Stripe made no session for it
    elif order.payment_intent_id is None:
        found = orphan_intent(order, runtime, moment)
        if isinstance(found, Expiry):
            return found
        if found is None:
            return finish(order.id, None, runtime)
        intent = found
    else:
        intent = runtime.gateway.retrieve_intent(order.payment_intent_id)
    for _ in range(MAX_REREADS):
        if intent.status == PaymentStatus.PROCESSING:
            return extend_processing(order, runtime, moment)
        if intent.status in FINAL_STATUSES:
            return settle(order.id, intent, runtime)
        try:
            canceled = runtime.gateway.cancel_intent(
                intent.id, reason="abandoned", idempotency_key=cancel_key(order)
            )
        except PaymentProviderError as exc:
            if exc.retryable or exc.provider_code != "payment_intent_unexpected_state":
                raise  # the hold is kept; the actor retries
            intent = runtime.gateway.retrieve_intent(intent.id)
            continue
        # Keep the declined attempt (if any) so the order ends FAILED, not CANCELED.
        return finish(
            order.id,
            replace(canceled, last_error=canceled.last_error or intent.last_error),
            runtime,
        )
    raise PaymentProviderError(f"intent of {order_id} keeps changing", retryable=True)


def recover_session(order: Order, runtime: Runtime) -> Order:
    """A hosted order whose session may exist at Stripe unrecorded (the worker died
    between Stripe's answer and the save): ask again with the same key and parameters —
    Stripe answers the session it made (or makes one now) — and record it, so that it is
    expired before the hold is released. Stripe refusing now means it made none then."""
    submission = admission.load_submission(runtime.redis, order.id)
    if not hosted.wants_hosted(submission):
        return order
    assert submission is not None and order.checkout_expires_at is not None
    try:
        session = hosted.create_session(order, runtime, submission, order.checkout_expires_at)
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        return order
    log.warning("order %s: recorded its unsaved Checkout Session %s", order.id, session.id)
    return hosted.record_session(order.id, session, order.checkout_expires_at, runtime)


def extend_processing(order: Order, runtime: Runtime, moment: datetime) -> Expiry:
    """A payment still processing: keep the hold; alert once past the bound."""
    first = original_hold_expiry(order) or moment
    if moment < first + timedelta(seconds=PROCESSING_HOLD_MAX_SECONDS):
        return extend(order.id, runtime, moment)
    overdue = (
        OrderEvent.select()
        .where((OrderEvent.order == order.id) & (OrderEvent.type == "PAYMENT_PROCESSING_OVERDUE"))
        .exists()
    )
    if not overdue:
        with database().atomic():
            record_event(
                lock_order(order.id),
                "PAYMENT_PROCESSING_OVERDUE",
                {"intentId": order.payment_intent_id, "since": first.isoformat() + "Z"},
                "expiry",
            )
        PROCESSING_OVERDUE.inc()
        log.error(
            "PAYMENT OF ORDER %s STILL PROCESSING %s days after its hold expired; stock kept",
            order.id,
            PROCESSING_HOLD_MAX_SECONDS // 86400,
        )
    return extend(order.id, runtime, moment, PROCESSING_OVERDUE_EXTENSION_SECONDS)


def cancel_order(order_id: str, runtime: Runtime, actor: str = "admin") -> Expiry:
    """Admin/buyer cancel of a PENDING order: cancel the intent first, then release.

    An AUTHORIZED order's authorisation is voided first, then its stock goes back.
    Raises InvalidState when the order is not PENDING or AUTHORIZED, or its payment is
    already processing or done (it can no longer be canceled safely).
    """
    order = Order.get_or_none(Order.id == order_id)
    if order is not None and order.state == AUTHORIZED:
        return void_authorization(order, runtime, actor)
    if order is None or order.state != PENDING:
        raise InvalidState("Only PENDING or AUTHORIZED orders can be canceled.")
    intent = None
    if order.checkout_session_id is not None:
        # The session first: once expired at Stripe nobody can pay it any more (I8).
        hosted.close_session(order, runtime)
        order = Order.get_by_id(order_id)
    if order.payment_intent_id is not None:
        current = runtime.gateway.retrieve_intent(order.payment_intent_id)
        if current.status in (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED):
            raise InvalidState(f"The payment is already {current.status}.")
        intent = current
        if current.status != PaymentStatus.CANCELED:
            intent = runtime.gateway.cancel_intent(
                current.id, reason="requested_by_customer", idempotency_key=cancel_key(order)
            )
    with database().atomic():
        order = lock_order(order_id)
        if order.state != PENDING:
            return Expiry("noop")
        close_after_cancel(order, intent, runtime, actor=actor, expired=False, target=CANCELED)
    return Expiry("canceled")


def void_authorization(order: Order, runtime: Runtime, actor: str) -> Expiry:
    """Cancel an AUTHORIZED order: void the authorisation at Stripe, then put the stock back."""
    assert order.payment_intent_id is not None
    intent = runtime.gateway.retrieve_intent(order.payment_intent_id)
    if intent.status == PaymentStatus.SUCCEEDED:
        raise InvalidState("The payment was captured already; refund it instead.")
    if intent.status != PaymentStatus.CANCELED:
        intent = runtime.gateway.cancel_intent(
            intent.id, reason="requested_by_customer", idempotency_key=f"pi-void-{order.id}"
        )
    with database().atomic():
        locked = lock_order(order.id)
        if locked.state != AUTHORIZED:
            return Expiry("noop")
        close_authorization(locked, intent, runtime, actor=actor, expired=False)
    return Expiry("canceled")


def cancel_key(order: Order) -> str:
    """``pi-cancel-<orderId>``, suffixed after each extension (a new cancel attempt)."""
    count = (
        OrderEvent.select()
        .where((OrderEvent.order == order.id) & (OrderEvent.type == "HOLD_EXTENDED"))
        .count()
    )
    return f"pi-cancel-{order.id}" if count == 0 else f"pi-cancel-{order.id}-{count}"


def finish(order_id: str, intent: Intent | None, runtime: Runtime) -> Expiry:
    """The intent is canceled (or never existed): release and close the order."""
    with database().atomic():
        order = lock_order(order_id)
        if order.state != PENDING:
            return Expiry("noop")
        close_after_cancel(order, intent, runtime, actor="expiry", expired=True)
    return Expiry("canceled")


def settle(order_id: str, intent: Intent, runtime: Runtime) -> Expiry:
    """The intent reached a final status on its own: apply it."""
    with database().atomic():
        order = lock_order(order_id)
        if intent.status == PaymentStatus.CANCELED and order.state == PENDING:
            close_after_cancel(order, intent, runtime, actor="expiry", expired=True)
            return Expiry("canceled")
        outbox = apply_intent(order, intent, runtime, actor="expiry")
    return Expiry(
        "confirmed" if intent.status == PaymentStatus.SUCCEEDED else "noop", outbox_ids=outbox
    )


def orphan_intent(order: Order, runtime: Runtime, moment: datetime) -> Intent | Expiry | None:
    """The intent Stripe may hold for an order that never saved its id (I8), or None.

    Stripe's search is eventually consistent (an intent may take about a minute to be
    found), and the order's age says nothing about when its intent was created: retries
    of ``create_payment_intent`` may create it just before expiry. So the first expiry
    stops intent creation (``PAYMENT_INTENT_LOOKUP``, honoured by ``ensure_intent``; both
    run under the order lock, so no creation is in flight) and keeps the hold
    ``STRIPE_SEARCH_DELAY_SECONDS`` longer (``Expiry("extended")``). The run after that
    searches: any intent of the order was then created at least that long ago and is found. A
    found intent is re-read (search results may lag too) and adopted — its id saved as
    ``ensure_intent`` would have — so the caller applies the known-intent rule.
    """
    if not intent_creation_stopped(order.id):
        delay = runtime.config.stripe_search_delay_seconds
        return extend(order.id, runtime, moment, delay, INTENT_LOOKUP, "stripe_search_delay")
    gateway = runtime.gateway
    found = [gateway.retrieve_intent(i.id) for i in gateway.find_intents_for_order(order.id)]
    if not found:
        return None
    found.sort(key=lambda i: STATUS_PRIORITY.get(i.status, 2))
    chosen, *others = found
    log.warning("order %s: found its unsaved intent %s at Stripe", order.id, chosen.id)
    for other in others:  # impossible with one create key per order; never leave it open
        log.error("order %s has more than one intent: %s", order.id, other.id)
        if other.status not in (*FINAL_STATUSES, PaymentStatus.PROCESSING):
            gateway.cancel_intent(
                other.id, reason="abandoned", idempotency_key=f"pi-cancel-{order.id}-{other.id}"
            )
    store_intent(order.id, chosen, runtime)
    return chosen


def extend(
    order_id: str,
    runtime: Runtime,
    moment: datetime,
    seconds: int = PROCESSING_EXTENSION_SECONDS,
    event: str = "HOLD_EXTENDED",
    reason: str | None = None,
) -> Expiry:
    """Keep the stock held and look again later (payment processing, or intent search)."""
    until = moment + timedelta(seconds=seconds)
    with database().atomic():
        order = lock_order(order_id)
        if order.state != PENDING:
            return Expiry("noop")
        Reservation.update(expires_at=until, updated_at=utcnow()).where(
            Reservation.order == order.id
        ).execute()
        Inventory(runtime.redis).extend(order.reservation_id, seconds)
        payload = {"until": until.isoformat() + "Z"} | ({"reason": reason} if reason else {})
        record_event(order, event, payload, "expiry")
    checkout_status.publish(runtime.redis, order_id, holdExpiresAt=until.isoformat() + "Z")
    return Expiry("extended", retry_at=until)


def expire_submission(order_id: str, runtime: Runtime) -> Expiry:
    """A submission never written (worker backlog): no intent exists, release the hold.

    No Stripe lookup is needed: the worker creates an intent only after the order row is
    committed, under the order lock this expiry also holds, so without a row there is none.
    """
    view = checkout_status.read(runtime.redis, order_id)
    if view is None or view.get("state") not in (None, "", PENDING):
        return Expiry("noop")
    reject_submission(
        runtime, order_id, view, Unprocessable("hold_expired", "The hold on your items expired.")
    )
    return Expiry("unprocessable")
