"""Refunds of an order's payment, requested by an admin and confirmed by webhooks."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow
from models.order import Order
from models.statuses import RefundStatus

REFUND_STATUSES = tuple(s.value for s in RefundStatus)


class Refund(BaseModel):
    """One refund; ``stripe_refund_id`` is known once Stripe has created it."""

    id = peewee.CharField(max_length=64, primary_key=True)
    order = peewee.ForeignKeyField(Order, backref="refunds", on_delete="CASCADE")
    stripe_refund_id = peewee.CharField(max_length=255, unique=True, null=True)
    amount = peewee.IntegerField(constraints=[peewee.Check("amount > 0")])
    status = peewee.CharField(max_length=24, default=RefundStatus.PENDING.value)
    reason = peewee.CharField(max_length=64, null=True)
    restock = peewee.BooleanField(default=False)
    idempotency_key = peewee.CharField(max_length=255, unique=True)
    # Wave 3 (migration 0010): the Stripe Tax reversal recorded for this refund.
    tax_reversal_id = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
