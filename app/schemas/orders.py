"""Schemas of the order endpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas.common import BaseSchema, Text


class TrackSchema(BaseSchema):
    """``POST /api/orders/track``."""

    order_number = Text(required=True, data_key="orderNumber", validate=validate.Length(max=32))
    email = fields.Email(required=True, validate=validate.Length(max=254))
