"""What schemathesis found wrong in the document (issue 10, item 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from app.api.openapi import build_spec
from tests.oas import oas30


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec()


def test_the_document_itself_is_an_object(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]
    assert content == {"application/json": {"schema": {"type": "object"}}}


def test_gunicorns_json_414_is_documented_where_a_url_carries_parameters(
    spec: dict[str, Any],
) -> None:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] != "header"]
            answers = operation["responses"]
            assert ("414" in answers) == bool(parameters), (method, path)
            if parameters:
                error = answers["414"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("path", ["/api/orders/{orderId}", "/api/products/{sku}"])
def test_reads_by_id_document_400(spec: dict[str, Any], path: str) -> None:
    error = spec["paths"][path]["get"]["responses"]["400"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/Error"}


def test_a_status_in_the_queue_to_stripe_conforms(
    spec: dict[str, Any], client: Any, catalog: Any, submit_body: Callable[..., Any]
) -> None:
    """Schemathesis found ``queue`` missing from CheckoutStatus (its schema is closed)."""
    for n in range(2):
        submitted = client.post(
            "/api/checkout/payment-intent",
            json=submit_body(),
            headers={"Idempotency-Key": f"k-conform-{n}x"},
        ).get_json()
    status = client.get(
        submitted["statusUrl"], headers={"X-Checkout-Token": submitted["checkoutToken"]}
    ).get_json()
    assert "queue" in status
    schema = {
        "$ref": "#/components/schemas/CheckoutStatus",
        "components": oas30(spec["components"]),
    }
    jsonschema.Draft7Validator(schema).validate(status)


def test_a_guests_replay_without_its_token_conforms(
    spec: dict[str, Any], client: Any, catalog: Any, submit_body: Callable[..., Any]
) -> None:
    """A guest's replay answers ``checkoutToken: null`` (docs/api.md): the document says so,
    and the browser client's generated types with it."""
    body = submit_body()
    headers = {"Idempotency-Key": "k-conform-replay"}
    client.post("/api/checkout/payment-intent", json=body, headers=headers)
    replay = client.post("/api/checkout/payment-intent", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    answer = replay.get_json()
    assert answer["checkoutToken"] is None
    schema = {
        "$ref": "#/components/schemas/SubmitResponse",
        "components": oas30(spec["components"]),
    }
    jsonschema.Draft7Validator(schema).validate(answer)
