"""app/services/catalog_admin.py: the Catalog's numbers (on hand, held, available, the
shelf) and its edits through the admin upsert."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import InvalidRequest, InvalidState, NotFound
from app.services import catalog_admin
from app.services.inventory import Inventory
from app.services.webhooks import handle_event
from models import Order, Product
from tests.fakes import stock

ACTOR = "operator:admin@shop.example"


@pytest.fixture
def paid(runtime: Any, gateway: Any, order: Order) -> Order:
    """The ``order`` fixture (2 of 5 TEE) paid: 2 sold, not shipped; the row records 3."""
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    return order


class TestNumbers:
    def test_held_is_on_hand_less_available_and_the_shelf_adds_the_sold(
        self, runtime: Any, paid: Order
    ) -> None:
        Inventory(runtime.redis).hold("res-9", [("TEE", 1)], ttl_seconds=900)
        detail = catalog_admin.product_detail(runtime.redis, "TEE")
        assert (detail["onHand"], detail["held"], detail["available"]) == (3, 1, 2)
        assert (detail["soldUnshipped"], detail["shelf"]) == (2, 5)

    def test_a_parked_counter_is_read_and_a_lost_one_is_none(self, runtime: Any) -> None:
        stock(runtime.redis, "A", on_hand=4)
        stock(runtime.redis, "B", on_hand=4)
        runtime.redis.hdel("{shop}:avail", "A", "B")
        runtime.redis.hset("{shop}:avail:inactive", "A", 4)
        rows = {row["sku"]: row for row in catalog_admin.catalog_page(runtime.redis).data}
        assert (rows["A"]["available"], rows["A"]["held"]) == (4, 0)
        assert (rows["B"]["available"], rows["B"]["held"]) == (None, None)

    def test_an_unknown_product(self, runtime: Any) -> None:
        with pytest.raises(NotFound):
            catalog_admin.product_detail(runtime.redis, "NOPE")


class TestEdits:
    def test_price_and_active_leave_stock_and_other_fields(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=6)
        Product.update(category="Apparel", description="Soft.").execute()
        catalog_admin.edit_product(
            runtime.redis, "TEE", price_amount=0, active=True, store_currency="usd", actor=ACTOR
        )
        row = Product.get_by_id("TEE")
        assert (row.price_amount, row.stock_on_hand, row.category, row.description) == (
            0, 6, "Apparel", "Soft.",
        )  # fmt: skip

    def test_limits_are_named(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=6)
        with pytest.raises(InvalidRequest) as price:
            catalog_admin.edit_product(
                runtime.redis,
                "TEE",
                price_amount=100_000_000,
                active=True,
                store_currency="usd",
                actor=ACTOR,
            )
        assert "price" in price.value.extra["fields"]
        with pytest.raises(InvalidRequest) as shelf:
            catalog_admin.set_on_hand(runtime.redis, "TEE", -1, store_currency="usd", actor=ACTOR)
        assert "stock_on_hand" in shelf.value.extra["fields"]

    def test_set_on_hand_below_what_is_held_changes_nothing(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=6)
        Inventory(runtime.redis).hold("res-1", [("TEE", 4)], ttl_seconds=900)
        with pytest.raises(InvalidState):
            catalog_admin.set_on_hand(runtime.redis, "TEE", 3, store_currency="usd", actor=ACTOR)
        assert Product.get_by_id("TEE").stock_on_hand == 6
        catalog_admin.set_on_hand(runtime.redis, "TEE", 9, store_currency="usd", actor=ACTOR)
        assert (
            Product.get_by_id("TEE").stock_on_hand,
            runtime.redis.hget("{shop}:avail", "TEE"),
        ) == (
            9,
            "5",
        )
