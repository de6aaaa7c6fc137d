"""``POST /api/admin/products/<sku>/stock-adjustments``: the admin API's stock
adjustment (the console's service), audited as ``admin:<sub>``, once per key."""

from __future__ import annotations

from typing import Any

from app.services.inventory import Inventory
from models import Product, StockAdjustment
from tests.fakes import stock

URL = "/api/admin/products/TEE/stock-adjustments"


def post(client: Any, headers: dict[str, str], body: Any, key: str = "api-adjust-0001") -> Any:
    return client.post(URL, json=body, headers={**headers, "Idempotency-Key": key})


class TestStockAdjustmentApi:
    def test_an_adjustment_is_applied_once_and_names_the_admin(
        self, client: Any, runtime: Any, admin_headers: dict[str, str]
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        body = {"delta": -2, "reason": "damaged", "note": "dropped"}
        first = post(client, admin_headers, body)
        assert first.status_code == 200, first.get_json()
        assert first.get_json() | {"id": 0, "createdAt": ""} == {
            "id": 0, "sku": "TEE", "delta": -2, "reason": "damaged", "note": "dropped",
            "actor": "admin:admin-1", "onHandAfter": 3, "createdAt": "",
        }  # fmt: skip
        again = post(client, admin_headers, body)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == first.get_json()
        assert Product.get_by_id("TEE").stock_on_hand == 3
        assert runtime.redis.hget("{shop}:avail", "TEE") == "3"
        other = post(client, admin_headers, {**body, "delta": -1})
        assert other.status_code == 422
        assert other.get_json()["error"]["code"] == "idempotency_key_reused"

    def test_below_what_is_free_is_409_insufficient_stock(
        self, client: Any, runtime: Any, admin_headers: dict[str, str]
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        Inventory(runtime.redis).hold("res-1", [("TEE", 4)], ttl_seconds=900)
        answer = post(client, admin_headers, {"delta": -2, "reason": "recount"})
        assert answer.status_code == 409
        assert answer.get_json()["error"]["code"] == "insufficient_stock"
        assert StockAdjustment.select().count() == 0

    def test_bad_bodies_and_callers(
        self, client: Any, runtime: Any, admin_headers: dict[str, str], make_token: Any
    ) -> None:
        stock(runtime.redis, "TEE", on_hand=5)
        bad = post(client, admin_headers, {"delta": "2", "reason": "lost"})
        assert bad.status_code == 400
        assert set(bad.get_json()["error"]["fields"]) == {"delta", "reason"}
        zero = post(client, admin_headers, {"delta": 0, "reason": "recount"})
        assert zero.get_json()["error"]["fields"] == {
            "delta": ["Enter a whole number of units other than 0, like 12 or -2."]
        }
        no_key = client.post(URL, json={"delta": 1, "reason": "received"}, headers=admin_headers)
        assert no_key.status_code == 400
        unknown = client.post(
            "/api/admin/products/NOPE/stock-adjustments",
            json={"delta": 1, "reason": "received"},
            headers={**admin_headers, "Idempotency-Key": "api-adjust-0002"},
        )
        assert unknown.status_code == 404
        buyer = {"Authorization": f"Bearer {make_token({'sub': 'u-1'})}"}
        assert post(client, buyer, {"delta": 1, "reason": "received"}).status_code == 403
        assert Product.get_by_id("TEE").stock_on_hand == 5
