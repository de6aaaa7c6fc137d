"""Decoding Stripe's form-encoded parameters and checking their types.

Stripe's wire format nests with brackets: ``metadata[orderId]=1``, ``expand[]=x`` or
``expand[0]=x``, ``created[gte]=1700000000``. :func:`decode` turns such pairs into
nested dicts and lists; the ``get_*`` helpers read one parameter and raise Stripe's
own validation errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import (
    invalid_enum,
    parameter_invalid,
    parameter_invalid_integer,
    parameter_missing,
    parameter_unknown,
)

Params = dict[str, Any]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode(pairs: Iterable[tuple[str, str]]) -> Params:
    """Turn ``[("metadata[a]", "1"), ("expand[]", "x")]`` into nested dicts and lists."""
    root: Params = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            root[raw_key] = value
            continue
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list):
                # Only "[]" reaches a list: append a fresh container or the value.
                if last:
                    node.append(value)
                    break
                node.append([] if nxt == "" else {})
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                if part not in node or not isinstance(node[part], dict | list):
                    node[part] = [] if nxt == "" else {}
                node = node[part]
    return _listify(root)


def _listify(node: Any) -> Any:
    """Dicts keyed only by "0", "1", ... were indexed arrays: make them lists."""
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def reject_unknown(params: Params, allowed: Iterable[str], prefix: str = "") -> None:
    """Refuse parameters an endpoint does not take, as Stripe does."""
    allowed_set = set(allowed)
    for key in params:
        if key not in allowed_set:
            raise parameter_unknown(f"{prefix}[{key}]" if prefix else key)


def get_str(
    params: Params, name: str, *, required: bool = False, label: str | None = None
) -> str | None:
    """A string parameter, or None when absent."""
    label = label or name
    value = params.get(name)
    if value is None:
        if required:
            raise parameter_missing(label)
        return None
    if not isinstance(value, str):
        raise parameter_invalid(label, f"Invalid string: {_short(value)}")
    if required and value == "":
        raise parameter_invalid(
            label,
            f"You passed an empty string for '{label}'. We assume empty values are an "
            f"attempt to unset a parameter; however '{label}' cannot be unset. You should "
            f"remove '{label}' from your request or supply a non-empty value.",
            code="parameter_invalid_empty",
        )
    return value


def get_int(
    params: Params,
    name: str,
    *,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
    label: str | None = None,
) -> int | None:
    """An integer parameter (decimal digits only), or None when absent."""
    label = label or name
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise parameter_missing(label)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d{1,18}", value):
        raise parameter_invalid_integer(label, _short(value))
    number = int(value)
    if minimum is not None and number < minimum:
        raise parameter_invalid(label, f"This value must be greater than or equal to {minimum}.")
    if maximum is not None and number > maximum:
        raise parameter_invalid(label, f"This value must be less than or equal to {maximum}.")
    return number


def get_bool(params: Params, name: str, *, label: str | None = None) -> bool | None:
    """A boolean parameter ("true"/"false"), or None when absent."""
    label = label or name
    value = params.get(name)
    if value is None or value == "":
        return None
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise parameter_invalid(label, f"Invalid boolean: {_short(value)}")


def get_enum(
    params: Params, name: str, allowed: list[str], *, label: str | None = None
) -> str | None:
    """A string parameter restricted to a list of values."""
    label = label or name
    value = get_str(params, name, label=label)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise invalid_enum(label, value, allowed)
    return value


def get_dict(params: Params, name: str) -> Params:
    """A hash parameter; an empty string means an empty hash."""
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise parameter_invalid(name, f"Invalid hash: {_short(value)}")
    return value


def get_list(params: Params, name: str) -> list[str]:
    """An array-of-strings parameter (``expand[]``, ``types[]``)."""
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise parameter_invalid(name, f"Invalid array: {_short(value)}")
    return value


def merge_metadata(current: dict[str, str], params: Params) -> dict[str, str]:
    """Apply Stripe's metadata update rules: "" unsets a key, ``metadata=""`` clears all."""
    if "metadata" not in params:
        return current
    raw = params["metadata"]
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise parameter_invalid("metadata", f"Invalid hash: {_short(raw)}")
    merged = dict(current)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise parameter_invalid(f"metadata[{key}]", f"Invalid string: {_short(value)}")
        if len(key) > 40:
            raise parameter_invalid(
                f"metadata[{key}]", "Metadata keys can have up to 40 characters."
            )
        if len(value) > 500:
            raise parameter_invalid(
                f"metadata[{key}]", "Metadata values can have up to 500 characters."
            )
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise parameter_invalid("metadata", "You can have up to 50 metadata keys.")
    return merged


def created_filter(params: Params, name: str = "created") -> dict[str, int]:
    """Read ``created=<ts>`` or ``created[gt|gte|lt|lte]=<ts>`` into comparisons."""
    raw = params.get(name)
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        value = get_int(params, name)
        return {"eq": value} if value is not None else {}
    if not isinstance(raw, dict):
        raise parameter_invalid(name, f"Invalid hash: {_short(raw)}")
    reject_unknown(raw, ("gt", "gte", "lt", "lte"), prefix=name)
    out: dict[str, int] = {}
    for op in raw:
        value = get_int(raw, op, label=f"{name}[{op}]")
        if value is not None:
            out[op] = value
    return out


def matches_created(ts: int, bounds: dict[str, int]) -> bool:
    """Whether a timestamp satisfies a :func:`created_filter` result."""
    checks = {
        "eq": ts == bounds.get("eq", ts),
        "gt": ts > bounds.get("gt", ts - 1),
        "gte": ts >= bounds.get("gte", ts),
        "lt": ts < bounds.get("lt", ts + 1),
        "lte": ts <= bounds.get("lte", ts),
    }
    return all(checks.values())


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
