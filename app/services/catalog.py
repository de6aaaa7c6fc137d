"""The catalog: products with live availability, upserts, and the demo seed.

Prices and stock on hand live in the database (the record); units that may still be
held live in Redis (``{shop}:avail``). An upsert moves both together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis

from app.services.inventory import Inventory
from app.services.pricing import ProductPrice
from models import Product
from models.db import database, is_postgres, utcnow


@dataclass(frozen=True)
class ProductInput:
    """An admin's product write: everything ``PUT /api/admin/products/<sku>`` carries."""

    sku: str
    name: str
    description: str
    price_amount: int
    currency: str
    stock_on_hand: int


DEMO_CATALOG = (
    ProductInput("TSHIRT-BLK-M", "Black T-shirt (M)", "Organic cotton.", 2500, "usd", 25),
    ProductInput("TSHIRT-WHT-M", "White T-shirt (M)", "Organic cotton.", 2500, "usd", 25),
    ProductInput("MUG-LOGO", "Logo mug", "Stoneware, 350 ml.", 1400, "usd", 40),
    ProductInput("CAP-NAVY", "Navy cap", "Six panels, adjustable.", 2200, "usd", 10),
    ProductInput("TOTE-NAT", "Canvas tote", "Natural canvas, long handles.", 1800, "usd", 3),
    ProductInput("POSTER-LTD", "Limited poster", "Signed print, 50 x 70 cm.", 4500, "usd", 0),
)  # fmt: skip


def product_view(product: Any, available: int) -> dict[str, Any]:
    """The contract's product object."""
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": {"amount": product.price_amount, "currency": product.currency},
        "available": max(0, min(available, product.stock_on_hand)),
    }


def list_products(redis: Redis) -> list[dict[str, Any]]:
    """Every product, sold-out ones included, with availability from one HMGET."""
    products = list(Product.select().order_by(Product.sku))
    available = Inventory(redis).available([p.sku for p in products])
    return [product_view(p, available.get(p.sku, 0)) for p in products]


def product_prices(skus: Iterable[str]) -> dict[str, ProductPrice]:
    """The catalog prices pricing needs, for the given SKUs (unknown ones left out)."""
    wanted = list(dict.fromkeys(skus))
    if not wanted:
        return {}
    rows = Product.select().where(Product.sku.in_(wanted))
    return {p.sku: ProductPrice(p.sku, p.name, p.price_amount, p.currency) for p in rows}


def upsert_product(redis: Redis, data: ProductInput) -> dict[str, Any]:
    """Create or update a product; the Redis counter moves by the stock delta.

    The Redis change runs inside the database transaction: if Redis refuses (fewer
    units than are held) or fails, the row is rolled back; if the commit fails after
    Redis moved, the delta is undone. Raises InvalidState from the inventory.
    """
    inventory = Inventory(redis)
    db = database()
    applied = 0
    try:
        with db.atomic():
            query = Product.select().where(Product.sku == data.sku)
            product = (query.for_update() if is_postgres(db) else query).first()
            created = product is None
            before = 0 if product is None else product.stock_on_hand
            product = product or Product(sku=data.sku, created_at=utcnow())
            product.name = data.name
            product.description = data.description
            product.price_amount = data.price_amount
            product.currency = data.currency.lower()
            product.stock_on_hand = data.stock_on_hand
            product.updated_at = utcnow()
            product.save(force_insert=created)
            available = inventory.adjust(data.sku, data.stock_on_hand - before)
            applied = data.stock_on_hand - before
    except Exception:
        if applied:
            inventory.adjust(data.sku, -applied)  # the commit failed after Redis moved
        raise
    return product_view(product, available)


def seed_demo(redis: Redis) -> list[dict[str, Any]]:
    """Upsert the demo catalog (idempotent: re-running sets the same numbers)."""
    return [upsert_product(redis, item) for item in DEMO_CATALOG]
