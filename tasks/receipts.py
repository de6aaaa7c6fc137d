"""Actor: deliver one queued receipt from the outbox."""

from __future__ import annotations

from app.runtime import current
from app.services import receipts


def send_receipt(outbox_id: int) -> None:
    """Send the receipt of outbox row ``outbox_id`` unless it was already sent."""
    runtime = current()
    receipts.send_receipt(outbox_id, runtime.mailer, runtime.config.mail_from)
