"""NUL characters (found by schemathesis, issue 10 item 5): PostgreSQL text refuses
``\\x00``, so a NUL in a JSON string, a path or a query parameter was a 500 there (and a
submit with one was admitted, then failed in the worker). Each is 400 ``validation_failed``
on its field now, on every database."""

from __future__ import annotations

import json
from typing import Any

import pytest


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == "validation_failed", body
    return dict(body["error"])


def test_nul_in_the_tracking_number_is_validation_failed(client: Any, runtime: Any) -> None:
    response = client.post(
        "/api/orders/track",
        data=json.dumps({"orderNumber": "ORD-\x00", "email": "a@example.com"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["orderNumber"]


def test_a_submit_with_nul_in_the_address_is_refused_and_leaves_nothing(
    client: Any, runtime: Any, catalog: Any, submit_body: Any
) -> None:
    body = submit_body()
    body["shippingAddress"]["name"] = "Ada\x00"
    response = client.post(
        "/api/checkout/payment-intent",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": "nul-key-0001"},
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["shippingAddress.name"]
    assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]


def test_nul_in_a_key_is_validation_failed(client: Any, runtime: Any) -> None:
    response = client.post(
        "/api/checkout/quote",
        data='{"items": [{"sku": "MUG", "quantity": 1}], "a\\u0000": 1}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["a?"]


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("get", "/api/orders/ab%00", "orderId"),
        ("get", "/api/checkout/ab%00", "orderId"),
        ("get", "/api/products/A%00B", "sku"),
        ("post", "/api/admin/orders/a%00/cancel", "orderId"),
        ("post", "/api/admin/webhook-events/evt%00/replay", "eventId"),
        ("get", "/api/products?category=a%00", "category"),
        ("get", "/api/checkout/lookup?payment_intent=pi_a%00", "payment_intent"),
    ],
)
def test_nul_in_a_path_or_query_parameter_is_validation_failed(
    client: Any, runtime: Any, admin_headers: Any, method: str, url: str, field: str
) -> None:
    response = getattr(client, method)(url, headers=admin_headers)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
