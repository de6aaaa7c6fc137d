"""Shared schema pieces: strict integers, trimmed strings, and flat error paths.

Policy (the strict contract): a field the schema does not know is **refused**
(``RAISE``) everywhere — bodies and query strings alike — with ``validation_failed`` on
that field's flat dotted path (``shippingAddress.foo``, ``items.0.unitAmount``); nothing
is silently dropped. Everything that *is* read is strict as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP
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
