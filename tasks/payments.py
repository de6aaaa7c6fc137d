"""Actors of wave-2 payments: a buyer's new confirmation, an admin capture, and the
clock's check of an authorisation about to lapse."""

from __future__ import annotations

from app.runtime import current
from app.services import authorizations, confirmation
from app.services.records import order_lock


def confirm_payment(order_id: str, confirmation_token: str) -> None:
    """A new attempt on the order's intent with a ConfirmationToken (after a decline)."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        outbox_ids = confirmation.confirm_payment(order_id, confirmation_token, runtime)
    for outbox_id in outbox_ids:
        runtime.jobs.send_receipt(outbox_id)


def capture_payment(order_id: str, request_id: str) -> None:
    """Capture an AUTHORIZED order (a recorded request); then fulfilment if asked."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        outbox_ids = authorizations.capture_payment(order_id, request_id, runtime)
    for outbox_id in outbox_ids:
        runtime.jobs.send_receipt(outbox_id)


def check_authorization(order_id: str) -> None:
    """Warn the operator before an authorisation lapses; close the order once it has."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        outbox_ids = authorizations.check_authorization(order_id, runtime)
    for outbox_id in outbox_ids:
        runtime.jobs.send_receipt(outbox_id)
