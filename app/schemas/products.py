"""Schemas of the catalog endpoints: listings, one product, the admin upsert and sync."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.schemas.checkout import SKU_PATTERN
from app.schemas.common import BaseSchema, StrictBoolean, StrictInteger, Text
from models.stock_adjustment import ADJUSTMENT_REASONS

MAX_SYNC = 1000
# The most units one product's stock (or one adjustment of it) may count.
MAX_UNITS = 10_000_000
# The most a unit price may be, in minor units (Stripe's largest charge).
MAX_PRICE = 99_999_999
# An absolute http(s) URL or a path on the shop's own origin ("/images/mug.jpg"); never
# `javascript:` or `data:` — storefronts put this straight into an <img src>. No
# backslash anywhere: browsers read it as "/", so "/\evil.example/x.png" is "//evil…",
# another origin.
IMAGE_URL = r"^(https?://[^\s/\\]+|/(?![/\\]))[^\s\\]*$"


class PriceSchema(BaseSchema):
    """An amount in minor units with its ISO 4217 currency."""

    amount = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_PRICE))
    currency = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="Must be an ISO 4217 code."),
    )


class ProductSchema(BaseSchema):
    """A product as listed: price (minor units and exact decimal), live availability."""

    id = fields.String(metadata={"description": "The SKU again, for storefronts keyed on id."})
    sku = fields.String()
    name = fields.String()
    description = fields.String()
    price = fields.Nested(PriceSchema)
    price_decimal = fields.String(
        data_key="priceDecimal",
        metadata={"description": 'Exact decimal string of price.amount: "14.00", JPY "1400".'},
    )
    image_url = fields.String(data_key="imageUrl", allow_none=True)
    category = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    available = fields.Integer()


class AdminProductSchema(ProductSchema):
    """A product as the admin upsert answers it: ``active`` as well."""

    active = fields.Boolean()


class ProductUpsertSchema(BaseSchema):
    """``PUT /api/admin/products/<sku>``: the whole product (absent optionals are cleared)."""

    name = Text(required=True, validate=validate.Length(max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    price = fields.Nested(PriceSchema, required=True)
    stock_on_hand = StrictInteger(
        required=True, data_key="stockOnHand", validate=validate.Range(min=0, max=MAX_UNITS)
    )
    image_url = Text(
        load_default=None,
        allow_none=True,
        data_key="imageUrl",
        validate=[
            validate.Length(max=2048),
            validate.Regexp(IMAGE_URL, error="Must be an http(s) URL or a path starting with /."),
        ],
    )
    category = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    brand = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    active = StrictBoolean(load_default=True)


class SyncedProductSchema(ProductUpsertSchema):
    """One product of a catalog sync: the upsert's fields plus its ``sku``."""

    sku = Text(required=True, validate=validate.Regexp(SKU_PATTERN, error="Invalid SKU format."))


class ProductSyncSchema(BaseSchema):
    """``PUT /api/admin/products``: 1-1,000 products, each SKU once."""

    products = fields.List(
        fields.Nested(SyncedProductSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_SYNC, error="Send 1 to 1000 products."),
    )

    @validates_schema
    def _unique_skus(self, data: dict[str, Any], **_: Any) -> None:
        seen: set[str] = set()
        errors: dict[int, dict[str, list[str]]] = {}
        for index, product in enumerate(data.get("products") or []):
            if product["sku"] in seen:
                errors[index] = {"sku": ["Duplicate SKU: each product once per sync."]}
            seen.add(product["sku"])
        if errors:
            raise ValidationError({"products": errors})


class ProductSyncResponseSchema(BaseSchema):
    """200 body of a catalog sync."""

    upserted = fields.Integer()


class ProductListQuerySchema(BaseSchema):
    """``GET /api/products?category=&q=`` (both optional; empty means absent)."""

    category = fields.String(load_default=None, validate=validate.Length(max=100))
    q = fields.String(load_default=None, validate=validate.Length(max=200))


class StockAdjustmentRequestSchema(BaseSchema):
    """``POST /api/admin/products/<sku>/stock-adjustments``: a delta with a reason."""

    delta = StrictInteger(
        required=True,
        validate=validate.Range(min=-MAX_UNITS, max=MAX_UNITS),
        metadata={"description": "Units to add (> 0) or remove (< 0); not 0."},
    )
    reason = fields.String(required=True, validate=validate.OneOf(ADJUSTMENT_REASONS))
    note = Text(
        load_default="",
        validate=validate.Length(max=200),
        metadata={"description": 'Free text; required when reason is "other".'},
    )


class StockAdjustmentSchema(BaseSchema):
    """One recorded stock adjustment (the answer, and the product's history)."""

    id = fields.Integer()
    sku = fields.String()
    delta = fields.Integer()
    reason = fields.String(validate=validate.OneOf(ADJUSTMENT_REASONS))
    note = fields.String()
    actor = fields.String(metadata={"description": "admin:<sub> or operator:<email>."})
    on_hand_after = fields.Integer(data_key="onHandAfter")
    created_at = fields.String(data_key="createdAt")
