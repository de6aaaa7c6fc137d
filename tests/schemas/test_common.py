"""app.schemas.common.loaded_dumper: the stored submit body is what marshmallow dumps."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from marshmallow import fields, post_dump

from app.schemas.checkout import SubmitSchema
from app.schemas.common import BaseSchema, StrictInteger, loaded_dumper
from tests.schemas.submit_bodies import BASE, VARIANTS


@pytest.mark.parametrize("extra", VARIANTS)
def test_the_submit_body_dumps_as_marshmallow_dumps_it(extra: dict[str, Any]) -> None:
    schema = SubmitSchema()
    loaded = schema.load({**copy.deepcopy(BASE), **extra})
    fast = loaded_dumper(schema)(loaded)
    assert fast == schema.dump(loaded)
    assert list(fast) == list(schema.dump(loaded))  # the same key order (the fingerprint)


class _Hooked(BaseSchema):
    amount = StrictInteger()

    @post_dump
    def _tag(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "tag": 1}


class _AsString(BaseSchema):
    amount = StrictInteger(as_string=True)


class _Defaulted(BaseSchema):
    amount = StrictInteger(dump_default=7)


class _Listed(BaseSchema):
    skus = fields.List(fields.String())


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        (_Hooked(), {"amount": 5}),
        (_AsString(), {"amount": 5}),
        (_Defaulted(), {}),
        (_Listed(), {"skus": ["A"]}),
    ],
)
def test_a_schema_that_does_more_than_rename_is_dumped_by_marshmallow(
    schema: BaseSchema, data: dict[str, Any]
) -> None:
    dump = loaded_dumper(schema)
    assert dump == schema.dump
    assert dump(data) == schema.dump(data)
