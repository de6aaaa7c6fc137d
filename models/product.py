"""The catalog aggregate: products with server-side prices and stock on hand."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow


class Product(BaseModel):
    """A sellable item; ``stock_on_hand`` is the record Redis counters are rebuilt from."""

    sku = peewee.CharField(max_length=64, primary_key=True)
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    price_amount = peewee.IntegerField(constraints=[peewee.Check("price_amount >= 0")])
    currency = peewee.CharField(max_length=3)
    stock_on_hand = peewee.IntegerField(default=0, constraints=[peewee.Check("stock_on_hand >= 0")])
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
