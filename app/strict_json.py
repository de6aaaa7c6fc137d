"""Strict JSON for everything a client or Stripe sends: request bodies and webhook events.

Beyond ``json.loads``: no ``NaN``/``Infinity`` (JSON has neither), no key twice in one
object (the standard library keeps the last, so ``"quantity":1,"quantity":2`` would price
2 while a proxy or a log reader sees 1), and no nesting deeper than :data:`MAX_DEPTH`
(nothing we accept nests past a dozen levels; a deep document costs recursion in every
later walk, serialiser and worker, where it fails as a 500 or a poison message).

Every refusal is a ``ValueError``, as ``json.loads``'s own are; callers map it to
``malformed_json``.
"""

from __future__ import annotations

import json
from typing import Any

# Stripe's events nest about ten levels, our request bodies four or five.
MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    """JSON has no NaN or Infinity; Python's parser would accept them."""
    raise ValueError(f"invalid JSON constant {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict, refused when a key occurs twice."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("a key occurs twice in one object")
    return value


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON bytes strictly; ``ValueError`` on anything outside the rules above."""
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
    except RecursionError as exc:  # the parser's own stack gave out (thousands deep)
        raise ValueError("nested too deeply") from exc
    if isinstance(value, dict | list) and may_nest_too_deep(raw) and too_deep(value):
        raise ValueError("nested too deeply")
    return value


def may_nest_too_deep(raw: bytes) -> bool:
    """Whether ``raw`` has enough opening brackets to nest past :data:`MAX_DEPTH`.

    Every level opens with a ``[`` or ``{`` (counting those inside strings too only
    overcounts), so a body with fewer cannot be too deep and skips the walk: two scans
    in C instead of a walk of every value in Python (a request body has a dozen).
    """
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
