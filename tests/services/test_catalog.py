"""Catalog: listing with availability, upserts moving DB and Redis together, the seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.errors import InvalidState
from app.services.catalog import (
    DEMO_CATALOG,
    ProductInput,
    list_products,
    product_prices,
    seed_demo,
    upsert_product,
)
from app.services.inventory import Inventory

STATIC = Path(__file__).resolve().parents[2] / "app" / "web" / "static"

ITEM = ProductInput("SKU-1", "One", "First.", 1000, "usd", 5)


class TestUpsert:
    def test_create_sets_the_counter(self, redis: Any, db: Any) -> None:
        view = upsert_product(redis, ITEM)
        assert view["available"] == 5
        assert redis.hget("{shop}:avail", "SKU-1") == "5"

    def test_update_applies_the_delta_only(self, redis: Any, db: Any) -> None:
        upsert_product(redis, ITEM)
        Inventory(redis).hold("r1", [("SKU-1", 2)], 900)
        upsert_product(redis, ProductInput("SKU-1", "One", "", 1000, "usd", 8))
        assert redis.hget("{shop}:avail", "SKU-1") == "6"  # 8 on hand - 2 held

    def test_refused_redis_change_rolls_the_row_back(self, redis: Any, db: Any) -> None:
        from models import Product

        upsert_product(redis, ITEM)
        Inventory(redis).hold("r1", [("SKU-1", 4)], 900)
        with pytest.raises(InvalidState):
            upsert_product(redis, ProductInput("SKU-1", "Renamed", "", 1, "usd", 2))
        row = Product.get(Product.sku == "SKU-1")
        assert (row.name, row.stock_on_hand) == ("One", 5)
        assert redis.hget("{shop}:avail", "SKU-1") == "1"

    def test_failed_commit_undoes_the_redis_delta(
        self, redis: Any, db: Any, monkeypatch: Any
    ) -> None:
        upsert_product(redis, ITEM)

        def broken_commit(*_a: Any, **_k: Any) -> None:
            raise RuntimeError("commit failed")

        monkeypatch.setattr(db, "commit", broken_commit)
        with pytest.raises(RuntimeError):
            upsert_product(redis, ProductInput("SKU-1", "One", "", 1000, "usd", 9))
        assert redis.hget("{shop}:avail", "SKU-1") == "5"


class TestPricesBesideTheStock:
    """The catalog script writes each unit price to ``{shop}:price`` with the counter,
    where admission checks a cart's total; the rebuild restores them (I9)."""

    def test_an_upsert_writes_the_price(self, redis: Any, db: Any) -> None:
        upsert_product(redis, ITEM)
        assert redis.hget("{shop}:price", "SKU-1") == "1000"
        upsert_product(redis, ProductInput("SKU-1", "One", "", 1250, "usd", 5))
        assert redis.hget("{shop}:price", "SKU-1") == "1250"

    def test_a_failed_commit_puts_the_old_price_back(
        self, redis: Any, db: Any, monkeypatch: Any
    ) -> None:
        upsert_product(redis, ITEM)

        def broken_commit(*_a: Any, **_k: Any) -> None:
            raise RuntimeError("commit failed")

        monkeypatch.setattr(db, "commit", broken_commit)
        with pytest.raises(RuntimeError):
            upsert_product(redis, ProductInput("SKU-1", "One", "", 99_000, "usd", 5))
        assert redis.hget("{shop}:price", "SKU-1") == "1000"

    def test_the_rebuild_restores_the_prices(self, redis: Any, db: Any) -> None:
        from app.services.inventory import rebuild_from_db

        upsert_product(redis, ITEM)
        upsert_product(redis, ProductInput("OFF", "Off", "", 700, "usd", 1, active=False))
        redis.flushall()
        rebuild_from_db(redis)
        assert redis.hgetall("{shop}:price") == {"SKU-1": "1000", "OFF": "700"}


class TestListing:
    def test_sorted_with_sold_out_included(self, redis: Any, db: Any) -> None:
        upsert_product(redis, ProductInput("B", "B", "", 100, "usd", 0))
        upsert_product(redis, ProductInput("A", "A", "", 100, "usd", 3))
        listed = list_products(redis)
        assert [(p["sku"], p["available"]) for p in listed] == [("A", 3), ("B", 0)]

    def test_prices_for_pricing(self, redis: Any, db: Any) -> None:
        upsert_product(redis, ITEM)
        prices = product_prices(["SKU-1", "NOPE"])
        assert list(prices) == ["SKU-1"]
        assert prices["SKU-1"].unit_amount == 1000


class TestSeed:
    def test_seed_is_idempotent(self, redis: Any, db: Any) -> None:
        seed_demo(redis)
        seed_demo(redis)
        listed = {p["sku"]: p["available"] for p in list_products(redis)}
        assert listed == {item.sku: item.stock_on_hand for item in DEMO_CATALOG}

    def test_every_demo_product_has_a_picture_of_ours_at_the_apps_url(
        self, redis: Any, db: Any
    ) -> None:
        seed_demo(redis, image_base="http://127.0.0.1:5000")
        images = {p["sku"]: p["imageUrl"] for p in list_products(redis)}
        assert set(images) == {item.sku for item in DEMO_CATALOG}
        prefix = "http://127.0.0.1:5000/static/web/catalog/"
        for url in images.values():
            assert url.startswith(prefix), url
            picture = STATIC / "catalog" / url.removeprefix(prefix)
            assert picture.is_file() and picture.stat().st_size < 2048  # small


@pytest.mark.postgres
class TestSyncOnPostgres:
    """The sync's batched insert and CASE update, and row locks, on PostgreSQL."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url

    def test_sync_creates_then_updates(self, redis: Any, db: Any) -> None:
        from app.services.catalog import upsert_products
        from models import Product

        items = [
            ProductInput(f"P-{i:03d}", f"P {i}", "", 100 + i, "usd", i, category="C",
                         active=i % 2 == 0)
            for i in range(120)
        ]  # fmt: skip
        assert len(upsert_products(redis, items)) == 120
        moved = [ProductInput(p.sku, p.name, "", p.price_amount, "usd", p.stock_on_hand + 1,
                              brand="B", active=True) for p in items]  # fmt: skip
        upsert_products(redis, moved)
        row = Product.get_by_id("P-007")
        assert (row.stock_on_hand, row.brand, row.category, row.active) == (8, "B", None, True)
        assert redis.hget("{shop}:avail", "P-007") == "8"
        assert redis.hlen("{shop}:avail:inactive") == 0


class TestStockOnHandIsTheShelfCount:
    """A sync's ``stockOnHand`` counts the units on the shelf: units sold here and not yet
    shipped are still on it, so they are subtracted again (a replayed count re-sells
    nothing); shipped units have left the count."""

    @pytest.fixture
    def paid(self, runtime: Any, gateway: Any, order: Any) -> Any:
        """The ``order`` fixture (2 of 5 TEE) paid: 2 sold, not shipped."""
        from app.services.webhooks import handle_event
        from models import Order

        intent = gateway.confirm(order.payment_intent_id)
        event = gateway.event("payment_intent.succeeded", intent)
        handle_event(event["id"], event, runtime)
        assert Order.get_by_id(order.id).state == "PAID"
        return order

    @staticmethod
    def tee(on_shelf: int) -> ProductInput:
        return ProductInput("TEE", "Product TEE", "", 2000, "usd", on_shelf)

    def test_a_replayed_count_resells_nothing(self, runtime: Any, paid: Any) -> None:
        from app.services.catalog import upsert_products
        from models import Product

        for _ in range(2):  # the ERP's count of 5, sent and sent again
            upsert_products(runtime.redis, [self.tee(5)])
            assert Product.get_by_id("TEE").stock_on_hand == 3  # 5 - 2 sold, unshipped
            assert runtime.redis.hget("{shop}:avail", "TEE") == "3"

    def test_shipped_units_have_left_the_count(self, runtime: Any, paid: Any) -> None:
        from app.services.catalog import upsert_products
        from app.services.fulfillment import update_fulfillment

        for action in ("start", "complete"):
            update_fulfillment(paid.id, action, runtime=runtime)
        upsert_products(runtime.redis, [self.tee(3)])  # 5 - 2 shipped
        assert runtime.redis.hget("{shop}:avail", "TEE") == "3"

    def test_a_count_below_the_units_sold_is_refused(self, runtime: Any, paid: Any) -> None:
        from app.services.catalog import upsert_products
        from models import Product

        with pytest.raises(InvalidState, match="TEE"):
            upsert_products(runtime.redis, [self.tee(1)])
        assert Product.get_by_id("TEE").stock_on_hand == 3
        assert runtime.redis.hget("{shop}:avail", "TEE") == "3"

    def test_units_put_back_on_sale_are_no_longer_sold(self, runtime: Any, paid: Any) -> None:
        """A capture's restock lines (one of the two TEE not taken): back on the shelf."""
        from app.services.catalog import upsert_products
        from app.services.holds import restock_lines
        from models.db import database

        with database().atomic():
            restock_lines(paid, runtime, [("TEE", 1)], reason="partial_capture", actor="admin")
        upsert_products(runtime.redis, [self.tee(5)])
        assert runtime.redis.hget("{shop}:avail", "TEE") == "4"  # 5 - 1 still sold

    def test_rebuild_after_a_replay_restores_the_same_counter(
        self, runtime: Any, paid: Any
    ) -> None:
        from app.services.catalog import upsert_products
        from app.services.inventory import rebuild_from_db

        upsert_products(runtime.redis, [self.tee(5)])
        runtime.redis.delete("{shop}:avail")
        rebuild_from_db(runtime.redis)
        assert runtime.redis.hget("{shop}:avail", "TEE") == "3"


@pytest.mark.postgres
class TestShelfCountOnPostgres(TestStockOnHandIsTheShelfCount):
    """The same, with the sold-units query (a join, JSON lines) on PostgreSQL."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url
