"""0004: shop webhooks — the ``shop_events`` outbox and ``shop_webhook_deliveries``.

New tables only. 0001 creates the tables from the model classes as they stand, so on a
fresh database they already exist when this runs; ``safe=True`` makes it the same one
change on old and new databases alike.
"""

from __future__ import annotations

import peewee

from models.shop_webhook import ShopDelivery, ShopEvent


def up(db: peewee.Database) -> None:
    """Create the two tables and their indexes where they are missing."""
    db.create_tables([ShopEvent, ShopDelivery], safe=True)
