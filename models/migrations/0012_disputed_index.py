"""0012: the partial index ``orders_disputed`` (orders with a dispute), through which the
console's Attention page and dashboard find open disputes without scanning the orders.

0001 creates the tables from the models as they stand, so on a fresh database the index
exists already; this creates it where it is missing (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import peewee


def up(db: peewee.Database) -> None:
    """Create ``orders_disputed`` where it is missing."""
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS orders_disputed ON orders (id) WHERE dispute IS NOT NULL"
    )
