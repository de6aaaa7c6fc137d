"""0008: pricing. The ``promotions`` table; on ``orders``: ``discount`` in minor units
(default 0; ``total = subtotal - discount + shipping + tax``), ``shipping_option`` (the
chosen option's id), ``promotion_code`` (indexed: the redemptions are counted from it)
and ``promotion`` (the terms as admission saw them, JSON), all nullable.

As in 0002 and 0004, 0001 creates the tables from the models as they stand, so each step
is skipped where its table, column or index is there.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from models.promotion import Promotion

TABLE = "orders"
INDEX = "orders_promotion_code"


COLUMNS = {
    "discount": peewee.IntegerField(default=0),
    "shipping_option": peewee.CharField(max_length=64, null=True),
    "promotion_code": peewee.CharField(max_length=40, null=True),
    "promotion": peewee.TextField(null=True),
}


def up(db: peewee.Database) -> None:
    """Create ``promotions``; add the order columns and the index where missing."""
    db.create_tables([Promotion], safe=True)
    present = {column.name for column in db.get_columns(TABLE)}
    migrator = SchemaMigrator.from_database(db)
    for name, column in COLUMNS.items():
        if name not in present:
            migrate(migrator.add_column(TABLE, name, column))
    if INDEX not in {index.name for index in db.get_indexes(TABLE)}:
        migrate(migrator.add_index(TABLE, ("promotion_code",), False))
