"""Shared schema pieces: strict integers, trimmed strings, and flat error paths.

Policy (the strict contract): a field the schema does not know is **refused**
(``RAISE``) everywhere — bodies and query strings alike — with ``validation_failed`` on
that field's flat dotted path (``shippingAddress.foo``, ``items.0.unitAmount``); nothing
is silently dropped. Everything that *is* read is strict as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import (
    POST_DUMP,
    POST_LOAD,
    PRE_DUMP,
    PRE_LOAD,
    VALIDATES,
    VALIDATES_SCHEMA,
)
from marshmallow.utils import missing

from app.errors import InvalidRequest


class StrictInteger(fields.Integer):
    """A JSON integer only: ``"2"``, ``2.0`` and ``true`` are refused."""

    default_error_messages = {"invalid": "Must be an integer.", "strict": "Must be an integer."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("strict")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``"true"``, ``1`` are refused."""

    default_error_messages = {"strict": "Must be true or false."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("strict")
        return value


class Text(fields.String):
    """A string with surrounding whitespace removed; blank counts as missing."""

    default_error_messages = {"blank": "May not be blank."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise self.make_error("blank")
        return text


class Email(fields.Email):
    """An e-mail address with surrounding whitespace removed before it is checked, at a
    domain name with a dot: receipts go out to it, so never to an IP literal
    (``a@[127.0.0.1]``) or a single-label host (``a@localhost``) inside our network."""

    default_error_messages = {"domain": "Must be an address at a domain name."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        address = super()._deserialize(value, attr, data, **kwargs).strip()
        domain = address.rpartition("@")[2]
        if domain.startswith("[") or "." not in domain.strip("."):
            raise self.make_error("domain")
        return address


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800"): JSON allows it, UTF-8 not
        return False
    return "\x00" not in text  # NUL ("\\u0000"): JSON allows it, PostgreSQL text not


def unencodable_paths(value: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flat dotted paths of strings (values or keys) that are not valid Unicode text.

    JSON may carry lone surrogates (``"\\ud800"``) and NUL (``"\\u0000"``); nothing
    downstream can store or hash them (UTF-8 refuses the first, PostgreSQL text the second),
    so they are refused as ``validation_failed`` before any schema.
    """
    found: dict[str, list[str]] = {}
    message = ["Must be valid Unicode text (no lone surrogates, no NUL characters)."]
    stack: list[tuple[str, Any]] = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                name = str(key)
                if not _encodable(name):
                    name = name.encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")
                    found[f"{path}.{name}" if path else name] = message
                    continue
                stack.append((f"{path}.{name}" if path else name, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}" if path else str(i), c) for i, c in enumerate(item))
        elif isinstance(item, str) and not _encodable(item):
            found[path or "_body"] = message
    return found


class BaseSchema(Schema):
    """Every API schema: unknown fields refused, camelCase on the wire."""

    class Meta:
        unknown = RAISE


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"items.0.quantity": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            part = "" if key == "_schema" else str(key)
            path = f"{prefix}.{part}" if prefix and part else (prefix or part)
            for sub_path, texts in flatten_errors(value, path).items():
                flat.setdefault(sub_path, []).extend(texts)
    elif isinstance(messages, list | tuple):
        if all(isinstance(item, str) for item in messages):
            flat[prefix or "_body"] = [str(item) for item in messages]
        else:
            for item in messages:
                for sub_path, texts in flatten_errors(item, prefix).items():
                    flat.setdefault(sub_path, []).extend(texts)
    else:
        flat[prefix or "_body"] = [str(messages)]
    return flat


def load(schema: Schema, data: Mapping[str, Any]) -> Any:
    """``schema.load`` with errors turned into InvalidRequest (flat dotted fields)."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "The request has invalid fields.", fields=flatten_errors(exc.messages)
        ) from exc


# Field classes whose dump of a loaded value is that value itself (a str stays the str,
# an int the int, a bool the bool, None None): what their ``_serialize`` does to the
# types their own load produced.
_IDENTITY_SERIALIZERS = (
    fields.String._serialize,
    fields.Integer._serialize,
    fields.Boolean._serialize,
)
# One compiled field: (attribute, wire key, nested plan or None, whether a list of it).
_Step = tuple[str, str, "list[_Step] | None", bool]


def _plan(schema: Schema) -> list[_Step] | None:
    """The steps that rename ``schema``'s loaded data to its dump, or None when the
    schema does anything more than rename (dump hooks, dump defaults, other fields)."""
    if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]:
        return None
    steps: list[_Step] = []
    for attr, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else attr
        if field.dump_default is not missing or getattr(field, "as_string", False):
            return None
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            field = field.inner
            many = True
        else:
            many = False
        if isinstance(field, fields.Nested):
            nested = field.schema
            sub = _plan(nested) if isinstance(nested, Schema) and not nested.many else None
            if sub is None or field.many:
                return None
            steps.append((attr, key, sub, many))
        elif type(field)._serialize in _IDENTITY_SERIALIZERS and not many:
            steps.append((attr, key, None, False))
        else:
            return None
    return steps


def _rename(steps: list[_Step], data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, key, sub, many in steps:
        if attr not in data:
            continue  # marshmallow skips a missing attribute (no dump default)
        value = data[attr]
        if sub is None or value is None:
            out[key] = value
        elif many:
            out[key] = [_rename(sub, item) for item in value]
        else:
            out[key] = _rename(sub, value)
    return out


def loaded_dumper(schema: Schema) -> Callable[[Mapping[str, Any]], Any]:
    """``schema.dump`` for data that ``schema.load`` produced, compiled once.

    For a schema of strings, integers, booleans and nested schemas of those, without
    dump hooks or dump defaults, dumping loaded data only renames attributes to their
    wire keys (in the schema's order, load-only fields and absent attributes left out):
    that renaming, without marshmallow's per-field calls. Any other schema gets
    ``schema.dump`` itself.
    """
    steps = _plan(schema)
    if steps is None:
        return schema.dump
    plan = steps
    return lambda data: _rename(plan, data)


class _NotPlain(Exception):
    """Raised when an input leaves the compiled load: the schema's own load decides."""


# Fields that hold other fields: compiled only as a nested schema or a list of one.
_CONTAINERS = (fields.Nested, fields.List, fields.Tuple, fields.Dict, fields.Pluck)


@dataclass(frozen=True)
class _Nest:
    """A nested schema's field (``many``: a list of it) and the compiled schema."""

    field: fields.Field
    inner: fields.Field | None  # the list's Nested, for a list of a schema
    loader: _Loader


@dataclass(frozen=True)
class _Loader:
    """One schema's load, compiled: (attribute, wire key, leaf field or nest) per field,
    the wire keys it knows, its schema validators and its post-load hooks (bound)."""

    steps: tuple[tuple[str, str, fields.Field | _Nest], ...]
    known: frozenset[str]
    validators: tuple[Callable[..., Any], ...]
    post_loads: tuple[Callable[..., Any], ...]


def _hooks(schema: Schema, tag: str) -> tuple[Callable[..., Any], ...] | None:
    """The bound hooks ``tag`` of ``schema``, or None when one needs more than the data
    (a collection or the original input)."""
    found = []
    for name, pass_collection, kwargs in schema._hooks[tag]:
        if pass_collection or kwargs.get("pass_original"):
            return None
        found.append(getattr(schema, name))
    return tuple(found)


def _nest(field: fields.Field) -> _Nest | None:
    """The nest of a ``Nested`` or ``List(Nested)`` field, or None if not compilable."""
    inner = field.inner if isinstance(field, fields.List) else None
    nested = inner if inner is not None else field
    if not isinstance(nested, fields.Nested) or field.pre_load or field.post_load:
        return None
    if nested.pre_load or nested.post_load or nested.many or nested.unknown is not None:
        return None
    schema = nested.schema
    loader = _compile(schema) if isinstance(schema, Schema) and not schema.many else None
    return None if loader is None else _Nest(field, inner, loader)


def _compile(schema: Schema) -> _Loader | None:
    """``schema``'s load compiled, or None when it does more than this module replays:
    pre-load or field hooks, hooks on the collection or the original, other than
    ``unknown=RAISE``, dotted attributes, containers other than nested schemas."""
    if schema.unknown != RAISE or schema._hooks[PRE_LOAD] or schema._hooks[VALIDATES]:
        return None
    validators, post_loads = _hooks(schema, VALIDATES_SCHEMA), _hooks(schema, POST_LOAD)
    if validators is None or post_loads is None:
        return None
    steps: list[tuple[str, str, fields.Field | _Nest]] = []
    for attr, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else attr
        target = field.attribute or attr
        if "." in target:
            return None
        if isinstance(field, _CONTAINERS):
            nest = _nest(field)
            if nest is None:
                return None
            steps.append((target, key, nest))
        elif field.pre_load or field.post_load:
            return None
        else:
            steps.append((target, key, field))
    return _Loader(tuple(steps), frozenset(key for _, key, _ in steps), validators, post_loads)


def _absent(field: fields.Field) -> Any:
    """An absent field's value, as ``Field.deserialize`` gives it: required is refused."""
    if field.required:
        raise _NotPlain
    default = field.load_default
    return default() if callable(default) else default


def _leaf(field: fields.Field, raw: Any, key: str, data: Mapping[str, Any]) -> Any:
    """``field.deserialize(raw)`` for a present value: the field's own ``_deserialize``,
    then each of its validators (marshmallow's ``_validate`` runs them all and refuses on
    any error, or a plain function's False)."""
    if raw is None:
        if field.allow_none:
            return None
        raise _NotPlain
    value = field._deserialize(raw, key, data)
    for validator in field.validators:
        if validator(value) is False:
            raise _NotPlain
    return value


def _nested(nest: _Nest, raw: Any) -> Any:
    """A nested field's value from ``raw`` (present), as ``Nested.deserialize`` gives it."""
    field = nest.field
    if raw is None:
        if field.allow_none:
            return None
        raise _NotPlain
    value: Any
    if nest.inner is None:
        value = _load_plain(nest.loader, raw)
    else:
        if type(raw) is not list:
            raise _NotPlain
        value = [_load_plain(nest.loader, item) for item in raw]
        for item in value:
            nest.inner._validate(item)
    field._validate(value)
    return value


def _load_plain(loader: _Loader, data: Any) -> dict[str, Any]:
    """``schema.load(data)`` through the compiled steps; _NotPlain on any doubt."""
    if not isinstance(data, Mapping) or not data.keys() <= loader.known:
        raise _NotPlain  # not an object, or an unknown field: the schema words it
    out: dict[str, Any] = {}
    try:
        for target, key, step in loader.steps:
            raw = data.get(key, missing)
            if isinstance(step, _Nest):
                value = _absent(step.field) if raw is missing else _nested(step, raw)
            else:
                value = _absent(step) if raw is missing else _leaf(step, raw, key, data)
            if value is not missing:
                out[target] = value
        for validator in loader.validators:
            validator(out, partial=None, many=False, unknown=RAISE)
        for post_load in loader.post_loads:
            out = post_load(out, partial=None, many=False, unknown=RAISE)
    except ValidationError:
        raise _NotPlain from None
    return out


def compiled_loader(schema: Schema) -> Callable[[Mapping[str, Any]], Any]:
    """:func:`load` for ``schema``, compiled once: the same result for every input.

    An input that every field, nested schema, validator and hook accepts is loaded by
    calling them directly (each field's own ``_deserialize`` and validators, the schema's
    own validators and post-load hooks, in marshmallow's order), without the schema
    machinery around them. Any other input (an unknown or missing field, a value a field
    refuses) goes through :func:`load`, so every error answer is the schema's own. A
    schema with hooks this does not replay (pre-load, field validators, hooks on the
    collection or the original) always gets :func:`load`.
    """
    compiled = _compile(schema)
    if compiled is None:
        return lambda data: load(schema, data)
    plan = compiled

    def fast(data: Mapping[str, Any]) -> Any:
        try:
            return _load_plain(plan, data)
        except _NotPlain:
            return load(schema, data)

    return fast
