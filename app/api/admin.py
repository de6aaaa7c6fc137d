"""Admin endpoints of this service's HTTP edge: the product upsert."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify

from app import current_runtime
from app.api.auth import require_admin
from app.api.requests import json_object
from app.errors import InvalidRequest
from app.schemas.checkout import SKU_PATTERN
from app.schemas.common import load
from app.schemas.products import ProductUpsertSchema
from app.services import catalog

blueprint = Blueprint("admin", __name__, url_prefix="/api/admin")
_upsert_schema = ProductUpsertSchema()


@blueprint.put("/products/<sku>")
def upsert_product(sku: str) -> Response:
    """Create or update a product; database and Redis counters move together."""
    require_admin()
    if not re.match(SKU_PATTERN, sku):
        raise InvalidRequest("Invalid SKU.", fields={"sku": ["Invalid SKU format."]})
    data = load(_upsert_schema, json_object())
    runtime = current_runtime()
    if data["price"]["currency"].lower() != runtime.config.store_currency:
        message = f"This store sells in {runtime.config.store_currency.upper()}."
        raise InvalidRequest(message, fields={"price.currency": [message]})
    product = catalog.upsert_product(
        runtime.redis,
        catalog.ProductInput(
            sku=sku,
            name=data["name"],
            description=data["description"],
            price_amount=data["price"]["amount"],
            currency=data["price"]["currency"].lower(),
            stock_on_hand=data["stock_on_hand"],
        ),
    )
    return jsonify(product)
