"""app.api.requests: the raw-body checks that let json_object skip its walks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import strict_json
from app.api.requests import may_hold_unencodable
from app.schemas.common import unencodable_paths


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"email": "buyer@example.com", "items": [{"sku": "A", "quantity": 1}]}', False),
        ('{"name": "Zoë"}'.encode(), False),  # UTF-8 text needs no escape
        (b'{"name": "a\\u0000b"}', True),
        (b'{"name": "\\ud800"}', True),
        (b'{"\\ud800": 1}', True),
        (b'{"name": "\\u00e9"}', True),  # any escape: the walk decides
    ],
)
def test_only_an_escape_can_bring_unencodable_text(raw: bytes, expected: bool) -> None:
    assert may_hold_unencodable(raw) is expected


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\x00b"},
        {"name": "\ud800"},
        {"\ud800": 1},
        {"lines": [{"name": "\udfff"}]},
    ],
)
def test_whatever_the_walk_would_refuse_is_still_walked(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()  # JSON carries both only as escapes
    assert unencodable_paths(strict_json.loads(raw))
    assert may_hold_unencodable(raw)
