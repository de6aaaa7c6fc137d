"""The strict contract, walked from the OpenAPI document: every documented request body
and query string refuses a field it does not know, at the top and inside every nested
object, with 400 ``validation_failed`` on that field's flat dotted camelCase path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.api.openapi import build_spec

SPEC = build_spec()
EXTRA = "zzNotInTheSchema"
PATH_VALUES = {"{orderId}": "11111111-2222-3333-4444-555555555555", "{sku}": "SKU-1",
               "{eventId}": "evt_1", "{code}": "SPRING10"}  # fmt: skip


def _schema(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref")
    return SPEC["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else ref_or_schema


def unknown_field_bodies(schema: dict[str, Any], depth: int = 0) -> Iterator[tuple[Any, str]]:
    """(body, expected error path) pairs: an unknown field at each object of ``schema``."""
    yield {EXTRA: 1}, EXTRA
    if depth > 3:
        return
    for name, prop in _schema(schema).get("properties", {}).items():
        refs = [p for p in prop.get("anyOf", prop.get("allOf", [])) if "$ref" in p]
        if refs:  # a nullable nested object: {"anyOf": [{"$ref"}, {nullable}]}
            prop = refs[0]
        if "$ref" in prop and _schema(prop).get("type") == "object":
            for body, path in unknown_field_bodies(prop, depth + 1):
                yield {name: body}, f"{name}.{path}"
        items = prop.get("items") or {}
        if prop.get("type") == "array" and "$ref" in items:
            for body, path in unknown_field_bodies(items, depth + 1):
                yield {name: [body]}, f"{name}.0.{path}"


def operations(kind: str) -> list[Any]:
    """``(method, path, operation)`` with a request body (``body``) or query parameters."""
    found = []
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            query = [p for p in op.get("parameters", []) if p["in"] == "query"]
            if (kind == "body" and "requestBody" in op) or (kind == "query" and query):
                found.append(pytest.param(method, path, op, id=f"{method} {path}"))
    return found


def url_of(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


def headers_of(op: dict[str, Any], admin_headers: dict[str, str]) -> dict[str, str]:
    headers = dict(admin_headers) if op.get("security") else {}
    if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
        headers["Idempotency-Key"] = "strict-fields-key-1"
    return headers


def test_every_write_endpoint_is_walked() -> None:
    walked = {(p.values[0], p.values[1]) for p in operations("body")}
    assert {
        ("post", "/api/checkout/quote"),
        ("post", "/api/checkout/payment-intent"),
        ("post", "/api/orders/track"),
        ("put", "/api/admin/products"),
        ("put", "/api/admin/products/{sku}"),
        ("post", "/api/admin/orders/{orderId}/refunds"),
        ("post", "/api/admin/orders/{orderId}/fulfillment"),
        ("post", "/api/admin/orders/{orderId}/cancel"),
        ("post", "/api/admin/webhook-events/{eventId}/replay"),
    } <= walked
    schemas = {_schema(p.values[2]["requestBody"]["content"]["application/json"]["schema"])
               ["additionalProperties"] for p in operations("body")}  # fmt: skip
    assert schemas == {False}  # and the document says so


@pytest.mark.parametrize(("method", "path", "op"), operations("body"))
def test_unknown_body_fields_are_refused(
    client: Any, runtime: Any, admin_headers: dict[str, str], method: str, path: str, op: Any
) -> None:
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    cases = list(unknown_field_bodies(schema))
    assert cases
    for body, field in cases:
        response = client.open(
            url_of(path), method=method.upper(), json=body, headers=headers_of(op, admin_headers)
        )
        assert response.status_code == 400, (field, response.get_json())
        error = response.get_json()["error"]
        assert error["code"] == "validation_failed"
        assert error["fields"][field] == ["Unknown field."], (field, error)


@pytest.mark.parametrize(("method", "path", "op"), operations("query"))
def test_unknown_query_parameters_are_refused(
    client: Any, runtime: Any, admin_headers: dict[str, str], method: str, path: str, op: Any
) -> None:
    headers = {**headers_of(op, admin_headers), "X-Checkout-Token": "t"}
    response = client.open(f"{url_of(path)}?{EXTRA}=1", method=method.upper(), headers=headers)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert (error["code"], error["fields"][EXTRA]) == ("validation_failed", ["Unknown field."])
