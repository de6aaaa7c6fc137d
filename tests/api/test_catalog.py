"""The catalog for storefronts and the catalog sync: listing filters, one product, the
storefront fields, PUT /api/admin/products (all or nothing), inactive products neither
listed nor sold, and the quote's purchasable / shortItems."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_checkout import KEY, QUOTE, SUBMIT, error_of

SYNC = "/api/admin/products"


def product(sku: str, **overrides: Any) -> dict[str, Any]:
    """One product of a sync body."""
    body = {
        "sku": sku,
        "name": f"Name {sku}",
        "description": "Desc.",
        "price": {"amount": 1400, "currency": "usd"},
        "stockOnHand": 5,
    }
    return {**body, **overrides}


def avail(redis: Any, sku: str) -> str | None:
    return redis.hget("{shop}:avail", sku)


def parked(redis: Any, sku: str) -> str | None:
    return redis.hget("{shop}:avail:inactive", sku)


@pytest.fixture
def shop(client: Any, runtime: Any, admin_headers: Any) -> Any:
    """A small synced catalog: two categories, one inactive product."""
    products = [
        product("MUG-1", name="Blue Mug", category="Home", brand="Kiln",
                imageUrl="https://cdn.example.com/mug.jpg"),
        product("MUG-2", name="Red mug", category="home", stockOnHand=0),
        product("TEE-1", name="Tee", category="Apparel", price={"amount": 2500, "currency": "usd"}),
        product("OLD-1", name="Old mug", category="Home", active=False),
    ]  # fmt: skip
    response = client.put(SYNC, json={"products": products}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"upserted": 4}
    return runtime


class TestListing:
    def test_storefront_fields(self, client: Any, shop: Any) -> None:
        listed = client.get("/api/products").get_json()
        assert [p["sku"] for p in listed] == ["MUG-1", "MUG-2", "TEE-1"]  # OLD-1 inactive
        assert listed[0] == {
            "id": "MUG-1", "sku": "MUG-1", "name": "Blue Mug", "description": "Desc.",
            "price": {"amount": 1400, "currency": "usd"}, "priceDecimal": "14.00",
            "imageUrl": "https://cdn.example.com/mug.jpg", "category": "Home", "brand": "Kiln",
            "available": 5,
        }  # fmt: skip
        assert listed[1]["available"] == 0  # sold out, still listed
        assert listed[2]["imageUrl"] is None and listed[2]["brand"] is None

    def test_category_is_case_insensitive_and_q_searches_names(
        self, client: Any, shop: Any
    ) -> None:
        by_category = client.get("/api/products?category=HOME").get_json()
        assert [p["sku"] for p in by_category] == ["MUG-1", "MUG-2"]
        by_name = client.get("/api/products?q=MUG").get_json()
        assert [p["sku"] for p in by_name] == ["MUG-1", "MUG-2"]
        both = client.get("/api/products?category=home&q=red").get_json()
        assert [p["sku"] for p in both] == ["MUG-2"]
        assert client.get("/api/products?q=%25").get_json() == []  # no wildcards
        assert len(client.get("/api/products?category=&q=").get_json()) == 3

    def test_unknown_query_parameter_is_refused(self, client: Any, shop: Any) -> None:
        response = client.get("/api/products?page=2")
        assert response.status_code == 400
        assert error_of(response)["fields"] == {"page": ["Unknown field."]}

    def test_one_product_or_404(self, client: Any, shop: Any) -> None:
        one = client.get("/api/products/TEE-1")
        assert one.status_code == 200
        assert one.get_json()["priceDecimal"] == "25.00"
        assert one.get_json()["id"] == "TEE-1"
        for sku in ("NOPE", "OLD-1"):
            response = client.get(f"/api/products/{sku}")
            assert response.status_code == 404
            assert error_of(response)["code"] == "not_found"


class TestPriceDecimal:
    @pytest.mark.parametrize(
        ("amount", "currency", "text"),
        [(1400, "usd", "14.00"), (5, "usd", "0.05"), (0, "eur", "0.00"), (1400, "jpy", "1400"),
         (1234, "kwd", "1.234"), (99_999_999, "usd", "999999.99")],
    )  # fmt: skip
    def test_exact_string_from_minor_units(self, amount: int, currency: str, text: str) -> None:
        from app.services.money import decimal_amount

        assert decimal_amount(amount, currency) == text


class TestSync:
    def test_needs_an_admin(self, client: Any, runtime: Any) -> None:
        assert client.put(SYNC, json={"products": [product("A")]}).status_code == 401

    def test_replay_is_idempotent(self, client: Any, shop: Any, admin_headers: Any) -> None:
        from app.services.inventory import Inventory

        Inventory(shop.redis).hold("res-1", [("MUG-1", 2)], 900)
        body = {"products": [product("MUG-1", stockOnHand=8), product("NEW-1")]}
        for _ in range(2):
            response = client.put(SYNC, json=body, headers=admin_headers)
            assert response.get_json() == {"upserted": 2}
            assert avail(shop.redis, "MUG-1") == "6"  # 8 on hand - 2 held
            assert avail(shop.redis, "NEW-1") == "5"

    def test_a_retried_sync_after_a_sale_resells_nothing(
        self, client: Any, paid_order: Any, admin_headers: Any
    ) -> None:
        """The ERP's count of 5 TEE, sent again after 2 were sold (not yet shipped)."""
        body = {"products": [product("TEE", stockOnHand=5)]}
        for _ in range(2):
            response = client.put(SYNC, json=body, headers=admin_headers)
            assert response.status_code == 200, response.get_json()
            assert client.get("/api/products/TEE").get_json()["available"] == 3

    def test_a_count_below_the_units_sold_is_refused(
        self, client: Any, paid_order: Any, admin_headers: Any
    ) -> None:
        body = {"products": [product("TEE", stockOnHand=1)]}
        response = client.put(SYNC, json=body, headers=admin_headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "invalid_state"
        assert "TEE counts 1 but 2 are sold" in error_of(response)["message"]

    def test_one_bad_product_writes_nothing(
        self, client: Any, shop: Any, admin_headers: Any
    ) -> None:
        from models import Product

        body = {
            "products": [
                product("MUG-1", stockOnHand=50),
                product("NEW-2", price={"amount": "14.00", "currency": "usd"}, image="x.jpg"),
                product("NEW-3", imageUrl="javascript:alert(1)", active="yes"),
            ]
        }
        response = client.put(SYNC, json=body, headers=admin_headers)
        assert response.status_code == 400
        assert error_of(response)["fields"] == {
            "products.1.price.amount": ["Must be an integer."],
            "products.1.image": ["Unknown field."],
            "products.2.imageUrl": ["Must be an http(s) URL or a path starting with /."],
            "products.2.active": ["Must be true or false."],
        }
        assert Product.get_by_id("MUG-1").stock_on_hand == 5
        assert Product.get_or_none(Product.sku == "NEW-2") is None
        assert avail(shop.redis, "MUG-1") == "5"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"products": []}, "products"),
            ({"products": [product(f"S-{i}") for i in range(1001)]}, "products"),
            ({"products": [product("A"), product("A")]}, "products.1.sku"),
            ({"products": [product("A", price={"amount": 1, "currency": "eur"})]},
             "products.0.price.currency"),
            ({"products": [product("bad sku")]}, "products.0.sku"),
            ({"items": []}, "items"),
        ],
    )  # fmt: skip
    def test_validation(
        self, client: Any, runtime: Any, admin_headers: Any, body: Any, field: str
    ) -> None:
        response = client.put(SYNC, json=body, headers=admin_headers)
        assert response.status_code == 400
        assert field in error_of(response)["fields"]

    def test_stock_below_held_refuses_the_whole_sync(
        self, client: Any, shop: Any, admin_headers: Any
    ) -> None:
        """The single upsert's rule: on hand may not drop below what is held (409)."""
        from app.services.inventory import Inventory
        from models import Product

        Inventory(shop.redis).hold("res-1", [("MUG-1", 4)], 900)
        body = {"products": [product("TEE-1", stockOnHand=9), product("MUG-1", stockOnHand=3)]}
        response = client.put(SYNC, json=body, headers=admin_headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "invalid_state"
        assert "MUG-1" in error_of(response)["message"]
        assert Product.get_by_id("TEE-1").stock_on_hand == 5  # rolled back with the rest
        assert (avail(shop.redis, "TEE-1"), avail(shop.redis, "MUG-1")) == ("5", "1")

    def test_single_upsert_takes_the_new_fields_and_refuses_unknown_ones(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        body = {k: v for k, v in product("X").items() if k != "sku"}
        response = client.put(
            "/api/admin/products/X", json={**body, "brand": "B", "active": False},
            headers=admin_headers,
        )  # fmt: skip
        assert response.status_code == 200
        assert (response.get_json()["brand"], response.get_json()["active"]) == ("B", False)
        response = client.put("/api/admin/products/X", json={**body, "image": "/x.jpg"},
                              headers=admin_headers)  # fmt: skip
        assert response.status_code == 400
        assert error_of(response)["fields"] == {"image": ["Unknown field."]}


class TestInactive:
    def test_not_sold_like_an_unknown_sku(
        self, client: Any, shop: Any, broker: Any, submit_body: Any
    ) -> None:
        items = [{"sku": "MUG-1", "quantity": 1}, {"sku": "OLD-1", "quantity": 1}]
        for url, body, headers in (
            (QUOTE, {"items": items}, {}),
            (SUBMIT, submit_body(items=items), KEY),
        ):
            response = client.post(url, json=body, headers=headers)
            assert response.status_code == 400
            assert error_of(response)["fields"] == {"items.1.sku": ["Unknown SKU."]}
        assert avail(shop.redis, "OLD-1") is None and parked(shop.redis, "OLD-1") == "5"

    def test_deactivated_with_a_hold_then_reactivated(
        self, client: Any, shop: Any, admin_headers: Any
    ) -> None:
        """The parked count stays exact: a release while inactive lands there too."""
        from app.services.inventory import Inventory

        inventory = Inventory(shop.redis)
        inventory.hold("res-1", [("MUG-1", 2)], 900)
        off = {"products": [product("MUG-1", name="Blue Mug", active=False)]}
        assert client.put(SYNC, json=off, headers=admin_headers).status_code == 200
        assert (avail(shop.redis, "MUG-1"), parked(shop.redis, "MUG-1")) == (None, "3")
        assert "MUG-1" not in [p["sku"] for p in client.get("/api/products").get_json()]
        assert inventory.release("res-1")
        inventory.restock([("MUG-1", 1)])
        assert (avail(shop.redis, "MUG-1"), parked(shop.redis, "MUG-1")) == (None, "6")
        on = {"products": [product("MUG-1", stockOnHand=7)]}
        assert client.put(SYNC, json=on, headers=admin_headers).status_code == 200
        assert (avail(shop.redis, "MUG-1"), parked(shop.redis, "MUG-1")) == ("8", None)

    def test_rebuild_keeps_inactive_products_parked(self, shop: Any) -> None:
        from app.services.inventory import rebuild_from_db

        shop.redis.flushall()
        rebuild_from_db(shop.redis)
        assert (avail(shop.redis, "OLD-1"), parked(shop.redis, "OLD-1")) == (None, "5")
        assert avail(shop.redis, "MUG-1") == "5"


class TestQuoteAvailability:
    def test_short_lines_are_priced_and_listed(self, client: Any, shop: Any) -> None:
        items = [{"sku": "MUG-1", "quantity": 7}, {"sku": "MUG-2", "quantity": 1},
                 {"sku": "TEE-1", "quantity": 1}]  # fmt: skip
        response = client.post(QUOTE, json={"items": items})
        assert response.status_code == 200
        quote = response.get_json()
        assert [line["available"] for line in quote["lineItems"]] == [5, 0, 5]
        assert quote["subtotal"] == 7 * 1400 + 1400 + 2500  # priced all the same
        assert quote["purchasable"] is False
        assert quote["shortItems"] == [
            {"sku": "MUG-1", "name": "Blue Mug", "requested": 7, "available": 5},
            {"sku": "MUG-2", "name": "Red mug", "requested": 1, "available": 0},
        ]

    def test_purchasable_cart(self, client: Any, shop: Any) -> None:
        quote = client.post(QUOTE, json={"items": [{"sku": "MUG-1", "quantity": 5}]}).get_json()
        assert (quote["purchasable"], quote["shortItems"]) == (True, [])
        assert quote["lineItems"][0]["available"] == 5
