"""The catalog aggregate: products with server-side prices and stock on hand."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow


class Product(BaseModel):
    """A sellable item; ``stock_on_hand`` is the record Redis counters are rebuilt from.

    An inactive product (``active`` false) is neither listed nor sold; its row, stock and
    orders stay (migration 0002 added ``image_url``, ``category``, ``brand``, ``active``).
    """

    sku = peewee.CharField(max_length=64, primary_key=True)
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    price_amount = peewee.IntegerField(constraints=[peewee.Check("price_amount >= 0")])
    currency = peewee.CharField(max_length=3)
    stock_on_hand = peewee.IntegerField(default=0, constraints=[peewee.Check("stock_on_hand >= 0")])
    image_url = peewee.CharField(max_length=2048, null=True)
    category = peewee.CharField(max_length=100, null=True)
    brand = peewee.CharField(max_length=100, null=True)
    active = peewee.BooleanField(default=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
