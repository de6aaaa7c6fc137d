"""OpenAPI 3.0 schemas as JSON Schema, for the tests that validate bodies against a document."""

from __future__ import annotations

from typing import Any


def oas30(schema: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` becomes "null or <schema>"."""
    if isinstance(schema, list):
        return [oas30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {k: oas30(v) for k, v in schema.items() if not (k == "nullable" and v is True)}
    if schema.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, converted]}
    return converted
