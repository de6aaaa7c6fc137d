"""Admin product upsert: JWT rules (401/403), validation, DB and Redis together."""

from __future__ import annotations

from typing import Any

import pytest

URL = "/api/admin/products/NEW-1"
BODY = {
    "name": "New",
    "description": "Fresh.",
    "price": {"amount": 1000, "currency": "usd"},
    "stockOnHand": 7,
}


def product_row(sku: str) -> Any:
    from models import Product

    return Product.get_or_none(Product.sku == sku)


class TestAuth:
    def test_no_token_is_401(self, client: Any, runtime: Any) -> None:
        response = client.put(URL, json=BODY)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"

    @pytest.mark.parametrize(
        "header",
        ["Bearer not-a-jwt", "Basic abc", "Bearer "],
    )
    def test_invalid_token_is_401(self, client: Any, runtime: Any, header: str) -> None:
        assert client.put(URL, json=BODY, headers={"Authorization": header}).status_code == 401

    def test_wrong_secret_and_expired_are_401(
        self, client: Any, runtime: Any, make_token: Any
    ) -> None:
        forged = make_token({"sub": "a", "role": "admin"}, secret="another-secret-entirely")
        expired = make_token({"sub": "a", "role": "admin", "exp": 1})
        for token in (forged, expired):
            assert client.put(URL, json=BODY, headers={"x-auth-token": token}).status_code == 401

    def test_non_admin_is_403(self, client: Any, runtime: Any, make_token: Any) -> None:
        token = make_token({"user": {"id": "u-1"}, "role": "customer"})
        response = client.put(URL, json=BODY, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
        assert product_row("NEW-1") is None

    def test_admin_role_inside_user_is_accepted(
        self, client: Any, runtime: Any, make_token: Any
    ) -> None:
        token = make_token({"user": {"id": "a-1", "role": "admin"}})
        assert client.put(URL, json=BODY, headers={"x-auth-token": token}).status_code == 200


class TestUpsert:
    def test_creates_product_and_counter(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        response = client.put(URL, json=BODY, headers=admin_headers)
        assert response.status_code == 200
        assert response.get_json() == {
            "id": "NEW-1", "sku": "NEW-1", "name": "New", "description": "Fresh.",
            "price": {"amount": 1000, "currency": "usd"}, "priceDecimal": "10.00",
            "imageUrl": None, "category": None, "brand": None, "available": 7, "active": True,
        }  # fmt: skip
        assert product_row("NEW-1").stock_on_hand == 7
        assert runtime.redis.hget("{shop}:avail", "NEW-1") == "7"

    def test_update_moves_the_counter_by_the_delta(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        from app.services.inventory import Inventory

        client.put(URL, json=BODY, headers=admin_headers)
        Inventory(runtime.redis).hold("res-a", [("NEW-1", 3)], 900)
        response = client.put(URL, json={**BODY, "stockOnHand": 10}, headers=admin_headers)
        assert response.get_json()["available"] == 7  # 10 on hand - 3 held
        assert runtime.redis.hget("{shop}:avail", "NEW-1") == "7"

    def test_cannot_drop_below_held_units(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        from app.services.inventory import Inventory

        client.put(URL, json=BODY, headers=admin_headers)
        Inventory(runtime.redis).hold("res-a", [("NEW-1", 5)], 900)
        response = client.put(URL, json={**BODY, "stockOnHand": 3}, headers=admin_headers)
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_state"
        assert product_row("NEW-1").stock_on_hand == 7  # rolled back
        assert runtime.redis.hget("{shop}:avail", "NEW-1") == "2"

    def test_zero_stock_product_is_listed_sold_out(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        client.put(URL, json={**BODY, "stockOnHand": 0}, headers=admin_headers)
        listed = client.get("/api/products").get_json()
        assert listed == [
            {"id": "NEW-1", "sku": "NEW-1", "name": "New", "description": "Fresh.",
             "price": {"amount": 1000, "currency": "usd"}, "priceDecimal": "10.00",
             "imageUrl": None, "category": None, "brand": None, "available": 0}
        ]  # fmt: skip

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"stockOnHand": "7"}, "stockOnHand"),
            ({"stockOnHand": -1}, "stockOnHand"),
            ({"price": {"amount": 10.5, "currency": "usd"}}, "price.amount"),
            ({"price": {"amount": 100, "currency": "eur"}}, "price.currency"),
            ({"name": ""}, "name"),
        ],
    )
    def test_bad_body(
        self, client: Any, runtime: Any, admin_headers: Any, change: dict[str, Any], field: str
    ) -> None:
        response = client.put(URL, json={**BODY, **change}, headers=admin_headers)
        assert response.status_code == 400
        assert field in response.get_json()["error"]["fields"]
        assert product_row("NEW-1") is None
        assert runtime.redis.hget("{shop}:avail", "NEW-1") is None

    def test_bad_sku_in_path(self, client: Any, runtime: Any, admin_headers: Any) -> None:
        response = client.put("/api/admin/products/bad:sku", json=BODY, headers=admin_headers)
        assert response.status_code == 400


class TestProducts:
    def test_lists_all_with_availability(self, client: Any, runtime: Any, catalog: Any) -> None:
        from app.services.inventory import Inventory

        Inventory(runtime.redis).hold("res-b", [("MUG", 2)], 900)
        listed = {p["sku"]: p for p in client.get("/api/products").get_json()}
        assert listed["MUG"]["available"] == 3
        assert listed["GONE"]["available"] == 0
        assert listed["TEE-M"]["price"] == {"amount": 2500, "currency": "usd"}

    def test_after_redis_loss_products_show_zero(
        self, client: Any, runtime: Any, catalog: Any
    ) -> None:
        runtime.redis.flushall()
        assert {p["available"] for p in client.get("/api/products").get_json()} == {0}
