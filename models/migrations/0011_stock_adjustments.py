"""0011: ``stock_adjustments``, the console's "+/- N with a reason" per product (issue 16).

0001 creates the tables from the models as they stand, so on a fresh database the table
exists already; this creates it where it is missing.
"""

from __future__ import annotations

import peewee

from models.stock_adjustment import StockAdjustment


def up(db: peewee.Database) -> None:
    """Create ``stock_adjustments`` where it is missing."""
    db.create_tables([StockAdjustment], safe=True)
