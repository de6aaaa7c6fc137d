"""The probe's findings (issue 10, item 6) over HTTP: each was a 500, a silent
acceptance or a leak; each answers the documented error now."""

from __future__ import annotations

import json
from typing import Any

import pytest

SUBMIT = "/api/checkout/payment-intent"
QUOTE = "/api/checkout/quote"
TRACK = "/api/orders/track"
WEBHOOK = "/api/webhooks/stripe"


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def submitted(client: Any, submit_body: Any, key: str = "probe-key-0001") -> dict[str, Any]:
    response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": key})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


class TestUnauthenticated500s:
    @pytest.mark.parametrize("name", ["wait", "since"])
    @pytest.mark.parametrize("value", ["²", "①", "٣", "9" * 4400])
    def test_odd_digits_in_the_long_poll_query_are_400(
        self, client: Any, catalog: Any, submit_body: Any, name: str, value: str
    ) -> None:
        created = submitted(client, submit_body)
        response = client.get(
            f"/api/checkout/{created['orderId']}",
            query_string={name: value},
            headers={"X-Checkout-Token": created["checkoutToken"]},
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == [name]

    @pytest.mark.parametrize(
        "timestamp", ["\u00b2", "\u00b9\u00b2\u00b3", "1" * 4400, "-1", "+1", " 1"]
    )
    def test_odd_signature_timestamps_are_signature_invalid(
        self, client: Any, broker: Any, gateway: Any, timestamp: str
    ) -> None:
        body, _ = gateway.signed(gateway.event("payment_intent.succeeded", {"id": "pi_1"}))
        header = f"t={timestamp},v1=abc".encode("latin-1")
        response = client.post(
            WEBHOOK,
            data=body,
            headers=[("Stripe-Signature", header.decode("latin-1"))],
            content_type="application/json",
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "signature_invalid"

    @pytest.mark.parametrize("field", ["name", "line1", "city"])
    def test_lone_surrogate_in_the_submit_address_is_validation_failed(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, field: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"][field] = "Ada \ud800"
        response = client.post(
            SUBMIT,
            data=json.dumps(body),  # ensure_ascii: the surrogate travels as \\ud800
            content_type="application/json",
            headers={"Idempotency-Key": "probe-key-0002"},
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == [f"shippingAddress.{field}"]
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail"]

    def test_lone_surrogate_in_the_tracking_number_is_validation_failed(
        self, client: Any, runtime: Any
    ) -> None:
        response = client.post(
            TRACK,
            data=json.dumps({"orderNumber": "ORD-\udfff", "email": "a@example.com"}),
            content_type="application/json",
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["orderNumber"]

    def test_lone_surrogate_in_an_admin_product_name_is_validation_failed(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        body = {
            "name": "Mug \ud800",
            "description": "x",
            "price": {"amount": 100, "currency": "usd"},
            "stockOnHand": 1,
        }
        response = client.put(
            "/api/admin/products/MUG2",
            data=json.dumps(body),
            content_type="application/json",
            headers=admin_headers,
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["name"]

    def test_lone_surrogate_in_a_key_is_validation_failed(self, client: Any, runtime: Any) -> None:
        response = client.post(
            QUOTE,
            data='{"items": [{"sku": "MUG", "quantity": 1}], "\\ud800": 1}',
            content_type="application/json",
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "validation_failed"
