"""0003: wave-2 payments — manual capture on the order row.

``orders.capture_method`` (automatic | manual), ``orders.amount_captured`` (what was
captured; None until then) and ``orders.capture_before`` (when an authorisation lapses).
0001 creates its tables from the model classes as they stand, so on a fresh database
these columns exist already: each is added only when missing.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator, migrate

COLUMNS: dict[str, peewee.Field] = {
    "capture_method": peewee.CharField(max_length=16, default="automatic"),
    "amount_captured": peewee.IntegerField(null=True),
    "capture_before": peewee.DateTimeField(null=True),
}


def migrator_for(db: peewee.Database) -> SchemaMigrator:
    """The playhouse migrator of ``db``'s dialect."""
    if isinstance(db, peewee.PostgresqlDatabase):
        return PostgresqlMigrator(db)
    return SqliteMigrator(db)


def up(db: peewee.Database) -> None:
    """Add the manual-capture columns to ``orders`` (those not there yet)."""
    present = {column.name for column in db.get_columns("orders")}
    migrator = migrator_for(db)
    operations = [
        migrator.add_column("orders", name, field)
        for name, field in COLUMNS.items()
        if name not in present
    ]
    if operations:
        migrate(*operations)
