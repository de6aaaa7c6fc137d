"""E-mails through the outbox: queued with the change that causes them, sent after commit.

:func:`queue_receipt` runs inside the transaction that marks the order PAID, so a paid
order always has its receipt queued; :func:`send_receipt` (the actor's) and
:func:`send_held` (the webhook actor's own run, after its commit: :func:`send_now`)
deliver any outbox row at most once per successful send (a sent row is never sent
again), and the clock's sweep re-queues a row left pending. Every other e-mail uses the
same outbox and actor, told apart by ``kind`` (``MailKind``, :data:`RENDERERS`): a delayed
payment on its way or failed, an authorisation about to lapse (operator), a late payment
refunded for want of stock (buyer), a dispute opened or closed (operator).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import peewee

from app.gateways.mail import Message
from app.services.money import format_amount
from app.services.state_machine import record_event
from models import Order, Outbox, statements
from models.db import database, utcnow
from models.statuses import MailKind, OutboxStatus

if TYPE_CHECKING:
    from app.gateways.mail import Mailer
    from app.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10

RECEIPT = MailKind.RECEIPT
LATE_PAYMENT_REFUND = MailKind.LATE_PAYMENT_REFUND
DISPUTE_ALERT = MailKind.DISPUTE_ALERT


def queue_receipt(order: Order, actor: str = "worker") -> int:
    """Queue the receipt of ``order`` (once per order); return the outbox row id."""
    row_id, created = _queue_once(
        order, kind="receipt", key=f"receipt:{order.id}", payload={"email": order.email}
    )
    if created:
        record_event(order, "RECEIPT_QUEUED", {"outboxId": row_id}, actor)
    return row_id


def queue_message(
    order: Order, *, kind: str, key: str, payload: dict[str, Any], actor: str = "worker"
) -> int:
    """Queue one e-mail of ``kind`` (once per ``key``); return the outbox row id."""
    if kind not in RENDERERS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    row_id, created = _queue_once(order, kind=kind, key=key, payload=payload)
    if created:
        record_event(order, "MAIL_QUEUED", {"outboxId": row_id, "kind": kind}, actor)
    return row_id


def _queue_once(order: Order, *, kind: str, key: str, payload: dict[str, Any]) -> tuple[int, bool]:
    """(The outbox row of ``key``, whether it was created now): one INSERT for a new key."""
    fields = {"key": key, "kind": kind, "order": order, "payload": payload}
    new_id = statements.insert_new(Outbox, fields, Outbox.id)  # compiled once
    if new_id is not None:
        return int(new_id), True
    return int(Outbox.get(Outbox.key == key).id), False


def queue_mail(
    order: Order, kind: str, actor: str = "worker", *, to: str | None = None, attempt: str = ""
) -> int:
    """Queue an e-mail of ``order`` (once per kind and ``attempt``); its row id."""
    key = f"{kind}:{order.id}" + (f":{attempt}" if attempt else "")
    return queue_message(
        order, kind=kind, key=key, payload={"email": to or order.email}, actor=actor
    )


def _discount_line(order: Order) -> list[str]:
    """``Discount  -5.00 USD (CODE)`` when a code was redeemed, else nothing."""
    if not order.discount:
        return []
    code = f" ({order.promotion_code})" if order.promotion_code else ""
    return [f"Discount  {format_amount(-order.discount, order.currency)}{code}"]


def render_receipt(order: Order, sender: str) -> Message:
    """The receipt e-mail of a paid order."""
    lines = [
        f"{line['quantity']} x {line.get('name') or line['sku']}  "
        f"{format_amount(line['amount'], order.currency)}"
        for line in order.line_items
    ]
    text = "\n".join(
        [
            f"Thank you for your order {order.order_number}.",
            "",
            *lines,
            "",
            f"Subtotal  {format_amount(order.subtotal, order.currency)}",
            *_discount_line(order),
            f"Shipping  {format_amount(order.shipping, order.currency)}",
            f"Tax       {format_amount(order.tax, order.currency)}",
            f"Total     {format_amount(order.total, order.currency)}",
        ]
    )
    return Message(
        to=order.email,
        subject=f"Your receipt for order {order.order_number}",
        text=text,
        sender=sender,
    )


def render_late_refund(order: Order, payload: dict[str, Any], sender: str) -> Message:
    """The buyer's notice: paid after the hold ended, the items were gone, money refunded."""
    amount = format_amount(int(payload.get("amount") or order.total), order.currency)
    text = "\n".join(
        [
            f"Your payment for order {order.order_number} arrived after we had released the",
            "items we were holding for you, and they are no longer in stock.",
            "",
            f"We are refunding {amount} to your payment method; it usually shows",
            "within 5-10 business days. We are sorry for the trouble.",
        ]
    )
    return Message(
        to=order.email,
        subject=f"Order {order.order_number} canceled: your payment is being refunded",
        text=text,
        sender=sender,
    )


def render_dispute_alert(order: Order, payload: dict[str, Any], sender: str) -> Message:
    """The operator's alert: a dispute opened, changed or closed on an order's payment."""
    dispute = payload.get("dispute") or {}
    amount = format_amount(int(dispute.get("amount") or 0), order.currency)
    text = "\n".join(
        [
            f"Dispute {dispute.get('id')} on order {order.order_number} ({order.id}):",
            f"status {dispute.get('status')}, reason {dispute.get('reason')}, amount {amount}.",
            f"Evidence due by {dispute.get('evidenceDueBy') or 'n/a'}.",
            "",
            "An evidence draft is staged at Stripe (not submitted): review and submit it",
            "in Stripe's dashboard before the deadline.",
        ]
    )
    return Message(
        to=str(payload.get("to") or sender),
        subject=f"Dispute {payload.get('event', 'update')}: order {order.order_number}",
        text=text,
        sender=sender,
    )


def render_payment_processing(order: Order, payload: dict[str, Any], sender: str) -> Message:
    """The buyer's notice: a delayed payment (a bank debit) is on its way."""
    return Message(
        to=payload.get("email") or order.email,
        subject=f"Your payment for order {order.order_number} is on its way",
        text=(
            f"We have received your payment for order {order.order_number} "
            f"({format_amount(order.total, order.currency)}). Your bank is processing "
            "it, which can take a few business days; your items are reserved meanwhile. "
            "We will e-mail you again when it has gone through."
        ),
        sender=sender,
    )


def render_payment_failed(order: Order, payload: dict[str, Any], sender: str) -> Message:
    """The buyer's notice: a delayed payment did not go through."""
    return Message(
        to=payload.get("email") or order.email,
        subject=f"Your payment for order {order.order_number} did not go through",
        text=(
            f"Your bank did not complete the payment for order {order.order_number} "
            f"({format_amount(order.total, order.currency)}). You have not been charged. "
            "Please place the order again with another payment method."
        ),
        sender=sender,
    )


def render_authorization_expiring(order: Order, payload: dict[str, Any], sender: str) -> Message:
    """The operator's warning: an authorisation lapses soon, uncaptured."""
    when = order.capture_before.strftime("%Y-%m-%d %H:%M UTC") if order.capture_before else "soon"
    return Message(
        to=payload.get("email") or order.email,
        subject=f"Capture order {order.order_number} before {when}",
        text=(
            f"The card authorisation of order {order.order_number} "
            f"({format_amount(order.total, order.currency)}) lapses at {when}. Start its "
            "fulfilment or capture it before then, or the payment is lost and the order "
            "canceled."
        ),
        sender=sender,
    )


RENDERERS: dict[str, Callable[[Order, dict[str, Any], str], Message]] = {
    MailKind.RECEIPT: lambda order, _payload, sender: render_receipt(order, sender),
    MailKind.PAYMENT_PROCESSING: render_payment_processing,
    MailKind.PAYMENT_FAILED: render_payment_failed,
    MailKind.AUTHORIZATION_EXPIRING: render_authorization_expiring,
    MailKind.LATE_PAYMENT_REFUND: render_late_refund,
    MailKind.DISPUTE_ALERT: render_dispute_alert,
}

# The order's columns the renderers read (and the audit event's key): the send reads these
# with its outbox row, not all 36 of the order's (building that SELECT and reading its
# row were a third of a send's Python calls, about 0.6 ms). A renderer reading another
# column adds it here: one left out reads as None, and tests/services/test_receipts.py
# renders every kind from these columns and from the whole row.
RENDERED = (
    Order.id,
    Order.order_number,
    Order.email,
    Order.currency,
    Order.line_items,
    Order.subtotal,
    Order.discount,
    Order.promotion_code,
    Order.shipping,
    Order.tax,
    Order.total,
    Order.capture_before,
)


def send_receipt(outbox_id: int, mailer: Mailer, sender: str) -> bool:
    """Send one queued e-mail (a receipt, or another kind); True if sent now, False if
    already sent or unknown.

    A failed send raises (the actor retries) after counting the attempt; the row is
    marked ``failed`` after ``MAX_ATTEMPTS``.
    """
    with _attempt(outbox_id), database().atomic():
        # The row with its order's RENDERED columns in one query, its SQL compiled
        # once (models.statements). Row lock (the outbox row's only: the order stays
        # free for its actors while the mail goes out): two workers sending one row
        # wait for each other, then see "sent".
        row = statements.get_joined(Outbox, outbox_id, Outbox.order, RENDERED, lock=True)
        if row is None or row.status != OutboxStatus.PENDING:
            return False
        row.status, row.sent_at, row.attempts = OutboxStatus.SENT, utcnow(), row.attempts + 1
        statements.save(row, Outbox.status, Outbox.sent_at, Outbox.attempts)
        _deliver(row, row.order, mailer, sender)
    return True


# A row no sender has tried yet: the only kind a held send claims.
UNTRIED: dict[peewee.Field, Any] = {Outbox.status: OutboxStatus.PENDING, Outbox.attempts: 0}


def send_held(outbox_id: int, order: Order, mailer: Mailer, sender: str) -> bool:
    """Send outbox row ``outbox_id`` of ``order``, which the caller holds as the committed
    transaction that queued the row left it; True if sent now, False if the row is
    already sent, or in another sender's hands.

    :func:`send_receipt` without its read: the order's columns come from ``order``, the
    row's kind and payload from the claim's ``RETURNING``. The claim is the mark itself,
    an ``UPDATE … WHERE status = 'pending' AND attempts = 0`` whose row lock spans the
    send as the queued path's ``FOR UPDATE`` does: a sweep's send waits for it and then
    sees "sent", and this claim, waiting for a sweep's send, then matches no row. A row
    whose attempt was counted already belongs to the sender retrying it. A failure
    counts the attempt (the row stays pending) and raises, as :func:`send_receipt`.
    """
    with _attempt(outbox_id), database().atomic():
        sent: dict[peewee.Field, Any] = {
            Outbox.status: OutboxStatus.SENT,
            Outbox.sent_at: utcnow(),
            Outbox.attempts: 1,
        }
        row = statements.update_returning(Outbox, outbox_id, sent, expect=UNTRIED)
        if row is None:
            return False
        if row.__data__["order"] != order.id:  # the raw foreign key: no query
            raise ValueError(f"outbox row {outbox_id} is not order {order.id}'s")
        _deliver(row, order, mailer, sender)
    return True


def _deliver(row: Outbox, order: Order, mailer: Mailer, sender: str) -> None:
    """Render and send a claimed row's mail and audit it, in the caller's transaction
    (which holds the row's lock and rolls the mark back if the send fails)."""
    message = RENDERERS[row.kind](order, row.payload or {}, sender)
    mailer.send(message)
    if row.kind == RECEIPT:
        record_event(order, "RECEIPT_SENT", {"outboxId": row.id, "to": order.email})
    else:
        record_event(order, "MAIL_SENT", {"outboxId": row.id, "kind": row.kind, "to": message.to})


@contextmanager
def _attempt(outbox_id: int) -> Iterator[None]:
    """One delivery attempt of ``outbox_id``: a failure is counted on the row, then raised."""
    try:
        yield
    except Exception as exc:
        note_failed_attempt(outbox_id, exc)
        raise


def send_now(runtime: Runtime, order: Order | None, outbox_ids: Sequence[int]) -> None:
    """Send the mails a committed transaction of ``order`` queued, from the actor run that
    committed it (no ``send_receipt`` message for each); never raises.

    A send that fails is queued to ``send_receipt`` at once: the mail stays prompt (the
    clock's sweep waits a minute), and Dramatiq's back-off retries an SMTP outage. An
    enqueue that fails too leaves the row to the sweep. ``order`` None (not held): each
    row is queued, as before.
    """
    for outbox_id in outbox_ids:
        if order is None or not _tried(outbox_id, order, runtime):
            _queue(outbox_id, runtime)


def _tried(outbox_id: int, order: Order, runtime: Runtime) -> bool:
    """Whether the send of a held row ran to its end (sent now, or in other hands)."""
    try:
        send_held(outbox_id, order, runtime.mailer, runtime.config.mail_from)
    except Exception:
        log.exception("outbox %s: the send after commit failed; queued to send again", outbox_id)
        return False
    return True


def _queue(outbox_id: int, runtime: Runtime) -> None:
    """Queue ``send_receipt(outbox_id)``; a failed enqueue is left to the clock's sweep."""
    try:
        runtime.jobs.send_receipt(outbox_id)
    except Exception:
        log.exception("outbox %s: not queued; left to the clock's sweep", outbox_id)


def note_failed_attempt(outbox_id: int, exc: Exception) -> None:
    """Count a failed delivery; give up (``failed``) after ``MAX_ATTEMPTS``."""
    with database().atomic():
        row = Outbox.get_or_none(Outbox.id == outbox_id)
        if row is None or row.status != OutboxStatus.PENDING:
            return
        row.attempts += 1
        row.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            row.status = OutboxStatus.FAILED
            log.error("receipt %s failed %s times; giving up", outbox_id, row.attempts)
        row.save()


def unsent(limit: int = 100, *, older_than: datetime | None = None) -> list[int]:
    """Ids of outbox rows still waiting to be sent (for the clock's sweep)."""
    condition = (Outbox.status == OutboxStatus.PENDING) & Outbox.kind.in_(list(RENDERERS))
    if older_than is not None:
        condition &= Outbox.created_at < older_than
    query = Outbox.select(Outbox.id).where(condition).order_by(Outbox.id)
    return [row.id for row in query.limit(limit)]
