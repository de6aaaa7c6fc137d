"""0006: hosted Checkout on the order row (issue 18).

``orders.checkout_session_id`` (unique: a session pays one order, I10),
``orders.checkout_url`` and ``orders.checkout_expires_at``. 0001 creates its tables from
the model classes as they stand, so on a fresh database these exist already: each is
added only when missing.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

TABLE = "orders"
COLUMNS: dict[str, peewee.Field] = {
    "checkout_session_id": peewee.CharField(max_length=255, null=True),
    "checkout_url": peewee.TextField(null=True),
    "checkout_expires_at": peewee.DateTimeField(null=True),
}
INDEX = "orders_checkout_session_id"


def up(db: peewee.Database) -> None:
    """Add the hosted-Checkout columns (and the unique index) where they are missing."""
    present = {column.name for column in db.get_columns(TABLE)}
    migrator = SchemaMigrator.from_database(db)
    operations = [
        migrator.add_column(TABLE, name, field)
        for name, field in COLUMNS.items()
        if name not in present
    ]
    if INDEX not in {index.name for index in db.get_indexes(TABLE)}:
        operations.append(migrator.add_index(TABLE, ("checkout_session_id",), unique=True))
    if operations:
        migrate(*operations)
