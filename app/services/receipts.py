"""Receipts through the outbox: queued with the payment, sent afterwards by an actor.

:func:`queue_receipt` runs inside the transaction that marks the order PAID, so a paid
order always has its receipt queued; :func:`send_receipt` delivers it at most once per
successful send (a sent row is never sent again).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from app.gateways.mail import Message
from app.services.pricing import format_amount
from app.services.state_machine import record_event
from models import Order, Outbox
from models.db import database, is_postgres, utcnow
from models.statuses import OutboxStatus

if TYPE_CHECKING:
    from app.gateways.mail import Mailer

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


def queue_receipt(order: Order, actor: str = "worker") -> int:
    """Queue the receipt of ``order`` (once per order); return the outbox row id."""
    row, created = Outbox.get_or_create(
        key=f"receipt:{order.id}",
        defaults={"kind": "receipt", "order": order, "payload": {"email": order.email}},
    )
    if created:
        record_event(order, "RECEIPT_QUEUED", {"outboxId": row.id}, actor)
    return int(row.id)


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


def send_receipt(outbox_id: int, mailer: Mailer, sender: str) -> bool:
    """Send one queued receipt; True if sent now, False if already sent or unknown.

    A failed send raises (the actor retries) after counting the attempt; the row is
    marked ``failed`` after ``MAX_ATTEMPTS``.
    """
    db = database()
    try:
        with db.atomic():
            query = Outbox.select().where(Outbox.id == outbox_id)
            # Row lock: two workers sending one row wait for each other, then see "sent".
            row = (query.for_update() if is_postgres() else query).get_or_none()
            if row is None or row.status != OutboxStatus.PENDING:
                return False
            order = row.order
            mailer.send(render_receipt(order, sender))
            row.status, row.sent_at, row.attempts = OutboxStatus.SENT, utcnow(), row.attempts + 1
            row.save()
            record_event(order, "RECEIPT_SENT", {"outboxId": row.id, "to": order.email})
    except Exception as exc:
        note_failed_attempt(outbox_id, exc)
        raise
    return True


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
    condition = Outbox.status == OutboxStatus.PENDING
    if older_than is not None:
        condition &= Outbox.created_at < older_than
    query = Outbox.select(Outbox.id).where(condition).order_by(Outbox.id)
    return [row.id for row in query.limit(limit)]
