"""Payments of an order: applying a PaymentIntent's status to the order.

:func:`apply_intent` is the one place that turns a PaymentIntent status into order
effects; webhooks, expiry and repair sweeps all call it with the intent as Stripe
reports it *now*, so out-of-order deliveries end in the right state. Creating the
intent belongs to the checkout use case (``checkout.py``).

I10: an intent moves an order only when it is the intent the order recorded and its
amount and currency are the order's (:func:`foreign_intent`); anything else is
ignored, audited (``PAYMENT_MISMATCH_IGNORED``), counted and logged at ERROR.

Late payments are made whole (:func:`make_whole`): an intent that succeeds after its
order was closed (the cancel raced the buyer, a delayed method settled after expiry)
sells the order's lines again when stock allows (PAID); otherwise the money is
refunded and the order ends CANCELED (``stock_unavailable_after_payment``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import Counter

from app.gateways.payments import Intent
from app.services import promotions, tax_records
from app.services.holds import (
    confirm_hold,
    original_hold_expiry,
    rehold_hold,
    release_hold,
    return_confirmed,
)
from app.services.receipts import LATE_PAYMENT_REFUND, queue_mail, queue_message, queue_receipt
from app.services.records import after_commit, open_refund, publish_after_commit, touch
from app.services.state_machine import (
    AUTHORIZED,
    CANCELED,
    FAILED,
    LATE_PAYMENT,
    PAID,
    PENDING,
    STOCK_UNAVAILABLE_AFTER_PAYMENT,
    record_event,
    transition,
)
from models import Order, Refund, Reservation
from models.db import utcnow
from models.statuses import MailKind, PaymentStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)


LATE_PAYMENTS = Counter(
    "checkout_payment_after_close_total",
    "Payments that succeeded on an order already canceled or failed.",
)
LATE_OUTCOMES = Counter(
    "checkout_late_payments_total",
    "Late payments made whole, by outcome (paid: lines sold again; refunded: no stock).",
    ["outcome"],
)

MISMATCHES = Counter(
    "checkout_payment_mismatch_total",
    "Intent events ignored because the intent, amount or currency is not the order's (I10).",
)
# When Stripe does not say (an intent read without its charge): card authorisations
# stay capturable for 7 days.
DEFAULT_AUTHORIZATION_WINDOW = timedelta(days=7)
# Cancellation reasons that mean the authorisation lapsed rather than being voided:
# Stripe's own (``automatic``) and ours when the clock finds it past capture_before.
LAPSED_REASONS = frozenset({"automatic", "abandoned"})

STATUS_EVENTS: dict[str, str] = {
    PaymentStatus.PROCESSING: "PAYMENT_PROCESSING",
    PaymentStatus.REQUIRES_ACTION: "PAYMENT_REQUIRES_ACTION",
}


def apply_intent(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> list[int]:
    """Apply ``intent``'s current status to ``order`` (inside the caller's transaction).

    Returns the ids of outbox rows queued (receipts) so the caller can send them.
    An intent that is not the order's own changes nothing but the audit trail (I10).
    """
    if foreign_intent(order, intent, actor=actor):
        return []
    status = intent.status
    if status == PaymentStatus.SUCCEEDED:
        return apply_success(order, intent, runtime, actor=actor)
    if order.state == AUTHORIZED and status == PaymentStatus.CANCELED:
        lapsed = intent.cancellation_reason in LAPSED_REASONS
        close_authorization(order, intent, runtime, actor=actor, expired=lapsed)
    if order.state != PENDING:
        return []
    if status == PaymentStatus.REQUIRES_CAPTURE:
        apply_authorization(order, intent, runtime, actor=actor)
    elif status == PaymentStatus.CANCELED:
        close_after_cancel(order, intent, runtime, actor=actor, expired=False)
    elif status == PaymentStatus.REQUIRES_PAYMENT_METHOD and intent.last_error is not None:
        return note_failure(order, intent, runtime, actor=actor)
    elif status != order.payment_status:
        if status in STATUS_EVENTS:
            record_event(order, STATUS_EVENTS[status], {"intentId": intent.id}, actor)
        touch(order, payment_status=status)
        publish_after_commit(runtime, order, error=None)
        if status == PaymentStatus.PROCESSING:
            # A payment that settles later (bank debit): tell the buyer it is on its way.
            return [queue_mail(order, MailKind.PAYMENT_PROCESSING, actor, attempt=intent.id)]
    return []


def foreign_intent(order: Order, intent: Intent, *, actor: str) -> bool:
    """True (audited, counted, logged at ERROR) unless ``intent`` is ``order``'s own (I10).

    Its own: the id the order recorded (the orphan adoption in ``expiry`` records it
    before applying), the order's total and its currency.
    """
    problems = []
    if intent.id != order.payment_intent_id:
        problems.append("intent")
    if intent.amount != order.total:
        problems.append("amount")
    if intent.currency.lower() != str(order.currency).lower():
        problems.append("currency")
    if not problems:
        return False
    record_event(
        order,
        "PAYMENT_MISMATCH_IGNORED",
        {
            "intentId": intent.id,
            "status": intent.status,
            "amount": intent.amount,
            "currency": intent.currency,
            "expectedIntentId": order.payment_intent_id,
            "mismatch": problems,
        },
        actor,
    )
    MISMATCHES.inc()
    log.error(
        "PAYMENT_MISMATCH on order %s: intent %s (%s, %s %s) is not its own (%s); ignored",
        order.id,
        intent.id,
        intent.status,
        intent.amount,
        intent.currency,
        ", ".join(problems),
    )
    return True


def apply_success(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> list[int]:
    """The payment succeeded: PAID, stock confirmed, receipt queued; made whole if late."""
    if order.state in (CANCELED, FAILED):
        return make_whole(order, intent, runtime, actor=actor)
    if order.state not in (PENDING, AUTHORIZED):
        return []  # already paid: a duplicate or a replay
    captured = intent.amount_received or intent.amount
    captures = order.state == AUTHORIZED  # manual capture: the stock was confirmed then
    if captures:
        reason, event = "payment_captured", "PAYMENT_CAPTURED"
        payload = {"intentId": intent.id, "amount": captured, "authorized": intent.amount}
    else:
        reason, event = "payment_succeeded", "PAYMENT_SUCCEEDED"
        payload = {"intentId": intent.id, "amount": intent.amount, "charge": intent.latest_charge}
    # The payment's columns in the state change's UPDATE, its event in STATE_CHANGED's INSERT.
    paid = {
        Order.payment_status: PaymentStatus.SUCCEEDED,
        Order.last_payment_error: None,
        Order.amount_captured: captured,
    }
    transition(order, PAID, reason, actor, changes=paid, events=[(event, payload)])
    if not captures:
        confirm_hold(order, runtime, actor)
    tax_records.queue_after_commit(runtime, order)  # Stripe Tax: the sale's transaction
    outbox_id = queue_receipt(order, actor)
    publish_after_commit(runtime, order, error=None)
    return [outbox_id]


def apply_authorization(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> None:
    """Manual capture: the card is authorised — AUTHORIZED, stock confirmed (sold)."""
    capture_before = (
        datetime.fromtimestamp(intent.capture_before, UTC).replace(tzinfo=None)
        if intent.capture_before
        else utcnow() + DEFAULT_AUTHORIZATION_WINDOW
    )
    authorized = {
        "intentId": intent.id,
        "amount": intent.amount_capturable or intent.amount,
        "captureBefore": capture_before.isoformat() + "Z",
    }
    transition(
        order,
        AUTHORIZED,
        "payment_authorized",
        actor,
        changes={
            Order.payment_status: PaymentStatus.REQUIRES_CAPTURE,
            Order.last_payment_error: None,
            Order.capture_before: capture_before,
        },
        events=[("PAYMENT_AUTHORIZED", authorized)],
    )
    confirm_hold(order, runtime, actor)
    publish_after_commit(runtime, order, error=None)


def close_authorization(
    order: Order, intent: Intent | None, runtime: Runtime, *, actor: str, expired: bool
) -> None:
    """An AUTHORIZED order whose authorisation was voided or lapsed: stock back, CANCELED."""
    intent_id = intent.id if intent is not None else order.payment_intent_id
    reason = "authorization_expired" if expired else "authorization_voided"
    record_event(
        order,
        "PAYMENT_INTENT_CANCELED",
        {"intentId": intent_id, "reason": intent.cancellation_reason if intent else None},
        actor,
    )
    record_event(
        order,
        "AUTHORIZATION_EXPIRED" if expired else "AUTHORIZATION_VOIDED",
        {"intentId": intent_id, "amount": order.total},
        actor,
    )
    return_confirmed(order, runtime, reason=reason, actor=actor)
    transition(
        order, CANCELED, reason, actor, changes={Order.payment_status: PaymentStatus.CANCELED}
    )
    promotions.give_back_after_commit(runtime.redis, order)
    message = (
        "The payment authorisation expired." if expired else "The payment authorisation was voided."
    )
    publish_after_commit(runtime, order, error={"code": reason, "message": message})


def make_whole(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> list[int]:
    """A payment succeeded on a closed order: sell its lines again, else refund it.

    Stock allows (one Lua script, I1): the order becomes PAID (a transition the table
    allows for this reason only), stock confirmed, receipt queued. It does not: a refund
    of the whole amount (idempotency key ``late-payment:<orderId>``, submitted by the
    ``create_refund`` actor after commit), the order ends CANCELED with reason
    ``stock_unavailable_after_payment``, the buyer is e-mailed. Idempotent: a replayed
    event finds the refund and changes nothing.
    """
    refund_key = f"late-payment:{order.id}"
    if Refund.get_or_none(Refund.idempotency_key == refund_key) is not None:
        return []  # refunded already: a duplicate or a replay
    record_event(
        order,
        "PAYMENT_AFTER_CLOSE",
        {"intentId": intent.id, "amount": intent.amount, "state": order.state},
        actor,
    )
    LATE_PAYMENTS.inc()
    touch(order, payment_status=PaymentStatus.SUCCEEDED, last_payment_error=None)
    record_event(
        order,
        "PAYMENT_SUCCEEDED",
        {"intentId": intent.id, "amount": intent.amount, "charge": intent.latest_charge},
        actor,
    )
    if rehold_hold(order, runtime, actor):
        transition(order, PAID, LATE_PAYMENT, actor, payload={"intentId": intent.id})
        promotions.retake_after_commit(runtime.redis, order)
        LATE_OUTCOMES.labels("paid").inc()
        log.warning("late payment on order %s: lines sold again, order PAID", order.id)
        outbox_id = queue_receipt(order, actor)
        publish_after_commit(runtime, order, error=None)
        return [outbox_id]
    refund, _ = open_refund(
        order,
        key=refund_key,
        amount=intent.amount,
        reason=STOCK_UNAVAILABLE_AFTER_PAYMENT,
        actor=actor,
    )
    if order.state == FAILED:
        transition(order, CANCELED, STOCK_UNAVAILABLE_AFTER_PAYMENT, actor)
    # The shop's order.canceled: this event (the order may have been CANCELED already).
    record_event(
        order,
        "LATE_PAYMENT_REFUNDED",
        {
            "reason": STOCK_UNAVAILABLE_AFTER_PAYMENT,
            "intentId": intent.id,
            "refundId": refund.id,
            "amount": refund.amount,
        },
        actor,
    )
    outbox_id = queue_message(
        order,
        kind=LATE_PAYMENT_REFUND,
        key=f"late-refund:{order.id}",
        payload={"email": order.email, "amount": refund.amount, "refundId": refund.id},
        actor=actor,
    )
    jobs, refund_id = runtime.jobs, refund.id
    after_commit(lambda: jobs.create_refund(refund_id), f"refund {refund_id}")
    LATE_OUTCOMES.labels("refunded").inc()
    log.error(
        "late payment on order %s: no stock to sell again, refunding %s (%s)",
        order.id,
        refund.amount,
        refund.id,
    )
    publish_after_commit(
        runtime,
        order,
        error={
            "code": STOCK_UNAVAILABLE_AFTER_PAYMENT,
            "message": "The items sold out before the payment arrived; it is being refunded.",
        },
    )
    return [outbox_id]


def note_failure(order: Order, intent: Intent, runtime: Runtime, *, actor: str) -> list[int]:
    """A declined attempt: PAYMENT_FAILED, the order stays PENDING, the buyer may retry.

    A payment that settled later (it was ``processing``) and failed tells the buyer by
    e-mail; when it failed after the hold's original expiry (days, for a bank debit) the
    hold is made due now: the expiry cancels the intent, then releases the stock, and the
    order ends FAILED (I8: no release while the intent could still be paid).
    """
    error = intent.last_error
    assert error is not None
    details = {
        "code": "card_declined",
        "declineCode": error.decline_code or error.code,
        "message": error.message,
    }
    was_processing = order.payment_status == PaymentStatus.PROCESSING
    record_event(order, "PAYMENT_FAILED", {"intentId": intent.id, **details}, actor)
    touch(order, payment_status=PaymentStatus.REQUIRES_PAYMENT_METHOD, last_payment_error=details)
    publish_after_commit(runtime, order, error=details)
    if not was_processing:
        return []
    outbox_id = queue_mail(order, MailKind.PAYMENT_FAILED, actor, attempt=intent.id)
    first_expiry = original_hold_expiry(order)
    if first_expiry is not None and utcnow() >= first_expiry:
        end_hold_now(order)
    return [outbox_id]


def end_hold_now(order: Order) -> None:
    """Make the order's hold due now: the clock's overdue sweep runs its expiry at once."""
    Reservation.update(expires_at=utcnow(), updated_at=utcnow()).where(
        Reservation.order == order.id
    ).execute()


def close_after_cancel(
    order: Order,
    intent: Intent | None,
    runtime: Runtime,
    *,
    actor: str,
    expired: bool,
    target: str | None = None,
) -> None:
    """The intent can no longer succeed: release the hold, end FAILED or CANCELED (I8)."""
    if expired:
        record_event(order, "HOLD_EXPIRED", {"reservationId": order.reservation_id}, actor)
    if intent is not None:
        record_event(
            order,
            "PAYMENT_INTENT_CANCELED",
            {"intentId": intent.id, "reason": "abandoned" if expired else "requested_by_customer"},
            actor,
        )
    release_hold(
        order, runtime, reason="hold_expired" if expired else "intent_canceled", actor=actor
    )
    attempted = order.last_payment_error is not None or (
        intent is not None and intent.last_error is not None
    )
    target = target or (FAILED if attempted else CANCELED)
    status = PaymentStatus.CANCELED if intent is not None else order.payment_status
    reason = "hold_expired" if expired else "intent_canceled"
    transition(order, target, reason, actor, changes={Order.payment_status: status})
    promotions.give_back_after_commit(runtime.redis, order)
    message = "The hold on your items expired." if expired else "The payment was canceled."
    publish_after_commit(
        runtime,
        order,
        error={"code": "hold_expired" if expired else "payment_canceled", "message": message},
    )
