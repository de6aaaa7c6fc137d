"""``GET /api/products``: the catalog with live availability."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.context import current_runtime
from app.services import catalog

blueprint = Blueprint("products", __name__, url_prefix="/api")


@blueprint.get("/products")
def list_products() -> Response:
    """One plain list, sold-out products included (``available: 0``)."""
    return jsonify(catalog.list_products(current_runtime().redis))
