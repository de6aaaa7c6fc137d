"""0010: Stripe Tax (``TAX_PROVIDER=stripe``). On ``orders``: ``tax_calculation_id``
(the calculation the order was priced with) and ``tax_transaction_id`` (the transaction
recorded from it once paid); on ``refunds``: ``tax_reversal_id`` (the reversal recorded
for that refund). All nullable: table-priced orders keep them empty.

As in 0008, 0001 creates the tables from the models as they stand, so each column is
added only where it is missing.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

COLUMNS = {
    "orders": {
        "tax_calculation_id": peewee.CharField(max_length=255, null=True),
        "tax_transaction_id": peewee.CharField(max_length=255, null=True),
    },
    "refunds": {"tax_reversal_id": peewee.CharField(max_length=255, null=True)},
}


def up(db: peewee.Database) -> None:
    """Add the Stripe Tax columns where they are missing."""
    migrator = SchemaMigrator.from_database(db)
    for table, columns in COLUMNS.items():
        if not db.table_exists(table):
            continue  # a partial schema (some tests): 0001 makes it whole with the columns
        present = {column.name for column in db.get_columns(table)}
        for name, column in columns.items():
            if name not in present:
                migrate(migrator.add_column(table, name, column))
