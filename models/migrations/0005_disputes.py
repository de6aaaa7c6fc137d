"""0005: ``orders.dispute``, the latest dispute on an order's payment (JSON, nullable).

``{id, status, reason, amount, currency, evidenceDueBy}`` from Stripe's
``charge.dispute.*`` events. As in 0002, 0001 creates the tables from the models as
they stand, so the column is added only where it is missing.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

TABLE = "orders"


def up(db: peewee.Database) -> None:
    """Add ``dispute`` where it is missing."""
    if "dispute" in {column.name for column in db.get_columns(TABLE)}:
        return
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_column(TABLE, "dispute", peewee.TextField(null=True)))
