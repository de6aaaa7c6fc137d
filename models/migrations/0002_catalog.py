"""0002: the catalog sync's product fields: ``image_url``, ``category``, ``brand`` and
``active`` (default true, so every existing product stays listed and sold).

``playhouse.migrate`` operations, so the same steps run on SQLite and PostgreSQL. 0001
creates the tables from the model classes as they stand, so on a fresh database these
columns already exist when this runs: each step is skipped when its column or index is
there, and the migration is the same one change on old and new databases alike.
(No index on ``category``: listings filter on ``LOWER(category)`` over a catalog of a
few thousand rows at most.)
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

TABLE = "product"


def up(db: peewee.Database) -> None:
    """Add the four columns where they are missing."""
    migrator = SchemaMigrator.from_database(db)  # PostgresqlMigrator or SqliteMigrator
    present = {column.name for column in db.get_columns(TABLE)}
    new_columns = {
        "image_url": peewee.CharField(max_length=2048, null=True),
        "category": peewee.CharField(max_length=100, null=True),
        "brand": peewee.CharField(max_length=100, null=True),
        # NOT NULL with a default: existing rows become active, as they were listed before.
        "active": peewee.BooleanField(default=True),
    }
    operations = [
        migrator.add_column(TABLE, name, field)
        for name, field in new_columns.items()
        if name not in present
    ]
    migrate(*operations)
