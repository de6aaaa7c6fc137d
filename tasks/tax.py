"""Actor: record a Stripe-Tax-priced order's tax transaction and refund reversals."""

from __future__ import annotations

from app.runtime import current
from app.services import tax_records
from app.services.records import order_lock


def sync_tax(order_id: str) -> None:
    """Bring Stripe Tax up to date with the order (idempotent; Stripe errors retried)."""
    runtime = current()
    with order_lock(runtime.redis, order_id):
        tax_records.sync_tax(order_id, runtime)
