"""The catalog as the console's admins see and change it: pages of products with their
live counters, one product with its stock history, and the edits ("price / active",
"set on hand") made through the admin API's own upsert (:mod:`app.services.catalog`).

Numbers shown per product (all in units):

- ``onHand``: the database's ``stock_on_hand`` — units not yet sold (a confirmed order
  takes its units off it);
- ``available``: the Redis counter — units a checkout may still hold (parked in
  ``{shop}:avail:inactive`` for an inactive product); ``None`` when Redis has no counter
  (lost, and ``inventory rebuild`` has not run yet);
- ``held``: ``onHand - available``, units held by open checkouts;
- ``shelf``: ``onHand`` plus the units sold and not yet shipped: what a person counting
  the shelf finds, and what "set on hand" (the upsert's ``stockOnHand``) takes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import structlog
from redis import Redis

from app.errors import InvalidRequest, NotFound
from app.schemas.products import MAX_PRICE, MAX_UNITS
from app.services import catalog, stock_adjustments
from app.services.inventory import Inventory, sold_unshipped
from models import Product

log = structlog.get_logger("app.services.catalog_admin")
PAGE_SIZE = 50


@dataclass(frozen=True)
class CatalogPage:
    """One page of products (sorted by SKU) and the SKU after which the next page starts."""

    data: list[dict[str, Any]]
    next_cursor: str | None


def catalog_page(
    redis: Redis, *, q: str | None = None, cursor: str | None = None, limit: int = PAGE_SIZE
) -> CatalogPage:
    """Every product, active or not, by SKU: ``q`` keeps those whose SKU or name contains
    it (any case; ``%`` and ``_`` are plain characters), ``cursor`` is the last SKU of the
    previous page (keyset: a page never repeats or skips a product)."""
    query = Product.select().order_by(Product.sku)
    if q:
        query = query.where(Product.sku.contains(q) | Product.name.contains(q))
    if cursor:
        query = query.where(Product.sku > cursor)
    rows = list(query.limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    counters = Inventory(redis).counters([p.sku for p in rows])
    data = [_row(p, counters.get(p.sku)) for p in rows]
    return CatalogPage(data, rows[-1].sku if more else None)


def product_detail(redis: Redis, sku: str) -> dict[str, Any]:
    """One product for its console page: the row, the counters, the shelf count and the
    stock adjustment history (newest first). NotFound for an unknown SKU."""
    product = Product.get_or_none(Product.sku == sku)
    if product is None:
        raise NotFound(f"No product {sku}.")
    row = _row(product, Inventory(redis).counters([sku]).get(sku))
    sold = sold_unshipped([sku]).get(sku, 0)
    return {
        **row,
        "description": product.description,
        "soldUnshipped": sold,
        "shelf": product.stock_on_hand + sold,
        "history": stock_adjustments.history(sku),
    }


def _row(product: Product, available: int | None) -> dict[str, Any]:
    held = None if available is None else max(product.stock_on_hand - available, 0)
    return {
        "sku": product.sku,
        "name": product.name,
        "price": {"amount": product.price_amount, "currency": product.currency},
        "active": bool(product.active),
        "onHand": product.stock_on_hand,
        "available": available,
        "held": held,
    }


def edit_product(
    redis: Redis, sku: str, *, price_amount: int, active: bool, store_currency: str, actor: str
) -> dict[str, Any]:
    """Change a product's price (minor units) and ``active``: ``PUT /api/admin/products/
    <sku>``'s upsert with every other field as it is, its stock left alone. Logged with
    the ``actor``."""
    if isinstance(price_amount, bool) or not 0 <= price_amount <= MAX_PRICE:
        message = "The price is above the most a product may cost."
        raise InvalidRequest(message, fields={"price": [message]})
    item = replace(_current(sku), price_amount=price_amount, active=active)
    product = catalog.upsert_product(redis, item, store_currency=store_currency, set_stock=False)
    log.info("product_edited", sku=sku, price=price_amount, active=active, actor=actor)
    return product


def set_on_hand(
    redis: Redis, sku: str, shelf: int, *, store_currency: str, actor: str
) -> dict[str, Any]:
    """Set the shelf count (``stockOnHand`` of the upsert): units sold and not yet
    shipped are still on the shelf and are subtracted; InvalidState when the count is
    below them or below what is held (nothing changes then). Logged with the ``actor``."""
    if isinstance(shelf, bool) or not isinstance(shelf, int) or not 0 <= shelf <= MAX_UNITS:
        message = f"Enter the units on the shelf, 0 to {MAX_UNITS:,}."
        raise InvalidRequest(message, fields={"stock_on_hand": [message]})
    item = replace(_current(sku), stock_on_hand=shelf)
    product = catalog.upsert_product(redis, item, store_currency=store_currency)
    log.info("product_shelf_counted", sku=sku, shelf=shelf, actor=actor)
    return product


def _current(sku: str) -> catalog.ProductInput:
    """The product as an upsert of itself (NotFound for an unknown SKU)."""
    product = Product.get_or_none(Product.sku == sku)
    if product is None:
        raise NotFound(f"No product {sku}.")
    return catalog.ProductInput(
        sku=product.sku,
        name=product.name,
        description=product.description,
        price_amount=product.price_amount,
        currency=product.currency,
        stock_on_hand=product.stock_on_hand,
        image_url=product.image_url,
        category=product.category,
        brand=product.brand,
        active=bool(product.active),
    )
