"""The promotion aggregate: codes and their terms. Redemptions are the orders that carry
the code (``orders.promotion_code``) and did not end FAILED or CANCELED."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow


class Promotion(BaseModel):
    """A promotion code: percent or amount off, window, limits. The record that
    ``{shop}:promo:<code>`` (what admit.lua reads) is written from and rebuilt from."""

    code = peewee.CharField(max_length=40, primary_key=True)  # upper case
    percent_off = peewee.IntegerField(null=True)
    amount_off = peewee.IntegerField(null=True)
    currency = peewee.CharField(max_length=3)
    min_subtotal = peewee.IntegerField(null=True)
    starts_at = peewee.DateTimeField(null=True)
    ends_at = peewee.DateTimeField(null=True)
    max_redemptions = peewee.IntegerField(null=True)
    per_buyer_limit = peewee.IntegerField(null=True)
    active = peewee.BooleanField(default=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "promotions"
