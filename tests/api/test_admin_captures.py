"""``POST /api/admin/orders/<id>/capture``: one capture in flight, restock lines checked."""

from __future__ import annotations

import threading
from typing import Any

from app.services import authorizations
from app.services.inventory import Inventory
from models import Order, Product


def capture_url(order_id: str) -> str:
    return f"/api/admin/orders/{order_id}/capture"


def available(runtime: Any) -> int:
    return int(Inventory(runtime.redis).available(["TEE"])["TEE"])


class TestCaptureRequests:
    def test_five_concurrent_captures_one_202_one_restock(
        self, app: Any, runtime: Any, gateway: Any, admin_headers: Any, authorized_order: Order
    ) -> None:
        start = threading.Barrier(5)
        answers: list[Any] = []

        def post(n: int) -> None:
            client = app.test_client()
            start.wait()
            answers.append(
                client.post(
                    capture_url(authorized_order.id),
                    json={"restock": [{"sku": "TEE", "quantity": 1}]},
                    headers={**admin_headers, "Idempotency-Key": f"capture-key-{n:04d}"},
                )
            )

        threads = [threading.Thread(target=post, args=(n,)) for n in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [202, 409, 409, 409, 409]
        refused = next(a for a in answers if a.status_code == 409).get_json()
        assert refused["error"]["code"] == "invalid_state"
        queued = [args for name, args in runtime.jobs.calls if name == "capture_payment"]
        assert len(queued) == 1
        for order_id, request_id in queued * 2:  # a redelivery too
            authorizations.capture_payment(order_id, request_id, runtime)
        assert Order.get_by_id(authorized_order.id).state == "PAID"
        assert [c[0] for c in gateway.calls].count("capture_intent") == 1
        assert Product.get_by_id("TEE").stock_on_hand == 9 and available(runtime) == 9

    def test_duplicate_restock_sku_is_400(
        self, client: Any, runtime: Any, admin_headers: Any, authorized_order: Order
    ) -> None:
        line = {"sku": "TEE", "quantity": 1}
        response = client.post(
            capture_url(authorized_order.id),
            json={"restock": [line, line]},
            headers={**admin_headers, "Idempotency-Key": "capture-key-dupe"},
        )
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == ["restock.1.sku"]
        assert not [name for name, _ in runtime.jobs.calls if name == "capture_payment"]
