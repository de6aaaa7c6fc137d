"""0009: ``buyer_customers``, one Stripe
Customer per JWT user id (returning buyers' saved cards, issue 18).

0001 creates the tables from the models as they stand, so on a fresh database the table
exists already; this creates it where it is missing.
"""

from __future__ import annotations

import peewee

from models.buyer import BuyerCustomer


def up(db: peewee.Database) -> None:
    """Create ``buyer_customers`` where it is missing."""
    db.create_tables([BuyerCustomer], safe=True)
