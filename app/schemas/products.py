"""Schemas of the catalog endpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas.common import BaseSchema, StrictInteger, Text


class PriceSchema(BaseSchema):
    """An amount in minor units with its ISO 4217 currency."""

    amount = StrictInteger(required=True, validate=validate.Range(min=0, max=99_999_999))
    currency = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="Must be an ISO 4217 code."),
    )


class ProductSchema(BaseSchema):
    """A product as listed: price and live availability."""

    sku = fields.String()
    name = fields.String()
    description = fields.String()
    price = fields.Nested(PriceSchema)
    available = fields.Integer()


class ProductUpsertSchema(BaseSchema):
    """``PUT /api/admin/products/<sku>``."""

    name = Text(required=True, validate=validate.Length(max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    price = fields.Nested(PriceSchema, required=True)
    stock_on_hand = StrictInteger(
        required=True, data_key="stockOnHand", validate=validate.Range(min=0, max=10_000_000)
    )
