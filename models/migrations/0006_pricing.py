"""0006: pricing. ``orders.discount``, a promotion's discount in minor units (default
0; ``total = subtotal - discount + shipping + tax``), and ``orders.shipping_option``, the
chosen shipping option's id (nullable).

As in 0002, 0001 creates the tables from the models as they stand, so each column is
added only where it is missing.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

TABLE = "orders"


COLUMNS = {
    "discount": peewee.IntegerField(default=0),
    "shipping_option": peewee.CharField(max_length=64, null=True),
}


def up(db: peewee.Database) -> None:
    """Add the columns where they are missing."""
    present = {column.name for column in db.get_columns(TABLE)}
    migrator = SchemaMigrator.from_database(db)
    for name, column in COLUMNS.items():
        if name not in present:
            migrate(migrator.add_column(TABLE, name, column))
