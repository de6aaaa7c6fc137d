"""0007: ``operators``, the console's accounts (argon2id hashes, role, disabled, epoch).

A new table only. 0001 creates the tables from the models as they stand, so on a fresh
database it already exists; ``safe=True`` makes this the same change everywhere.
"""

from __future__ import annotations

import peewee

from models.operator import Operator


def up(db: peewee.Database) -> None:
    """Create ``operators`` where it is missing."""
    db.create_tables([Operator], safe=True)
