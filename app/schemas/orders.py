"""Schemas of the order endpoints."""

from __future__ import annotations

from marshmallow import validate

from app.schemas.common import BaseSchema, Email, Text


class TrackSchema(BaseSchema):
    """``POST /api/orders/track``."""

    order_number = Text(required=True, data_key="orderNumber", validate=validate.Length(max=32))
    email = Email(required=True, validate=validate.Length(max=254))
