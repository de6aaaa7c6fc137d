"""The OpenAPI document is as strict as the server (issue 10): a generated client that
follows it sends what the server accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.api.openapi import build_spec
from app.schemas.countries import ISO_3166_ALPHA2


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec()


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec["components"]["schemas"][name]


def test_order_number_has_a_min_length(spec: dict[str, Any]) -> None:
    assert schema(spec, "Track")["properties"]["orderNumber"]["minLength"] == 1


@pytest.mark.parametrize("field", ["name", "line1", "city", "postalCode"])
def test_required_address_text_may_not_be_empty(spec: dict[str, Any], field: str) -> None:
    assert schema(spec, "Address")["properties"][field]["minLength"] == 1


def test_no_bare_any_of_objects_anywhere(spec: dict[str, Any]) -> None:
    assert '"anyOf"' not in json.dumps(spec)


def test_optional_addresses_are_the_address_or_null(spec: dict[str, Any]) -> None:
    billing = schema(spec, "Submit")["properties"]["billingAddress"]
    assert billing["allOf"] == [{"$ref": "#/components/schemas/Address"}]
    assert billing["nullable"] is True
    quote = schema(spec, "Quote")["properties"]["shippingAddress"]
    assert quote["allOf"] == [{"$ref": "#/components/schemas/QuoteAddress"}]
    assert quote["nullable"] is True


def test_since_has_the_servers_maximum(spec: dict[str, Any]) -> None:
    params = spec["paths"]["/api/checkout/{orderId}"]["get"]["parameters"]
    since = next(p for p in params if p["name"] == "since")
    assert since["schema"]["maximum"] == 2**31


@pytest.mark.parametrize("name", ["Address", "QuoteAddress"])
def test_country_is_an_enum_of_iso_codes(spec: dict[str, Any], name: str) -> None:
    country = schema(spec, name)["properties"]["country"]
    assert country["enum"] == sorted(ISO_3166_ALPHA2)


def test_the_server_accepts_the_documents_limits(client: Any, catalog: Any) -> None:
    """since at its documented maximum is accepted; one more is refused."""
    response = client.post(
        "/api/checkout/payment-intent",
        json={
            "items": [{"sku": "MUG", "quantity": 1}],
            "email": "a@example.com",
            "shippingAddress": {
                "name": "A",
                "line1": "1",
                "city": "C",
                "postalCode": "1",
                "country": "US",
            },
        },
        headers={"Idempotency-Key": "openapi-key-1"},
    )
    created = response.get_json()
    url = f"/api/checkout/{created['orderId']}"
    headers = {"X-Checkout-Token": created["checkoutToken"]}
    ok = client.get(url, query_string={"since": 2**31}, headers=headers)
    assert ok.status_code == 200
    refused = client.get(url, query_string={"since": 2**31 + 1}, headers=headers)
    assert refused.status_code == 400


def test_a_list_answer_documents_its_own_items(spec: dict[str, Any]) -> None:
    listed = spec["paths"]["/api/admin/promotions"]["get"]["responses"]["200"]
    items = listed["content"]["application/json"]["schema"]["items"]
    assert items == {"$ref": "#/components/schemas/Promotion"}
    products = spec["paths"]["/api/products"]["get"]["responses"]["200"]
    assert products["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/Product"
    }
