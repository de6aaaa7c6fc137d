"""Returning buyers: the one Stripe Customer of each JWT user id (wave 3, issue 18)."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow


class BuyerCustomer(BaseModel):
    """A JWT user id and its Stripe Customer.

    ``stripe_customer_id`` is None after an erasure deleted the Customer; ``generation``
    counts those erasures, so the next Customer is created with a new idempotency key
    (Stripe replays a key for 24 hours, and would hand back the deleted Customer).
    """

    user_id = peewee.CharField(max_length=128, primary_key=True)
    stripe_customer_id = peewee.CharField(max_length=255, unique=True, null=True)
    generation = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "buyer_customers"
