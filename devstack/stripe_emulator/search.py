"""Stripe's search query language, enough of it for PaymentIntents.

``status:'succeeded' AND metadata['orderId']:'42'``, ``amount>1000``, ``-currency:'eur'``,
``description~'gift'`` (substring). Clauses join with ``AND`` or ``OR``, never both
(docs.stripe.com/search#search-query-language).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import StripeError, invalid_request

Obj = dict[str, Any]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<join>AND|OR)\b
      | (?P<clause>
            (?P<neg>-)?
            (?P<field>metadata\[(?P<q1>['"])(?P<mkey>.+?)(?P=q1)\]|[a-z_]+)
            (?P<op>>=|<=|:|~|>|<)
            (?:(?P<q2>['"])(?P<sval>(?:\\.|(?!(?P=q2)).)*)(?P=q2)|(?P<nval>-?\d+(?:\.\d+)?)|(?P<null>null))
        )
    )""",
    re.VERBOSE,
)

PAYMENT_INTENT_FIELDS = {"amount", "created", "currency", "customer", "metadata", "status"}
NUMERIC = {"amount", "created"}


@dataclass
class Clause:
    """One ``field op value`` term."""

    field: str
    metadata_key: str | None
    op: str
    value: str | float | None
    negate: bool

    def matches(self, obj: Obj) -> bool:
        """Whether an object satisfies the term."""
        if self.metadata_key is not None:
            actual: Any = obj.get("metadata", {}).get(self.metadata_key)
        else:
            actual = obj.get(self.field)
        result = _compare(actual, self.op, self.value)
        return not result if self.negate else result


def _compare(actual: Any, op: str, value: str | float | None) -> bool:
    if value is None:
        return (actual is None) if op == ":" else False
    if op in (">", "<", ">=", "<="):
        if not isinstance(actual, int | float) or not isinstance(value, float):
            return False
        return {
            ">": actual > value,
            "<": actual < value,
            ">=": actual >= value,
            "<=": actual <= value,
        }[op]
    if actual is None:
        return False
    if op == "~":
        return str(value).lower() in str(actual).lower()
    if isinstance(value, float):
        return isinstance(actual, int | float) and actual == value
    return str(actual) == value


def parse(query: str, allowed: set[str] = PAYMENT_INTENT_FIELDS) -> Callable[[Obj], bool]:
    """Compile a query into a predicate; raises Stripe's 400 for a malformed query."""
    clauses: list[Clause] = []
    joins: set[str] = set()
    pos, expect_clause = 0, True
    text = query.strip()
    if not text:
        raise _invalid(query, "the query is empty")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _invalid(query, f"unexpected input at character {pos}")
        pos = match.end()
        if match.group("join"):
            if expect_clause:
                raise _invalid(query, f"'{match.group('join')}' must join two clauses")
            joins.add(match.group("join"))
            expect_clause = True
            continue
        if not expect_clause:
            raise _invalid(query, "clauses must be joined with AND or OR")
        clauses.append(_clause(match, allowed, query))
        expect_clause = False
    if expect_clause:
        raise _invalid(query, "the query ends with a join")
    if len(joins) > 1:
        raise _invalid(query, "AND and OR cannot be combined in one query")
    if joins == {"OR"}:
        return lambda obj: any(c.matches(obj) for c in clauses)
    return lambda obj: all(c.matches(obj) for c in clauses)


def _clause(match: re.Match[str], allowed: set[str], query: str) -> Clause:
    field = match.group("field")
    key = match.group("mkey")
    name = "metadata" if key is not None else field
    if name not in allowed:
        raise _invalid(query, f"Field '{name}' is an unsupported search field")
    op = match.group("op")
    value: str | float | None
    if match.group("null") is not None:
        value = None
    elif match.group("nval") is not None:
        value = float(match.group("nval"))
    else:
        value = re.sub(r"\\(.)", r"\1", match.group("sval"))
    if op in (">", "<", ">=", "<=") and (name not in NUMERIC or not isinstance(value, float)):
        raise _invalid(query, f"Field '{name}' does not support the '{op}' operator")
    if name in NUMERIC and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _invalid(query, f"Field '{name}' needs a number") from None
    return Clause(name, key, op, value, bool(match.group("neg")))


def _invalid(query: str, reason: str) -> StripeError:
    return invalid_request(f"Invalid query: {reason} (in `{query}`).", param="query", stored=False)
