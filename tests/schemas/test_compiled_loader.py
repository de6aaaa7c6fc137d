"""app.schemas.common.compiled_loader: the submit's body loaded without marshmallow's
machinery gives exactly what ``load(SubmitSchema(), body)`` gives — the same data (and key
order) for a valid body, the same error answer for any other."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields, pre_load, validates

from app.errors import InvalidRequest
from app.schemas.checkout import QuoteSchema, SubmitSchema
from app.schemas.common import BaseSchema, compiled_loader, load
from tests.schemas.submit_bodies import ADDRESS, BASE, VARIANTS

VALID: list[dict[str, Any]] = [
    *VARIANTS,
    {"items": [{"sku": " A.b_c-1 ", "quantity": 100}]},
]
INVALID: list[dict[str, Any]] = [
    {"items": []},
    {"items": [{"sku": "A", "quantity": 1}, {"sku": " A", "quantity": 2}]},  # duplicate
    {"items": [{"sku": "A", "quantity": True}]},
    {"items": [{"sku": "A", "quantity": 101}]},
    {"items": [{"sku": "A", "quantity": 1, "price": 1}]},
    {"items": [{"sku": "-A", "quantity": 1}]},
    {"items": [None]},
    {"items": "A"},
    {"items": None},
    {"email": "buyer@localhost"},
    {"email": None},
    {"email": "x" * 250 + "@example.com"},
    {"shippingAddress": {**ADDRESS, "country": "ZZ"}},
    {"shippingAddress": {**ADDRESS, "name": "   "}},
    {"shippingAddress": {**ADDRESS, "extra": 1}},
    {"shippingAddress": None},
    {"shippingAddress": []},
    {"billingAddress": {**ADDRESS, "postalCode": "!"}},
    {"ui": "hosted"},
    {"successUrl": "https://shop.test/ok"},
    {"ui": "hosted", "successUrl": "a", "cancelUrl": "b", "confirmationTokenId": "ctoken_a"},
    {"confirmationTokenId": "pi_1"},
    {"savePaymentMethod": "true"},
    {"unknown": 1},
    {"idempotencyKey": "short"},
]


def outcome(loader: Any, body: dict[str, Any]) -> tuple[Any, ...]:
    """What a load answers: the data and its keys' order, or the error's fields."""
    try:
        data = loader(copy.deepcopy(body))
    except InvalidRequest as exc:
        return ("refused", str(exc), exc.fields)
    return ("loaded", data, key_order(data))


def key_order(value: Any) -> Any:
    """Every mapping's keys, in order, nested."""
    if isinstance(value, dict):
        return [(key, key_order(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [key_order(item) for item in value]
    return None


SCHEMA = SubmitSchema()
FAST = compiled_loader(SCHEMA)


def by_the_schema(body: dict[str, Any]) -> Any:
    return load(SCHEMA, body)


class TestTheSubmitBody:
    @pytest.mark.parametrize("extra", VALID)
    def test_a_valid_body_loads_as_the_schema_loads_it_without_the_schema(
        self, extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        body = {**BASE, **extra}
        expected = outcome(by_the_schema, body)
        assert expected[0] == "loaded"
        schema = SubmitSchema()
        fast = compiled_loader(schema)
        monkeypatch.setattr(schema, "load", None)  # the compiled path never calls it
        assert outcome(fast, body) == expected

    @pytest.mark.parametrize("extra", INVALID)
    def test_an_invalid_body_gets_the_schemas_own_answer(self, extra: dict[str, Any]) -> None:
        body = {**BASE, **extra}
        expected = outcome(by_the_schema, body)
        assert expected[0] == "refused"
        assert outcome(FAST, body) == expected

    def test_not_an_object_gets_the_schemas_own_answer(self) -> None:
        assert outcome(FAST, [BASE]) == outcome(by_the_schema, [BASE])  # type: ignore[arg-type]

    def test_lines_in_a_tuple_are_left_to_the_schema(self) -> None:
        body = {**BASE, "items": tuple(BASE["items"])}  # never from JSON; the schema takes it
        assert outcome(FAST, body) == outcome(by_the_schema, body)


TEXT = st.one_of(
    st.sampled_from(["", " ", "A", " a-1 ", "ctoken_x", "hosted", "elements", "US", "de"]),
    st.text(max_size=12),
    st.integers(min_value=-2, max_value=200),
    st.booleans(),
    st.none(),
)
LINE = st.fixed_dictionaries(
    {},
    optional={
        "sku": st.one_of(st.sampled_from(["TEE-M", "MUG", " MUG ", "a.b", "-x"]), TEXT),
        "quantity": st.one_of(st.integers(min_value=-1, max_value=102), TEXT),
        "extra": TEXT,
    },
)
ADDRESSES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.just("Ada"), TEXT),
        "line1": st.one_of(st.just("1 Main St"), TEXT),
        "line2": TEXT,
        "city": st.one_of(st.just("Austin"), TEXT),
        "state": TEXT,
        "postalCode": st.one_of(st.just("73301"), TEXT),
        "country": st.one_of(st.sampled_from(["US", "gb", " fr "]), TEXT),
        "zip": TEXT,
    },
)
BODIES = st.fixed_dictionaries(
    {},
    optional={
        "items": st.one_of(st.lists(LINE, max_size=3), TEXT),
        "email": st.one_of(st.sampled_from(["a@example.com", " b@shop.test ", "c@x"]), TEXT),
        "shippingAddress": st.one_of(ADDRESSES, TEXT),
        "billingAddress": st.one_of(ADDRESSES, TEXT),
        "idempotencyKey": TEXT,
        "confirmationTokenId": TEXT,
        "savePaymentMethod": TEXT,
        "shippingOptionId": TEXT,
        "promotionCode": TEXT,
        "ui": TEXT,
        "successUrl": TEXT,
        "cancelUrl": TEXT,
        "other": TEXT,
    },
)


@settings(deadline=None, max_examples=400)
@given(BODIES)
def test_any_body_gets_the_schemas_answer(body: dict[str, Any]) -> None:
    assert outcome(FAST, body) == outcome(by_the_schema, body)


VALID_ADDRESS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Ada", " Ada Lovelace ", "Zoë"]),
        "line1": st.sampled_from(["1 Main St", " 2 Side Rd"]),
        "city": st.sampled_from(["Austin", "London "]),
        "postalCode": st.sampled_from(["73301", "N1 9GU", "a-1"]),
        "country": st.sampled_from(["US", "gb", " fr "]),
    },
    optional={
        "line2": st.sampled_from([None, "", "  ", "Flat 2"]),
        "state": st.sampled_from([None, "", "TX", " CA "]),
    },
)
VALID_BODIES = st.fixed_dictionaries(
    {
        "items": st.lists(
            st.fixed_dictionaries(
                {
                    "sku": st.sampled_from(["TEE-M", "MUG", " CAP ", "a.b_c"]),
                    "quantity": st.integers(min_value=1, max_value=100),
                }
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda line: line["sku"].strip(),
        ),
        "email": st.sampled_from(["a@example.com", " b@shop.test "]),
        "shippingAddress": VALID_ADDRESS,
    },
    optional={
        "billingAddress": st.one_of(st.none(), VALID_ADDRESS),
        "idempotencyKey": st.just("key-12345678"),
        "promotionCode": st.just(" spring10 "),
        "shippingOptionId": st.just("express"),
        "savePaymentMethod": st.booleans(),
        "confirmationTokenId": st.just("ctoken_abc"),
    },
)
DELETE = object()  # a change that removes the key
# Where a change lands: a key of the body, of the first line or of the address.
PLACES = [
    (),
    ("items", 0),
    ("shippingAddress",),
]
KEYS = ["items", "email", "sku", "quantity", "name", "line2", "state", "postalCode",
        "country", "ui", "successUrl", "other"]  # fmt: skip


@settings(deadline=None, max_examples=400)
@given(VALID_BODIES, st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(KEYS),
       st.one_of(st.none(), st.just(DELETE), TEXT)), max_size=2))  # fmt: skip
def test_a_valid_body_and_one_or_two_changes_get_the_schemas_answer(
    body: dict[str, Any], changes: list[tuple[tuple[Any, ...], str, Any]]
) -> None:
    if not changes:
        assert outcome(FAST, body)[0] == "loaded"
    for place, key, value in changes:
        target: Any = body
        for step in place:
            if isinstance(target, dict):
                target = target.get(step)
            else:
                target = target[step] if isinstance(target, list) and target else None
        if not isinstance(target, dict):
            continue  # an earlier change replaced or removed the place
        if value is DELETE:
            target.pop(key, None)
        else:
            target[key] = value
    assert outcome(FAST, body) == outcome(by_the_schema, body)


class _PreLoaded(BaseSchema):
    amount = fields.Integer()

    @pre_load
    def _doubled(self, data: Any, **_: Any) -> Any:
        return data


class _FieldValidated(BaseSchema):
    amount = fields.Integer()

    @validates("amount")
    def _positive(self, value: int, **_: Any) -> None:
        pass


@pytest.mark.parametrize("schema", [_PreLoaded(), _FieldValidated(), QuoteSchema()])
def test_a_schema_with_hooks_it_does_not_replay_is_loaded_by_marshmallow(
    schema: BaseSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    real = schema.load
    monkeypatch.setattr(schema, "load", lambda data, **kw: calls.append(data) or real(data, **kw))
    body = {"amount": 1} if not isinstance(schema, QuoteSchema) else {"items": BASE["items"]}
    compiled_loader(schema)(body)
    assert calls == [body]
