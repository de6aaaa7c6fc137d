"""Stripe webhooks as data: ``HANDLERS = {event_type: small_function}``.

:func:`handle_event` gives every event id exactly one effect (I3): a ``WebhookEvent``
row per id (unique), the handler's effect and the ``processed`` mark committed in ONE
transaction, the row locked while it runs. A failing handler rolls back, its row is
marked ``failed`` (attempts, last error) and the error propagates so Dramatiq retries.
``{shop}:evt:<id>`` is set only after commit, as a fast skip for replays.

Dead letters: a row whose handler has failed :data:`MAX_ATTEMPTS` times (the
``handle_stripe_event`` actor's first try and its :data:`RETRIES` retries) is marked
``dead``; the clock no longer re-enqueues it and alerts on it, the admin lists it and
a replay gives it a fresh budget (:func:`revive`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import peewee
from prometheus_client import Counter
from redis import Redis
from redis.client import Pipeline

from app import keys
from app.errors import MalformedEvent, MalformedJSON
from app.gateways.payments import (
    FINAL_STATUSES,
    CheckoutSession,
    Intent,
    PaymentError,
    PaymentGateway,
)
from app.services import hosted, shop_events, tax_records
from app.services.disputes import apply_dispute
from app.services.holds import reclaim_refund_restock, restock_lines
from app.services.order_body import REFUND_OPENED
from app.services.ownership import REREAD, Current, current_object, foreign
from app.services.payments import apply_intent, close_after_cancel, foreign_intent
from app.services.records import publish_after_commit, touch, with_lock_release
from app.services.state_machine import (
    FULFILLED,
    FULFILLING,
    PAID,
    PENDING,
    REFUND_REVERSED,
    REFUNDED,
    record_event,
    transition,
)
from models import Order, OrderEvent, Refund, Reservation, WebhookEvent, statements
from models.db import database, is_postgres, utcnow
from models.statuses import (
    PaymentStatus,
    RefundStatus,
    ReservationStatus,
    ShopEventType,
    WebhookStatus,
)

if TYPE_CHECKING:
    from app.gateways.jobs import ScriptedMessage
    from app.runtime import Runtime

log = logging.getLogger(__name__)

DONE = frozenset({WebhookStatus.PROCESSED, WebhookStatus.IGNORED})
# Rows a replay by hand can still change (the console offers "Replay" on these).
REPLAYABLE = frozenset(WebhookStatus) - DONE
# Outcome.status of an event already handled (the other outcomes are inbox statuses).
DUPLICATE = "duplicate"

WEBHOOK_RESULTS = Counter(
    "checkout_webhook_events_total", "Stripe events by outcome.", ["type", "outcome"]
)
DEAD_LETTERS = Counter(
    "checkout_webhook_dead_letters_total", "Stripe events whose handler exhausted its retries."
)

# The handle_stripe_event actor's retry limit (tasks.ACTORS reads it): with the first
# try, a row that failed this many attempts will not be retried again.
RETRIES = 25
MAX_ATTEMPTS = RETRIES + 1


@dataclass
class Context:
    """What a handler may use: the runtime, the event, the intent as Stripe has it now."""

    runtime: Runtime
    event: dict[str, Any]
    intent: Intent | None = None
    # A refund, charge or dispute event's object re-read from Stripe (ownership).
    current: Current | None = None
    # Hosted Checkout: the order's Checkout Session as Stripe has it now.
    session: CheckoutSession | None = None
    outbox_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What :func:`handle_event` did: processed, ignored or duplicate; receipts queued."""

    status: str
    outbox_ids: list[int] = field(default_factory=list)
    # The order as the committed transaction left it (a processed event's): its queued
    # mails are rendered from it, not read again (receipts.send_now).
    order: Order | None = None
    # An order whose hold the event made due now (a delayed payment that failed after
    # the hold's original expiry): its expiry should run at once.
    expire_order: str | None = None


Handler = Callable[[Order, dict[str, Any], Context], None]


# --- payment intents -----------------------------------------------------------------


def on_intent_status(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """succeeded / processing / requires_action / canceled: act on the CURRENT status."""
    intent = ctx.intent or Intent.from_dict(obj)
    hosted.adopt_intent(order, ctx.session, intent, actor="webhook")
    ctx.outbox_ids += apply_intent(order, intent, ctx.runtime, actor="webhook")


# What the intent handlers read of a PaymentIntent besides its id, status and metadata
# (:func:`final_intent`): the amounts and currency (I10, the captured amount), the charge
# (``PAYMENT_SUCCEEDED``), the last error and why it was canceled (FAILED or CANCELED, a
# voided or lapsed authorisation). Every API version since 2022-11-15 sends each of them
# (null where Stripe has none); an older endpoint's events have no ``latest_charge``.
FINAL_INTENT_FIELDS = (
    "amount",
    "currency",
    "amount_received",
    "latest_charge",
    "last_payment_error",
    "cancellation_reason",
)


def final_intent(obj: dict[str, Any]) -> Intent | None:
    """The event's own PaymentIntent when its status is final (succeeded, canceled) and
    it carries what the handlers read, in the shape they read it; None otherwise (the
    intent is then re-read from Stripe).

    A final intent never changes status again: its signed event is what Stripe has now,
    so acting on it cannot apply an older state over a newer one. Statuses that can still
    change (processing, requires_action, requires_payment_method, requires_capture) are
    re-read, since their events arrive in any order.
    """
    if obj.get("status") not in FINAL_STATUSES or not all(f in obj for f in FINAL_INTENT_FIELDS):
        return None
    typed = (
        _is_int(obj["amount_received"])
        and isinstance(obj["latest_charge"], str | None)  # an event never expands it
        and isinstance(obj["cancellation_reason"], str | None)
    )
    # A shape Intent.from_dict would misread goes to Stripe, whose answer is typed.
    return Intent.from_dict(obj) if typed else None


def on_payment_failed(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """A declined attempt; if the intent has moved on since, record it and follow it."""
    current = ctx.intent or Intent.from_dict(obj)
    hosted.adopt_intent(order, ctx.session, current, actor="webhook")
    if foreign_intent(order, current, actor="webhook"):
        return  # I10: another order's intent (or amount, or currency): audited, ignored
    if current.status != PaymentStatus.REQUIRES_PAYMENT_METHOD and order.state == PENDING:
        error = PaymentError.from_dict(obj.get("last_payment_error"))
        details = {
            "code": "card_declined",
            "declineCode": error.decline_code or error.code if error else None,
            "message": error.message if error else "The payment failed.",
        }
        record_event(order, "PAYMENT_FAILED", {"intentId": current.id, **details}, "webhook")
        touch(order, last_payment_error=details)
    elif current.last_error is None and current.status == PaymentStatus.REQUIRES_PAYMENT_METHOD:
        current = Intent.from_dict({**obj, "status": current.status})
    ctx.outbox_ids += apply_intent(order, current, ctx.runtime, actor="webhook")


# --- hosted Checkout -----------------------------------------------------------------


def on_session(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """checkout.session.completed / .async_payment_succeeded / _failed / .expired: the
    order follows its session's intent as Stripe has it now; an expired session that
    took no payment releases the hold (CANCELED, or FAILED after a declined attempt)."""
    session = ctx.session or CheckoutSession.from_dict(obj)
    if hosted.foreign_session(order, session, actor="webhook"):
        return  # I10: another order's session (or amount, or currency): audited, ignored
    intent = ctx.intent
    hosted.adopt_intent(order, session, intent, actor="webhook")
    expired = session.status == hosted.SESSION_EXPIRED
    if (
        expired
        and order.state == PENDING
        and (intent is None or intent.status == PaymentStatus.CANCELED)
    ):
        close_after_cancel(order, intent, ctx.runtime, actor="webhook", expired=True)
    elif intent is not None:
        ctx.outbox_ids += apply_intent(order, intent, ctx.runtime, actor="webhook")


# --- refunds -------------------------------------------------------------------------


def on_charge_refunded(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """The charge's refunds changed: each as Stripe has it now, then ``amountRefunded``.

    Stripe's ``amount_refunded`` counts pending refunds (and a partial capture's release):
    only the refunds Stripe says succeeded count here.
    """
    listed = (obj.get("refunds") or {}).get("data") or []
    current = ctx.current or Current("charge", obj, listed)
    if foreign(order, current, obj, actor="webhook"):
        return  # I10: not this order's charge (or unknown at Stripe): audited, ignored
    for refund in current.refunds:
        sync_refund(order, refund, ctx)
    follow_refunds(order, ctx)


def on_refund(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """refund.created / .updated / .failed: our Refund row follows Stripe's refund now."""
    current = ctx.current or Current("refund", obj)
    if foreign(order, current, obj, actor="webhook") or current.obj is None:
        return  # I10: another order's refund, or none at Stripe: audited, ignored
    sync_refund(order, current.obj, ctx)
    follow_refunds(order, ctx)


# A refund's statuses in Stripe's order: failed and canceled are final, and a refund
# never goes back to pending. A stale read applied after a newer one cannot undo it.
REFUND_STEPS: dict[str, int] = {
    RefundStatus.PENDING: 0,
    RefundStatus.REQUIRES_ACTION: 0,
    RefundStatus.SUCCEEDED: 1,
    RefundStatus.FAILED: 2,
    RefundStatus.CANCELED: 2,
}


def sync_refund(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """Create or update the Refund row for a Stripe refund and record a status change."""
    refund = find_refund(order, obj)
    status, was = str(obj.get("status")), refund.status
    if status == was or REFUND_STEPS.get(status, 0) < REFUND_STEPS.get(was, 0):
        return
    refund.status, refund.updated_at = status, utcnow()
    refund.save()
    payload = {"refundId": refund.id, "stripeRefundId": obj.get("id"), "amount": refund.amount}
    if status in (RefundStatus.FAILED, RefundStatus.CANCELED):
        reason = obj.get("failure_reason")
        counted = was == RefundStatus.SUCCEEDED  # follow_refunds takes it back out
        payload |= {"failureReason": reason, "status": status, "wasCounted": counted}
        record_event(order, "REFUND_FAILED", payload, "webhook")
        log.error("refund %s of order %s failed: %s", obj.get("id"), order.id, reason)
    elif status != RefundStatus.SUCCEEDED:  # a success shows as REFUNDED (follow_refunds)
        record_event(order, "REFUND_UPDATED", {**payload, "status": status}, "webhook")
    else:  # Stripe Tax: the refund's reversal
        tax_records.queue_after_commit(ctx.runtime, order)


def find_refund(order: Order, obj: dict[str, Any]) -> Refund:
    """Our Refund row for a Stripe refund (created when the refund began at Stripe)."""
    stripe_id = obj.get("id")
    refund = Refund.get_or_none(Refund.stripe_refund_id == stripe_id)
    ours = (obj.get("metadata") or {}).get("refundId")
    if refund is None and ours:
        # Only a row of this order not yet tied to another Stripe refund.
        refund = Refund.get_or_none(
            (Refund.id == ours)
            & (Refund.order == order.id)
            & (Refund.stripe_refund_id.is_null() | (Refund.stripe_refund_id == stripe_id))
        )
    if refund is None:
        refund = Refund.create(
            id=str(uuid.uuid4()),
            order=order,
            stripe_refund_id=stripe_id,
            amount=int(obj.get("amount") or 0),
            status=RefundStatus.PENDING,
            reason=obj.get("reason"),
            idempotency_key=f"stripe:{stripe_id}",
        )
        record_event(
            order,
            REFUND_OPENED,
            {"refundId": refund.id, "stripeRefundId": stripe_id, "amount": refund.amount},
            "webhook",
        )
    elif refund.stripe_refund_id is None:
        refund.stripe_refund_id = stripe_id
        refund.save()
    return refund


def follow_refunds(order: Order, ctx: Context) -> None:
    """``amountRefunded`` is what the refunds Stripe says succeeded add up to."""
    succeeded = Refund.select(peewee.fn.SUM(Refund.amount)).where(
        (Refund.order == order.id) & (Refund.status == RefundStatus.SUCCEEDED)
    )
    total = int(succeeded.scalar() or 0)
    if total < order.amount_refunded:
        lower_refunded_total(order, total, ctx)
    else:
        raise_refunded_total(order, total, ctx)


def lower_refunded_total(order: Order, total: int, ctx: Context) -> None:
    """A refund that had succeeded failed after all: the money is the buyer's no more.

    A REFUNDED order goes back to the state it was refunded from, and the units its
    refund put back on sale are taken off again (as many as are still free:
    :func:`reclaim_refund_restock`).
    """
    touch(order, amount_refunded=total)
    if order.state == REFUNDED:
        transition(order, state_before_refund(order), REFUND_REVERSED, "webhook")
        reclaim_refund_restock(order, ctx.runtime, actor="webhook")
    publish_after_commit(ctx.runtime, order, error=None)


def state_before_refund(order: Order) -> str:
    """The state a REFUNDED order was in before it was refunded (its trail says; PAID
    when the trail does not)."""
    changes = (
        OrderEvent.select()
        .where((OrderEvent.order == order.id) & (OrderEvent.type == "STATE_CHANGED"))
        .order_by(OrderEvent.id)
    )
    froms = [e.payload.get("from") for e in changes if (e.payload or {}).get("to") == REFUNDED]
    return str(froms[-1]) if froms else PAID


def raise_refunded_total(order: Order, total: int, ctx: Context) -> None:
    """``amountRefunded`` only grows; a full refund makes the order REFUNDED."""
    paid = order.total if order.amount_captured is None else order.amount_captured
    total = min(total, paid)
    if total <= order.amount_refunded:
        return
    delta = total - order.amount_refunded
    touch(order, amount_refunded=total)
    record_event(order, "REFUNDED", {"amount": delta, "amountRefunded": total}, "webhook")
    if total >= paid and order.state in (PAID, FULFILLING, FULFILLED):
        transition(order, REFUNDED, "refunded_in_full", "webhook")  # order.refunded
        restock_if_asked(order, ctx)
    elif total < order.total:
        shop_events.record(order, ShopEventType.ORDER_PARTIALLY_REFUNDED)
    publish_after_commit(ctx.runtime, order, error=None)  # the checkout read model follows


def restock_if_asked(order: Order, ctx: Context) -> None:
    """Put a fully refunded order's units back when a refund asked for it.

    Through :func:`restock_lines`, capped by what the order bought: units a capture
    already put back are not put back twice, and a second call restocks nothing.
    """
    asked = Refund.select().where((Refund.order == order.id) & (Refund.restock == True))  # noqa: E712
    if not asked.exists():
        return
    lines = [(str(line["sku"]), int(line["quantity"])) for line in order.line_items]
    restock_lines(order, ctx.runtime, lines, reason="refund", actor="webhook")


# --- disputes ------------------------------------------------------------------------


def on_dispute(order: Order, obj: dict[str, Any], ctx: Context) -> None:
    """charge.dispute.created / .updated / .closed: the order's dispute, alerts, evidence."""
    current = ctx.current or Current("dispute", obj)
    if foreign(order, current, obj, actor="webhook") or current.obj is None:
        return  # I10: a dispute on another order's payment, or none at Stripe
    ctx.outbox_ids += apply_dispute(order, current.obj, ctx.runtime, actor="webhook")


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": on_intent_status,
    "payment_intent.processing": on_intent_status,
    "payment_intent.requires_action": on_intent_status,
    "payment_intent.canceled": on_intent_status,
    # Manual capture: the authorisation succeeded (requires_capture) or was captured.
    "payment_intent.amount_capturable_updated": on_intent_status,
    "payment_intent.payment_failed": on_payment_failed,
    "charge.refunded": on_charge_refunded,
    "refund.created": on_refund,
    "refund.updated": on_refund,
    "refund.failed": on_refund,
    "charge.refund.updated": on_refund,  # a refund's status changed (e.g. it failed)
    "charge.dispute.created": on_dispute,
    "charge.dispute.updated": on_dispute,
    "charge.dispute.closed": on_dispute,
    "checkout.session.completed": on_session,
    "checkout.session.async_payment_succeeded": on_session,
    "checkout.session.async_payment_failed": on_session,
    "checkout.session.expired": on_session,
}

# The one list of the event types we act on: the worker's handlers above. The web queues
# only these (:func:`handled`); reconciliation asks Stripe only for these.
HANDLED_TYPES = frozenset(HANDLERS)


def handled(event_type: str) -> bool:
    """Whether a verified event of ``event_type`` goes to the worker.

    Any other type (``payment_intent.created``, ``charge.succeeded``, ``customer.*``…)
    carries nothing a handler reads: the intent's status, the charge and the refunds are
    all re-read from the handled ``payment_intent.*`` / ``charge.refunded`` / ``refund.*``
    events. The web acknowledges it at the edge, 200 with nothing queued or stored, and
    counts it; the worker would only have written an ``ignored`` inbox row for it.
    """
    return event_type in HANDLED_TYPES


# --- the dispatcher ------------------------------------------------------------------


def verified_event(gateway: PaymentGateway, payload: bytes, signature: str) -> dict[str, Any]:
    """The Stripe event of a signed raw body (SignatureInvalid / MalformedJSON otherwise)."""
    event = gateway.verify_webhook(payload, signature)
    event_id, event_type = event.get("id"), event.get("type")
    if not (_fits(event_id, WebhookEvent.event_id) and _fits(event_type, WebhookEvent.type)):
        # Dedupe is keyed on the event id, and the inbox row must be written before any
        # handler runs: an id or type it cannot hold would fail every retry without a row.
        raise MalformedJSON(
            "The body is not a Stripe event (an id and a type of printable ASCII characters)."
        )
    return event


def _fits(value: Any, column: peewee.CharField) -> bool:
    """Whether ``value`` is printable ASCII without spaces, short enough for ``column``.

    Stripe's ids and types are letters, digits, ``_`` and ``.``; NUL (PostgreSQL text
    refuses it), a lone surrogate (UTF-8 cannot encode it) or an over-long value would
    make the inbox insert fail.
    """
    return (
        isinstance(value, str)
        and 0 < len(value) <= column.max_length
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def event_object(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``data.object`` of an event, or ``{}`` when it has none."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def order_id_of_event(payload: dict[str, Any]) -> str | None:
    """The order an event is about (the one its actor locks), or None."""
    return order_id_of(event_object(payload))


def order_id_of(obj: dict[str, Any]) -> str | None:
    """Our order id for an event object: its metadata, else its intent's order.

    An id no order can have (a lone surrogate, NUL, longer than the column) is nobody's:
    sent to the database it would fail every retry of the event.
    """
    metadata = obj.get("metadata")
    order_id = metadata.get("orderId") if isinstance(metadata, dict) else None
    if isinstance(order_id, str) and order_id:
        return order_id if _fits(order_id, Order.id) else None
    intent_id = obj.get("payment_intent")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    if obj.get("object") != "payment_intent" and isinstance(intent_id, str) and intent_id:
        if not _fits(intent_id, Order.payment_intent_id):
            return None
        order = Order.get_or_none(Order.payment_intent_id == intent_id)
        return order.id if order else None
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _refund_problem(refund: Any) -> str | None:
    if not isinstance(refund, dict) or not _is_id(refund.get("id")):
        return "a refund without a string id"
    if not _is_int(refund.get("amount")):
        return "a refund amount that is not an integer"
    intent = refund.get("payment_intent")
    if intent is not None and not (_is_id(intent) or isinstance(intent, dict)):
        return "payment_intent is neither an id nor an object"
    if not isinstance(refund.get("metadata") or {}, dict):
        return "metadata is not an object"
    return None


def malformed(payload: dict[str, Any]) -> str | None:
    """Why a handled event lacks the shape its handler needs, or None (well-formed).

    Signed events come from Stripe, but a handler must never crash on their shape: such
    an event is recorded as failed once (:func:`handle_event`), never retried.
    """
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "data.object is not an object"
    obj = data["object"]
    if not isinstance(obj.get("metadata") or {}, dict):
        return "data.object.metadata is not an object"
    type_ = str(payload.get("type", ""))
    if type_.startswith("payment_intent."):
        if not _is_id(obj.get("id")) or not isinstance(obj.get("status", ""), str):
            return "a payment_intent without a string id and status"
        if not _is_int(obj.get("amount")) or not isinstance(obj.get("currency") or "", str):
            return "a payment_intent amount or currency of the wrong type"
        if not isinstance(obj.get("last_payment_error") or {}, dict):
            return "last_payment_error is not an object"
    elif type_ == "charge.refunded":
        if not _is_int(obj.get("amount_refunded")):
            return "amount_refunded is not an integer"
        refunds = obj.get("refunds") or {}
        listed = refunds.get("data") if isinstance(refunds, dict) else None
        if not isinstance(refunds, dict) or not isinstance(listed or [], list):
            return "refunds is not a list object"
        for refund in listed or []:
            if problem := _refund_problem(refund):
                return problem
    elif type_.startswith("refund.") or type_ == "charge.refund.updated":
        return _refund_problem(obj)
    elif type_.startswith("checkout.session."):
        if not _is_id(obj.get("id")) or not isinstance(obj.get("status", ""), str):
            return "a checkout.session without a string id and status"
        if not _is_int(obj.get("amount_total")) or not isinstance(obj.get("currency") or "", str):
            return "a checkout.session amount_total or currency of the wrong type"
        intent = obj.get("payment_intent")
        if intent is not None and not (_is_id(intent) or isinstance(intent, dict)):
            return "payment_intent is neither an id nor an object"
    elif type_.startswith("charge.dispute."):
        if not _is_id(obj.get("id")) or not isinstance(obj.get("status", ""), str):
            return "a dispute without a string id and status"
        if not _is_int(obj.get("amount")) or not isinstance(
            obj.get("evidence_details") or {}, dict
        ):
            return "a dispute amount or evidence_details of the wrong type"
    return None


def receive(
    redis: Redis,
    event: dict[str, Any],
    raw: bytes | None = None,
    message: ScriptedMessage | None = None,
) -> None:
    """Keep a verified event's body for the worker, whose message carries only its id.

    Dramatiq logs a failed message with its arguments, and an event's body holds the
    intent's ``client_secret`` and the buyer's e-mail: no message may carry it. ``raw``
    is the signed body ``event`` was parsed from (strictly, by :func:`verified_event`):
    kept as it came, it need not be serialised again.

    With ``message`` (``jobs.scripted_handle_stripe_event``) the body and the worker's
    message are written in one MULTI: one round trip (a connection lost before its EXEC
    writes neither); any error raises, and the caller answers 503 as before.
    """
    body = raw if raw is not None else json.dumps(event, separators=(",", ":"))
    key = keys.event_body(str(event["id"]))
    if message is None:
        redis.set(key, body, ex=keys.EVENT_BODY_TTL_SECONDS)
        return
    with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, body, ex=keys.EVENT_BODY_TTL_SECONDS)
        message.queue(pipe)
        pipe.execute()


def received_event(redis: Redis, event_id: str) -> dict[str, Any] | None:
    """The body of ``event_id``: the one :func:`receive` kept, else its inbox row's.

    Redis first: a fresh event (the common case) then costs no query; the row answers
    for one re-enqueued by the clock after its kept body was forgotten. Both hold the
    same event (Stripe never changes an event's body).
    """
    return _event_from(redis.get(keys.event_body(event_id)), event_id)


def pending_event(redis: Redis, event_id: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether ``event_id`` is done already (its dedupe key), and if not its body (as
    :func:`received_event` finds it): the key and the kept body read in one round trip.

    The key is only a fast skip: an event done by another worker since is still found
    done by its inbox row (:func:`handle_event`).
    """
    body, seen = redis.mget(keys.event_body(event_id), keys.event_seen(event_id))
    if seen is not None:
        return True, None
    return False, _event_from(body, event_id)


def _event_from(body: str | bytes | None, event_id: str) -> dict[str, Any] | None:
    """The event of a kept body, else of its inbox row, else None."""
    if body is not None:
        return dict(json.loads(body))
    row = WebhookEvent.get_or_none(WebhookEvent.event_id == event_id)
    return None if row is None else dict(row.payload)


def forget_received(redis: Redis, event_id: str) -> None:
    """Drop the kept body once the inbox row holds it (the row is the record)."""
    redis.delete(keys.event_body(event_id))


# inbox_row's default: the row is yet to be inserted (None: the insert found one).
_INSERT: Any = object()


def inbox_fields(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The columns of a new inbox row."""
    return {"event_id": event_id, "type": str(payload.get("type", "")), "payload": payload}


def inbox_row(event_id: str, payload: dict[str, Any], *, new_id: Any = _INSERT) -> WebhookEvent:
    """The inbox row of ``event_id``, created on first sight (unique: one per id).

    One statement for a new id (``INSERT … ON CONFLICT DO NOTHING``, no transaction of
    its own); the existing row is read only when the insert found one. ``new_id``: the
    insert ran already (:func:`inbox_row_and_order`) and answered this.
    """
    fields = inbox_fields(event_id, payload)
    if new_id is _INSERT:
        new_id = statements.insert_new(WebhookEvent, fields, WebhookEvent.id)
    if new_id is None:  # seen before, or another worker inserted it first
        return WebhookEvent.get(WebhookEvent.event_id == event_id)
    return WebhookEvent(id=new_id, status=WebhookStatus.RECEIVED, attempts=0, **fields)


def inbox_row_and_order(
    event_id: str, payload: dict[str, Any], order_id: str | None
) -> tuple[WebhookEvent, Order | None]:
    """:func:`inbox_row`, and the order ``order_id`` as :func:`order_of_event_query`
    reads it (None: no such order, or ``order_id`` None and nothing read):
    on PostgreSQL in one autocommitted statement (``statements.insert_new_beside``), one server
    transaction where there were two. The row is still committed before any call to
    Stripe, and the order still re-read and locked in the event's transaction."""
    if order_id is None:
        return inbox_row(event_id, payload), None
    fields = inbox_fields(event_id, payload)
    read = statements.Read(
        "webhooks.order_of_event", lambda: order_of_event_query(order_id), [order_id]
    )
    new_id, found = statements.insert_new_beside(WebhookEvent, fields, WebhookEvent.id, read)
    return inbox_row(event_id, payload, new_id=new_id), _order_of(found)


def handle_event(
    event_id: str, payload: dict[str, Any], runtime: Runtime, *, unseen: bool = False
) -> Outcome:
    """Apply one Stripe event exactly once; raise (for a retry) if its handler fails.

    ``unseen``: the caller has just found no dedupe key for it (:func:`pending_event`),
    so it is not asked again.
    """
    redis = runtime.redis
    if not unseen and redis.exists(keys.event_seen(event_id)):
        return Outcome(DUPLICATE)
    type_ = str(payload.get("type", ""))
    handler = HANDLERS.get(type_)
    problem = malformed(payload) if handler else None
    obj = event_object(payload)
    order_id = order_id_of(obj) if handler and problem is None else None
    if handler is None or (problem is None and order_id is None):
        return record_ignored(event_id, payload, redis)
    row, order = inbox_row_and_order(event_id, payload, order_id)
    if row.status in DONE:
        remember(redis, event_id)
        return Outcome(DUPLICATE)
    if problem is not None:
        return finish_malformed(row, type_, problem)
    if order is None:
        return finish_ignored(row, type_, redis)
    ctx = Context(runtime=runtime, event=payload)
    if type_.startswith("payment_intent.") and obj.get("id"):
        # Act on Stripe's current status (ordering): a final intent's own event says it,
        # any other intent is re-read (outside the transaction).
        ctx.intent = final_intent(obj) or runtime.gateway.retrieve_intent(str(obj["id"]))
        ctx.session = hosted.session_of_intent(runtime.gateway, order, ctx.intent)
    elif type_.startswith("checkout.session.") and obj.get("id"):
        # The session and its intent as Stripe has them now (events arrive in any order).
        ctx.session = runtime.gateway.retrieve_checkout_session(str(obj["id"]))
        if ctx.session.payment_intent:
            ctx.intent = runtime.gateway.retrieve_intent(ctx.session.payment_intent)
    elif type_ in REREAD:
        # The same for refunds, charges, disputes: Stripe's figures, and whose they are.
        ctx.current = current_object(runtime.gateway, type_, obj)
    try:
        with database().atomic():
            locked, order = lock_row_and_order(row.id, order.id)
            if locked.status in DONE:
                return Outcome(DUPLICATE)
            handler(order, obj, ctx)
            mark(locked, WebhookStatus.PROCESSED)
    except Exception as exc:
        note_failure(row.id, exc)
        WEBHOOK_RESULTS.labels(type_, WebhookStatus.FAILED).inc()
        raise
    remember(redis, event_id)
    WEBHOOK_RESULTS.labels(type_, WebhookStatus.PROCESSED).inc()
    # Only a PENDING order can have a hold come due: no query after the order moved on
    # (``transition`` keeps the locked row's state current).
    due = order.state == PENDING and hold_due_now(order.id)
    return Outcome(WebhookStatus.PROCESSED, ctx.outbox_ids, order, order.id if due else None)


def record_ignored(event_id: str, payload: dict[str, Any], redis: Redis) -> Outcome:
    """An event we do not handle, or not about an order: its inbox row written
    ``ignored`` in one statement (or an earlier row marked so), never applied."""
    type_ = str(payload.get("type", ""))
    done = {"status": WebhookStatus.IGNORED, "attempts": 1, "processed_at": utcnow()}
    fields = {**inbox_fields(event_id, payload), **done}
    if statements.insert_new(WebhookEvent, fields, WebhookEvent.id) is None:
        # A row from an earlier attempt (or another worker's): marked unless done.
        marked = (
            WebhookEvent.update(
                status=WebhookStatus.IGNORED,
                attempts=WebhookEvent.attempts + 1,
                processed_at=done["processed_at"],
                last_error=None,
            )
            .where((WebhookEvent.event_id == event_id) & WebhookEvent.status.not_in(list(DONE)))
            .execute()
        )
        if not marked:
            remember(redis, event_id)
            return Outcome(DUPLICATE)
    remember(redis, event_id)
    WEBHOOK_RESULTS.labels(type_, WebhookStatus.IGNORED).inc()
    return Outcome(WebhookStatus.IGNORED)


def hold_due_now(order_id: str) -> bool:
    """Whether the order is PENDING with a HELD reservation already past its expiry."""
    return (
        Reservation.select()
        .join(Order, on=(Reservation.order == Order.id))
        .where(
            (Reservation.order == order_id)
            & (Reservation.status == ReservationStatus.HELD)
            & (Reservation.expires_at <= utcnow())
            & (Order.state == PENDING)
        )
        .exists()
    )


# What the re-reads before the event's transaction need of its order (its id, its
# session and intent ids: ``hosted.session_of_intent``), the key first (never NULL). Only
# these columns: the handler works on the whole row, re-read and locked in the
# transaction (:func:`lock_row_and_order`).
EVENT_ORDER_COLUMNS: tuple[peewee.Field, ...] = (
    Order.id,
    Order.checkout_session_id,
    Order.payment_intent_id,
)


def order_of_event_query(order_id: str) -> peewee.Select:
    """The read of an event's order before its transaction: EVENT_ORDER_COLUMNS."""
    return Order.select(*EVENT_ORDER_COLUMNS).where(Order.id == order_id)


def _order_of(row: tuple[Any, ...] | None) -> Order | None:
    """An Order holding EVENT_ORDER_COLUMNS' values of ``row`` (None: no row)."""
    return None if row is None else statements.instance(Order, row, EVENT_ORDER_COLUMNS)


def lock_row_and_order(row_id: int, order_id: str) -> tuple[WebhookEvent, Order]:
    """Re-read an inbox row and its event's order in the current transaction, both
    row-locked on PostgreSQL, in one statement (orders are never deleted)."""

    def query() -> peewee.Select:
        joined = (
            WebhookEvent.select(WebhookEvent, Order)
            .join(Order, on=(Order.id == order_id), attr="locked_order")
            .where(WebhookEvent.id == row_id)
            .paginate(1, 1)  # as peewee's get()
        )
        return joined.for_update() if is_postgres() else joined

    found = statements.run(
        "webhooks.lock_row_and_order", query, [order_id, row_id, 1, 0]
    ).fetchone()
    if found is None:
        missing: type[Exception] = WebhookEvent.DoesNotExist  # type: ignore[attr-defined]
        raise missing(f"no inbox row {row_id} beside order {order_id}")  # as peewee's get()
    mine = statements.width(WebhookEvent)
    row = statements.instance(WebhookEvent, found[:mine])
    return row, statements.instance(Order, found[mine:])


def lock_row(row_id: int) -> WebhookEvent:
    """Re-read an inbox row in the current transaction, row-locked on PostgreSQL."""
    query = WebhookEvent.select().where(WebhookEvent.id == row_id)
    return (query.for_update() if is_postgres() else query).get()


def mark(row: WebhookEvent, status: str) -> None:
    """Mark an inbox row done (``processed`` or ``ignored``), counting the attempt.

    ``row``: as read locked in the current transaction, so its ``attempts`` is the
    row's (no other writer can change it before the commit).
    """
    done: dict[peewee.Field, Any] = {
        WebhookEvent.status: status,
        WebhookEvent.attempts: row.attempts + 1,
        WebhookEvent.processed_at: utcnow(),
        WebhookEvent.last_error: None,
    }
    statements.update(WebhookEvent, row.id, done)


def finish_ignored(row: WebhookEvent, type_: str, redis: Redis) -> Outcome:
    """Events we do not handle or that are not ours: acknowledged, never applied."""
    with database().atomic():
        locked = lock_row(row.id)
        if locked.status not in DONE:
            mark(locked, WebhookStatus.IGNORED)
    remember(redis, row.event_id)
    WEBHOOK_RESULTS.labels(type_, WebhookStatus.IGNORED).inc()
    return Outcome(WebhookStatus.IGNORED)


def finish_malformed(row: WebhookEvent, type_: str, problem: str) -> Outcome:
    """A handled event of the wrong shape: failed once, with the error; never retried."""
    note_failure(row.id, MalformedEvent(problem))
    WEBHOOK_RESULTS.labels(type_, WebhookStatus.FAILED).inc()
    # The event id and the problem only: the payload stays in the inbox, out of the logs.
    log.error("malformed Stripe event %s (%s): %s", row.event_id, type_, problem)
    return Outcome(WebhookStatus.FAILED)


def note_failure(row_id: int, exc: Exception) -> None:
    """Keep a failed attempt visible (status failed, attempts, last error); never done.

    The attempt that reaches :data:`MAX_ATTEMPTS` marks the row ``dead`` (the actor's
    retries are exhausted): counted, logged at ERROR, left for a replay by hand.
    """
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    try:
        with database().atomic():
            row = lock_row(row_id)
            if row.status in DONE:
                return
            attempts = row.attempts + 1
            dead = attempts >= MAX_ATTEMPTS
            status = WebhookStatus.DEAD if dead else WebhookStatus.FAILED
            WebhookEvent.update(status=status, attempts=attempts, last_error=error).where(
                (WebhookEvent.id == row_id) & (WebhookEvent.status.not_in(list(DONE)))
            ).execute()
    except Exception:
        log.exception("could not record the failure of webhook row %s", row_id)
        return
    if dead and row.status != WebhookStatus.DEAD:
        DEAD_LETTERS.inc()
        log.error(
            "webhook event %s (%s) is dead after %s attempts: %s",
            row.event_id,
            row.type,
            attempts,
            error,
        )


def revive(event_id: str) -> bool:
    """A replay by hand: a dead row gets a fresh retry budget (``received``, 0 attempts).

    True if the row was dead. Other rows are left as they are (a replay of a processed
    event changes nothing, I3).
    """
    with database().atomic():
        revived = (
            WebhookEvent.update(status=WebhookStatus.RECEIVED, attempts=0)
            .where(
                (WebhookEvent.event_id == event_id) & (WebhookEvent.status == WebhookStatus.DEAD)
            )
            .execute()
        )
    return revived == 1


def dead_count() -> int:
    """How many inbox rows are dead (for the clock's alert)."""
    return WebhookEvent.select().where(WebhookEvent.status == WebhookStatus.DEAD).count()


def remember(redis: Redis, event_id: str) -> None:
    """The fast-path skip key, written only once the database says the event is done;
    the kept body goes in the same round trip (the inbox row holds it), and both with
    the order lock's release when the actor holds one (``with_lock_release``)."""

    def writes(pipe: Pipeline) -> None:
        pipe.set(keys.event_seen(event_id), "1", ex=keys.EVENT_SEEN_TTL_SECONDS)
        pipe.delete(keys.event_body(event_id))

    try:
        with_lock_release(redis, writes)
    except Exception:  # only an optimisation: the inbox row is the truth
        log.warning("could not set the dedupe key of %s", event_id)


def retryable_failed(limit: int = 100, *, older_than: datetime | None = None) -> list[str]:
    """The event ids of failed or never-finished inbox rows to re-enqueue (the clock's
    sweep). Only the id column is read: the actor loads the payload itself, and a sweep
    every 5 s would otherwise fetch up to ``limit`` payloads it drops."""
    condition = WebhookEvent.status.in_([WebhookStatus.FAILED, WebhookStatus.RECEIVED])
    # A malformed event fails the same way every time: it waits for a replay by hand.
    condition &= WebhookEvent.last_error.is_null() | ~WebhookEvent.last_error.startswith(
        MalformedEvent.__name__
    )
    if older_than is not None:
        condition &= WebhookEvent.created_at < older_than
    rows: Any = (  # tuples(): each row is (event_id,)
        WebhookEvent.select(WebhookEvent.event_id)
        .where(condition)
        .order_by(WebhookEvent.id)
        .limit(limit)
        .tuples()
    )
    return [str(row[0]) for row in rows]
