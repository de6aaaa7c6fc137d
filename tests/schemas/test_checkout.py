"""app.schemas.checkout.valid_idempotency_key: the schema's verdict without its load."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.schemas.checkout import IdempotencyKeySchema, valid_idempotency_key

SCHEMA = IdempotencyKeySchema()


def _schema_verdict(value: Any) -> str | None:
    try:
        return str(SCHEMA.load({"idempotencyKey": value})["idempotency_key"])
    except ValidationError:
        return None


@pytest.mark.parametrize(
    "value",
    [
        "key-12345678",
        "x" * 8,
        "x" * 7,
        "x" * 255,
        "x" * 256,
        "has space1",
        "key-1234567\n",  # `$` would match before a final newline: the pattern is the same
        "ключ-12345678",
        "",
        12345678,
        None,
        True,
        ["key-12345678"],
    ],
)
def test_it_agrees_with_the_schema(value: Any) -> None:
    assert valid_idempotency_key(value) == _schema_verdict(value)


@settings(deadline=None, max_examples=200)
@given(st.text(min_size=0, max_size=300))
def test_it_agrees_with_the_schema_on_any_text(value: str) -> None:
    assert valid_idempotency_key(value) == _schema_verdict(value)
