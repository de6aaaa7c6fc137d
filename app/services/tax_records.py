"""Stripe Tax bookkeeping: a paid order's tax transaction, and a reversal per refund.

Only orders priced by Stripe Tax (``tax_calculation_id`` set) take part. Once the order
is paid, :func:`sync_tax` records a tax transaction from its calculation (reference: the
order id, idempotency key ``tax-txn-<orderId>``); for every refund that succeeded it
records a reversal (reference and key from the refund id) — ``full`` when that refund
returns everything paid, else ``partial`` by the refunded amount (tax included, spread
over the lines pro rata by Stripe). Each is saved on its row and audited.

:func:`sync_tax` is the one entry point, safe to run any number of times: the payment
and refund paths enqueue it after their commit (``queue_after_commit``). A retryable
Stripe error propagates (the actor retries); a permanent one is audited as
``TAX_RECORDING_FAILED`` and logged for an operator, never retried in a loop.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from app.errors import PaymentProviderError
from app.services.records import after_commit, lock_order, touch
from app.services.state_machine import FULFILLED, FULFILLING, PAID, REFUNDED, record_event
from models import Order, OrderEvent, Refund
from models.db import database
from models.statuses import RefundStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

# States of an order whose payment succeeded (the tax is owed from then on).
PAID_STATES = frozenset({PAID, FULFILLING, FULFILLED, REFUNDED})


def queue_after_commit(runtime: Runtime, order: Order) -> None:
    """Enqueue :func:`sync_tax` for a Stripe-Tax-priced order once the transaction commits."""
    if order.tax_calculation_id:
        order_id = order.id
        after_commit(lambda: runtime.jobs.sync_tax(order_id), f"tax records of {order_id}")


def sync_tax(order_id: str, runtime: Runtime) -> None:
    """Record what Stripe Tax must know of the order: its transaction once paid, then a
    reversal for each succeeded refund without one (oldest first)."""
    order = Order.get_or_none(Order.id == order_id)
    if order is None or not order.tax_calculation_id or order.state not in PAID_STATES:
        return
    if order.tax_transaction_id is None and not record_transaction(order, runtime):
        return
    refunds = (
        Refund.select()
        .where(
            (Refund.order == order_id)
            & (Refund.status == RefundStatus.SUCCEEDED)
            & Refund.tax_reversal_id.is_null()
        )
        .order_by(Refund.created_at)
    )
    for refund in refunds:
        reverse_refund(Order.get_by_id(order_id), refund, runtime)


def behind(limit: int = 100, *, older_than: datetime) -> list[str]:
    """Orders whose Stripe Tax records lag (a lost ``sync_tax`` message), for the clock's
    sweep: paid without a transaction, or with a succeeded refund without a reversal,
    unchanged since ``older_than``. Orders with a permanent refusal are left to a person."""
    refused = OrderEvent.select(OrderEvent.order).where(OrderEvent.type == "TAX_RECORDING_FAILED")
    unrecorded = Order.select(Order.id).where(
        Order.tax_calculation_id.is_null(False)
        & Order.tax_transaction_id.is_null()
        & Order.state.in_(PAID_STATES)
        & (Order.updated_at < older_than)
        & Order.id.not_in(refused)
    )
    unreversed = (
        Order.select(Order.id)
        .join(Refund)
        .where(
            Order.tax_transaction_id.is_null(False)
            & (Refund.status == RefundStatus.SUCCEEDED)
            & Refund.tax_reversal_id.is_null()
            & (Refund.updated_at < older_than)
            & Order.id.not_in(refused)
        )
    )
    found = [row.id for row in unrecorded.limit(limit)]
    found += [row.id for row in unreversed.limit(limit)]
    return list(dict.fromkeys(found))[:limit]


def record_transaction(order: Order, runtime: Runtime) -> bool:
    """The tax transaction from the order's calculation; False when Stripe refused it."""
    assert order.tax_calculation_id is not None
    try:
        transaction_id = runtime.gateway.record_tax_transaction(
            calculation_id=order.tax_calculation_id,
            reference=order.id,
            idempotency_key=f"tax-txn-{order.id}",
        )
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        failed(order, "transaction", exc)
        return False
    with database().atomic():
        order = lock_order(order.id)
        if order.tax_transaction_id is None:
            touch(order, tax_transaction_id=transaction_id)
            payload = {
                "transactionId": transaction_id,
                "calculationId": order.tax_calculation_id,
                "tax": order.tax,
            }
            record_event(order, "TAX_TRANSACTION_RECORDED", payload, "worker")
    return True


def reverse_refund(order: Order, refund: Refund, runtime: Runtime) -> None:
    """Reverse the tax of one succeeded refund: in full when it returns all that was
    paid, else by its amount."""
    assert order.tax_transaction_id is not None
    paid = order.total if order.amount_captured is None else order.amount_captured
    full = refund.amount >= paid
    try:
        reversal_id = runtime.gateway.reverse_tax_transaction(
            transaction_id=order.tax_transaction_id,
            reference=f"refund-{refund.id}",
            flat_amount=None if full else refund.amount,
            idempotency_key=f"tax-reversal-{refund.id}",
        )
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        failed(order, "reversal", exc, refund_id=refund.id)
        return
    with database().atomic():
        fresh = Refund.get_by_id(refund.id)
        if fresh.tax_reversal_id is not None:
            return
        fresh.tax_reversal_id = reversal_id
        fresh.save()
        payload = {
            "reversalId": reversal_id,
            "refundId": refund.id,
            "mode": "full" if full else "partial",
            "amount": refund.amount,
        }
        record_event(order, "TAX_REVERSAL_RECORDED", payload, "worker")


def failed(
    order: Order, what: str, exc: PaymentProviderError, *, refund_id: str | None = None
) -> None:
    """Audit a permanent refusal (an operator records it by hand at Stripe)."""
    log.error("order %s: Stripe Tax refused the %s: %s", order.id, what, exc.message)
    payload = {"what": what, "message": exc.message, "providerCode": exc.provider_code}
    if refund_id is not None:
        payload["refundId"] = refund_id
    with database().atomic():
        record_event(order, "TAX_RECORDING_FAILED", payload, "worker")
