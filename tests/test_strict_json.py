"""app.strict_json: the rules every body and signed event is parsed by."""

from __future__ import annotations

import json

import pytest

from app import strict_json


class TestLoads:
    def test_a_key_twice_at_any_depth_is_refused(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            strict_json.loads(b'{"a": [{"b": 1, "b": 2}]}')

    def test_the_same_key_in_sibling_objects_is_fine(self) -> None:
        assert strict_json.loads(b'[{"b": 1}, {"b": 2}]') == [{"b": 1}, {"b": 2}]

    def test_nesting_up_to_the_limit_is_fine(self) -> None:
        depth = strict_json.MAX_DEPTH
        assert strict_json.loads(b"[" * depth + b"]" * depth) is not None

    @pytest.mark.parametrize("depth", [strict_json.MAX_DEPTH + 1, 5000])
    def test_deeper_nesting_is_refused(self, depth: int) -> None:
        with pytest.raises(ValueError, match="deep"):
            strict_json.loads(b'{"a": ' * depth + b"1" + b"}" * depth)

    @pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b"\xff"])
    def test_what_json_itself_refuses_stays_refused(self, raw: bytes) -> None:
        with pytest.raises(ValueError):
            strict_json.loads(raw)


def test_brackets_inside_strings_only_make_the_depth_walk_run() -> None:
    raw = json.dumps({"note": "[" * (strict_json.MAX_DEPTH + 1)}).encode()
    assert strict_json.may_nest_too_deep(raw)
    assert strict_json.loads(raw) == {"note": "[" * (strict_json.MAX_DEPTH + 1)}


def test_a_body_with_few_brackets_skips_the_depth_walk() -> None:
    raw = b'{"items": [{"sku": "A"}], "shippingAddress": {"country": "US"}}'
    assert not strict_json.may_nest_too_deep(raw)
