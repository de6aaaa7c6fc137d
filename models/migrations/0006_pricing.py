"""0006: ``orders.discount``, a promotion's discount in minor units (default 0).

``total = subtotal - discount + shipping + tax``. As in 0002, 0001 creates the tables
from the models as they stand, so the column is added only where it is missing.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

TABLE = "orders"


def up(db: peewee.Database) -> None:
    """Add ``discount`` where it is missing."""
    if "discount" in {column.name for column in db.get_columns(TABLE)}:
        return
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_column(TABLE, "discount", peewee.IntegerField(default=0)))
