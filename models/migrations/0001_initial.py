"""0001: the initial schema (products, orders, audit events, reservations, the webhook
inbox, the outbox and refunds).

Created from the model classes as they stand at this version; later schema changes go
in new migrations using ``playhouse.migrate`` operations, never by editing this one.
"""

from __future__ import annotations

import peewee

from models import ALL_MODELS


def up(db: peewee.Database) -> None:
    """Create the initial tables and their indexes."""
    db.create_tables(list(ALL_MODELS), safe=True)
