"""Stock adjustments: an admin's "+/- N with a reason", one row each, the product's audit."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow

# Why stock moved (the console's short list; "other" needs a note).
ADJUSTMENT_REASONS = ("received", "damaged", "recount", "other")


class StockAdjustment(BaseModel):
    """One applied change of a product's stock on hand by ``delta`` units.

    Written in the transaction that moves ``products.stock_on_hand`` (and, in the same
    step, the Redis counter), so the history and the record never disagree.
    ``idempotency_key`` is unique: a replayed dialog finds its first row and adjusts
    nothing more. ``actor`` is ``operator:<email>`` or ``admin:<sub>``.
    """

    id = peewee.AutoField()
    sku = peewee.CharField(max_length=64, index=True)
    delta = peewee.IntegerField(constraints=[peewee.Check("delta <> 0")])
    reason = peewee.CharField(
        max_length=16,
        constraints=[peewee.Check("reason IN ('received', 'damaged', 'recount', 'other')")],
    )
    note = peewee.CharField(max_length=200, default="")
    actor = peewee.CharField(max_length=300)
    on_hand_after = peewee.IntegerField()
    idempotency_key = peewee.CharField(max_length=255, unique=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "stock_adjustments"
