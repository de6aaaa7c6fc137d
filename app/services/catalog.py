"""The catalog: products with live availability, quotes, upserts (one or a whole sync),
and the demo seed.

Prices and stock on hand live in the database (the record); units that may still be
held live in Redis (``{shop}:avail``, or ``{shop}:avail:inactive`` for a product that is
not sold), and so do the unit prices admission checks a cart's total with
(``{shop}:price``). An upsert moves them together: one transaction and one Lua script
for any number of products.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import peewee
from redis import Redis

from app.errors import InvalidRequest, InvalidState, NotFound
from app.services.inventory import CounterChange, Inventory, sold_unshipped
from app.services.money import decimal_amount
from app.services.pricing import DEFAULT_PRICER, Pricer, ProductPrice, price_cart
from app.services.pricing.promotions import PromotionTerms, refused
from models import Product, statements
from models.db import database, is_postgres, utcnow

log = logging.getLogger(__name__)

# Rows per statement: well under SQLite's bound-parameter limit, whatever its version.
BATCH = 50
# A sync of this many products is one transaction and one script (the HTTP limit).
MAX_SYNC = 1000


@dataclass(frozen=True)
class ProductInput:
    """An admin's product write: everything a product upsert carries (a full replacement)."""

    sku: str
    name: str
    description: str
    price_amount: int
    currency: str
    stock_on_hand: int
    image_url: str | None = None
    category: str | None = None
    brand: str | None = None
    active: bool = True


DEMO_CATALOG = (
    ProductInput("TSHIRT-BLK-M", "Black T-shirt (M)", "Organic cotton.", 2500, "usd", 25,
                 category="Apparel", brand="Loom & Co"),
    ProductInput("TSHIRT-WHT-M", "White T-shirt (M)", "Organic cotton.", 2500, "usd", 25,
                 category="Apparel", brand="Loom & Co"),
    ProductInput("MUG-LOGO", "Logo mug", "Stoneware, 350 ml.", 1400, "usd", 40,
                 category="Home", brand="Kiln Works"),
    ProductInput("CAP-NAVY", "Navy cap", "Six panels, adjustable.", 2200, "usd", 10,
                 category="Apparel", brand="Loom & Co"),
    ProductInput("TOTE-NAT", "Canvas tote", "Natural canvas, long handles.", 1800, "usd", 3,
                 category="Accessories", brand="Kiln Works"),
    ProductInput("POSTER-LTD", "Limited poster", "Signed print, 50 x 70 cm.", 4500, "usd", 0,
                 category="Prints"),
)  # fmt: skip
# The demo catalog's pictures: small SVGs drawn for this project, in app/web/static/catalog/
# (served by the app), so a shop's product grid has something to show against `make demo`.
DEMO_IMAGES_PATH = "/static/web/catalog"
DEMO_IMAGES = {
    "TSHIRT-BLK-M": "tshirt-black.svg",
    "TSHIRT-WHT-M": "tshirt-white.svg",
    "MUG-LOGO": "mug.svg",
    "CAP-NAVY": "cap.svg",
    "TOTE-NAT": "tote.svg",
    "POSTER-LTD": "poster.svg",
}


def product_view(product: Any, available: int) -> dict[str, Any]:
    """The contract's product object (storefront fields included)."""
    return {
        "id": product.sku,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": {"amount": product.price_amount, "currency": product.currency},
        "priceDecimal": decimal_amount(product.price_amount, product.currency),
        "imageUrl": product.image_url,
        "category": product.category,
        "brand": product.brand,
        "available": max(0, min(available, product.stock_on_hand)),
    }


def admin_product_view(product: Any, available: int) -> dict[str, Any]:
    """The product as the admin upsert answers it: the public object plus ``active``."""
    return {**product_view(product, available), "active": bool(product.active)}


def list_products(
    redis: Redis, *, category: str | None = None, q: str | None = None
) -> list[dict[str, Any]]:
    """Active products, sold-out ones included, with availability from one HMGET.

    ``category`` matches case-insensitively; ``q`` keeps names that contain it
    (case-insensitive, Unicode case folding, no wildcards).
    """
    query = Product.select().where(Product.active == True)  # noqa: E712
    if category:
        query = query.where(peewee.fn.LOWER(Product.category) == category.lower())
    products = list(query.order_by(Product.sku))
    if q:
        needle = q.casefold()
        products = [p for p in products if needle in p.name.casefold()]
    available = Inventory(redis).available([p.sku for p in products])
    return [product_view(p, available.get(p.sku, 0)) for p in products]


def get_product(redis: Redis, sku: str) -> dict[str, Any]:
    """One active product with its availability; NotFound for unknown or inactive SKUs."""
    product = Product.get_or_none((Product.sku == sku) & (Product.active == True))  # noqa: E712
    if product is None:
        raise NotFound("No such product.")
    return product_view(product, Inventory(redis).available([sku]).get(sku, 0))


def product_prices(skus: Iterable[str], *, active_only: bool = False) -> dict[str, ProductPrice]:
    """The catalog prices pricing needs, for the given SKUs (unknown ones left out).

    ``active_only`` leaves inactive products out too (a quote: not sold); the worker
    pricing an order admitted before a product was deactivated still finds it.
    """
    rows = statements.get_many(Product, dict.fromkeys(skus))  # SQL compiled once per count
    return {
        p.sku: ProductPrice(p.sku, p.name, p.price_amount, p.currency)
        for p in rows
        if p.active or not active_only
    }


def quote(
    redis: Redis,
    items: Sequence[tuple[str, int]],
    shipping_address: Mapping[str, Any] | None,
    currency: str,
    *,
    shipping_option_id: str | None = None,
    promotion: PromotionTerms | None = None,
    now: int | None = None,
    pricer: Pricer = DEFAULT_PRICER,
) -> dict[str, Any]:
    """A priced cart with each line's ``available``, ``purchasable`` and ``shortItems``,
    less ``promotion`` (InvalidRequest on ``promotionCode`` when its terms refuse the cart
    at ``now``, unix seconds), taxed by ``pricer``'s strategy (TaxUnavailable when Stripe
    Tax cannot answer).

    Stock refuses nothing here (the submit's hold decides); unknown or inactive SKUs
    are ``validation_failed`` on ``items.N.sku``, as at submit.
    """
    products = product_prices((sku for sku, _ in items), active_only=True)
    priced = price_cart(
        items,
        shipping_address,
        currency,
        products,
        shipping_option_id=shipping_option_id,
        promotion=promotion,
        pricer=pricer,
    )
    if promotion is not None:
        reason = promotion.refusal(int(time.time()) if now is None else now, priced.subtotal)
        if reason is not None:
            raise refused(reason)
    available = Inventory(redis).available([line.sku for line in priced.line_items])
    body = priced.to_dict()
    short = []
    for line in body["lineItems"]:
        line["available"] = available.get(line["sku"], 0)
        if line["quantity"] > line["available"]:
            short.append(
                {
                    "sku": line["sku"],
                    "name": line["name"],
                    "requested": line["quantity"],
                    "available": line["available"],
                }
            )
    return {**body, "purchasable": not short, "shortItems": short}


def product_input(sku: str, data: Mapping[str, Any]) -> ProductInput:
    """A ProductInput from a loaded upsert schema (snake_case keys)."""
    return ProductInput(
        sku=sku,
        name=data["name"],
        description=data.get("description") or "",
        price_amount=data["price"]["amount"],
        currency=data["price"]["currency"].lower(),
        stock_on_hand=data["stock_on_hand"],
        image_url=data.get("image_url"),
        category=data.get("category"),
        brand=data.get("brand"),
        active=data.get("active", True),
    )


def require_store_currency(
    items: Sequence[ProductInput], store_currency: str, path: Callable[[int], str]
) -> None:
    """InvalidRequest on ``path(index)`` for every product priced in another currency."""
    message = f"This store sells in {store_currency.upper()}."
    fields = {path(i): [message] for i, p in enumerate(items) if p.currency != store_currency}
    if fields:
        raise InvalidRequest(message, fields=fields)


def upsert_product(
    redis: Redis,
    data: ProductInput,
    *,
    store_currency: str | None = None,
    set_stock: bool = True,
) -> dict[str, Any]:
    """Create or update one product (a sync of one); answers the admin product view.

    ``set_stock=False`` keeps an existing product's stock (the console's price / active
    edit: a shelf count it did not ask for must not move stock)."""
    if store_currency is not None:
        require_store_currency([data], store_currency, lambda _: "price.currency")
    product, available = upsert_products(redis, [data], set_stock=set_stock)[0]
    return admin_product_view(product, available)


def sync_catalog(redis: Redis, items: Sequence[ProductInput], *, store_currency: str) -> int:
    """``PUT /api/admin/products``: check currencies, upsert all or nothing; the count."""
    require_store_currency(items, store_currency, lambda i: f"products.{i}.price.currency")
    return len(upsert_products(redis, items))


def upsert_products(
    redis: Redis, items: Sequence[ProductInput], *, set_stock: bool = True
) -> list[tuple[Product, int]]:
    """Create or update products, all or nothing: ``[(product, available), ...]``.

    An item's ``stock_on_hand`` is the shelf count (the ERP's): units sold here and not
    yet shipped are still on the shelf, so they are subtracted (:func:`stock_record`)
    and a replayed count changes nothing. ``set_stock=False`` leaves the stock of
    existing products as it is (a new product takes its count).

    One database transaction writes every row; inside it ONE Lua script moves every
    Redis counter by its stock delta and parks or unparks inactive products. If Redis
    refuses (a product's stock would drop below what is held: InvalidState, nothing
    changed) or fails, the rows roll back; if the commit fails after Redis moved, the
    changes are undone. SKUs must be unique within ``items``.
    """
    try:
        return _upsert_once(redis, items, set_stock)
    except peewee.IntegrityError:
        # PostgreSQL: another sync inserted one of these new SKUs first. Nothing reached
        # Redis (rows are written before the script); once more, they are updates.
        return _upsert_once(redis, items, set_stock)


def stock_record(
    items: Sequence[ProductInput], existing: Mapping[str, Product], set_stock: bool
) -> dict[str, int]:
    """The stock each product's row will record: shelf count - sold, not yet shipped.

    The row's ``stock_on_hand`` excludes sold units (a confirm decrements it), so the
    shelf count is translated: a count of 5 with 2 sold, unshipped, records 3 — the same
    3 as before, whenever the count is sent again. InvalidState names every product
    whose count is below its units sold and not yet shipped.
    """
    counted = [i for i in items if set_stock or i.sku not in existing]
    sold = sold_unshipped([i.sku for i in counted if i.sku in existing])
    short = [
        f"{i.sku} counts {i.stock_on_hand} but {sold[i.sku]} are sold, not yet shipped"
        for i in counted
        if i.stock_on_hand < sold.get(i.sku, 0)
    ]
    if short:
        raise InvalidState(f"Stock on hand below the units sold: {'; '.join(short)}.")
    record = {i.sku: existing[i.sku].stock_on_hand for i in items if i.sku in existing}
    record.update({i.sku: i.stock_on_hand - sold.get(i.sku, 0) for i in counted})
    return record


def _upsert_once(
    redis: Redis, items: Sequence[ProductInput], set_stock: bool
) -> list[tuple[Product, int]]:
    inventory = Inventory(redis)
    db = database()
    undo: list[CounterChange] = []
    moved = False
    try:
        with db.atomic():
            existing = _lock_rows(db, [item.sku for item in items])
            # After the row locks: a confirm in flight has committed its reservation.
            stock = stock_record(items, existing, set_stock)
            now = utcnow()
            rows: list[Product] = []
            changes: list[CounterChange] = []
            for item in items:
                before = existing.get(item.sku)
                # Read the old numbers before _apply overwrites the row in place.
                old_stock = 0 if before is None else before.stock_on_hand
                old_price = None if before is None else before.price_amount
                # Undo: the old stock, flag and price; a product that did not exist is parked.
                was_active = False if before is None else bool(before.active)
                new_stock = stock[item.sku]
                product = before or Product(sku=item.sku, created_at=now)
                rows.append(_apply(product, item, new_stock, now))
                changes.append(
                    CounterChange(item.sku, new_stock - old_stock, item.active, item.price_amount)
                )
                undo.append(CounterChange(item.sku, old_stock - new_stock, was_active, old_price))
            _write_rows(rows, existing)
            counts = inventory.sync(changes)
            moved = True
    except Exception:
        if moved:
            inventory.sync(undo)  # the commit failed after Redis moved
        raise
    return [(row, counts[row.sku]) for row in rows]


def _lock_rows(db: peewee.Database, skus: list[str]) -> dict[str, Product]:
    """The existing rows of ``skus``, locked until the transaction ends (PostgreSQL)."""
    found: dict[str, Product] = {}
    for start in range(0, len(skus), 500):
        query = Product.select().where(Product.sku.in_(skus[start : start + 500]))
        if is_postgres(db):
            query = query.order_by(Product.sku).for_update()  # one lock order: no deadlock
        found.update({p.sku: p for p in query})
    return found


def _apply(product: Product, item: ProductInput, stock: int, now: Any) -> Product:
    product.name = item.name
    product.description = item.description
    product.price_amount = item.price_amount
    product.currency = item.currency.lower()
    product.stock_on_hand = stock
    product.image_url = item.image_url
    product.category = item.category
    product.brand = item.brand
    product.active = item.active
    product.updated_at = now
    return product


def _write_rows(rows: list[Product], existing: Mapping[str, Product]) -> None:
    """Insert the new rows (a concurrent insert fails: IntegrityError) and update the rest."""
    new = [row for row in rows if row.sku not in existing]
    old = [row for row in rows if row.sku in existing]
    for start in range(0, len(new), BATCH):
        Product.insert_many([row.__data__ for row in new[start : start + BATCH]]).execute()
    if old:
        fields = [
            Product.name, Product.description, Product.price_amount, Product.currency,
            Product.stock_on_hand, Product.image_url, Product.category, Product.brand,
            Product.active, Product.updated_at,
        ]  # fmt: skip
        Product.bulk_update(old, fields=fields, batch_size=BATCH)


def existing_skus(skus: Sequence[str]) -> set[str]:
    """Which of ``skus`` the catalog already has (an import's created/updated summary)."""
    found: set[str] = set()
    for start in range(0, len(skus), 500):
        query = Product.select(Product.sku).where(Product.sku.in_(list(skus[start : start + 500])))
        found.update(p.sku for p in query)
    return found


def seed_demo(redis: Redis, image_base: str = "") -> list[dict[str, Any]]:
    """Upsert the demo catalog (idempotent: re-running sets the same numbers).

    ``image_base`` is the app's public URL: a shop on another origin shows the pictures.
    """
    items = [
        replace(item, image_url=f"{image_base}{DEMO_IMAGES_PATH}/{DEMO_IMAGES[item.sku]}")
        for item in DEMO_CATALOG
    ]
    return [admin_product_view(p, n) for p, n in upsert_products(redis, items)]
