"""What schemathesis found wrong in the document (issue 10, item 5)."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.openapi import build_spec


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec()


def test_the_document_itself_is_an_object(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]
    assert content == {"application/json": {"schema": {"type": "object"}}}


def test_gunicorns_414_is_documented_where_a_url_carries_parameters(
    spec: dict[str, Any],
) -> None:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] != "header"]
            answers = operation["responses"]
            assert ("414" in answers) == bool(parameters), (method, path)
            if parameters:
                assert list(answers["414"]["content"]) == ["text/html"]


@pytest.mark.parametrize("path", ["/api/orders/{orderId}", "/api/products/{sku}"])
def test_reads_by_id_document_400(spec: dict[str, Any], path: str) -> None:
    error = spec["paths"][path]["get"]["responses"]["400"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/Error"}
