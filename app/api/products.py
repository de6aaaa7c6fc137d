"""``GET /api/products`` and ``GET /api/products/<sku>``: the catalog, live availability."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.context import current_runtime
from app.schemas.common import load
from app.schemas.products import ProductListQuerySchema
from app.services import catalog

blueprint = Blueprint("products", __name__, url_prefix="/api")
_list_query = ProductListQuerySchema()


@blueprint.get("/products")
def list_products() -> Response:
    """One plain list of active products, sold-out ones included (``available: 0``)."""
    query = load(_list_query, request.args.to_dict())
    return jsonify(catalog.list_products(current_runtime().redis, **query))


@blueprint.get("/products/<sku>")
def get_product(sku: str) -> Response:
    """One active product; 404 ``not_found`` for unknown or inactive SKUs."""
    return jsonify(catalog.get_product(current_runtime().redis, sku))
