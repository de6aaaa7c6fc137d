"""The emulator's in-memory state: objects by type, events, listing and expansion.

One re-entrant lock guards everything. Operations are short (no I/O happens under the
lock), so serialising them costs little and makes every multi-object change atomic,
the way a single Stripe API call is.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from . import objects
from .cards import Card
from .errors import invalid_request, parameter_invalid, resource_missing
from .forms import Params, created_filter, get_int, get_list, get_str, matches_created

Obj = dict[str, Any]

# What each id prefix names, for expansion and lookups: (table, noun used in errors).
PREFIXES = {
    "pi": ("payment_intent", "payment_intent"),
    "ch": ("charge", "charge"),
    "py": ("charge", "charge"),
    "ctoken": ("confirmation_token", "confirmation_token"),
    "re": ("refund", "refund"),
    "pm": ("payment_method", "PaymentMethod"),
    "dp": ("dispute", "dispute"),
    "evt": ("event", "event"),
    "cus": ("customer", "customer"),
    "cs": ("checkout.session", "checkout.session"),
    "taxcalc": ("tax.calculation", "tax.calculation"),
    "tax": ("tax.transaction", "tax.transaction"),
}

# The fields ``expand[]`` may turn from an id into the object, per object type.
EXPANDABLE = {
    "payment_intent": {"latest_charge", "payment_method", "customer"},
    "charge": {"payment_intent", "refunds"},
    "refund": {"charge", "payment_intent"},
    "dispute": {"charge", "payment_intent"},
    "payment_method": {"customer"},
    "confirmation_token": set(),
    "event": set(),
    "customer": set(),
    # Keyed by client secret (a CustomerSession has no id).
    "customer_session": set(),
    "checkout.session": {"payment_intent"},
    "coupon": set(),
    "tax.calculation": {"line_items"},  # includable in newer API versions: already there
    "tax.transaction": set(),
}


class RequestContext:
    """Who caused the current change: the API request id and its idempotency key."""

    def __init__(self, request_id: str | None = None, idempotency_key: str | None = None):
        self.request_id = request_id
        self.idempotency_key = idempotency_key


# Set by the app per request; async work (settle, refund failures) runs without one.
current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "current_request", default=None
)


class Store:
    """All objects the emulator holds, plus the event log."""

    def __init__(self, publish: Callable[[Obj], None], pending: Callable[[str], int]) -> None:
        self.lock = threading.RLock()
        self._publish = publish
        self._pending = pending
        self.tables: dict[str, dict[str, Obj]] = {}
        self.cards: dict[str, Card] = {}
        self.token_methods: dict[str, str] = {}
        self.detached: set[str] = set()
        self.session_items: dict[str, list[Obj]] = {}
        self.session_intent_data: dict[str, Obj] = {}
        self.session_by_intent: dict[str, str] = {}
        # Called with (event type, object) after each event: Checkout follows its intents.
        self.observers: list[Callable[[str, Obj], None]] = []
        self.reset()

    def reset(self) -> None:
        """Forget every object and event."""
        with self.lock:
            self.tables = {name: {} for name in EXPANDABLE}
            self.cards = {}
            # ConfirmationToken id -> the PaymentMethod it confirms with (not shown by the API).
            self.token_methods = {}
            # PaymentMethods once detached from a Customer: Stripe never reattaches them.
            self.detached = set()
            # Checkout Session id -> its line items / payment_intent_data; intent -> session.
            self.session_items = {}
            self.session_intent_data = {}
            self.session_by_intent = {}

    # --- objects ----------------------------------------------------------------------

    def insert(self, obj: Obj) -> Obj:
        """Store a new object under its id."""
        self.tables[obj["object"]][obj["id"]] = obj
        return obj

    def get(self, table: str, object_id: str, *, param: str = "id", noun: str | None = None) -> Obj:
        """The object with that id, or Stripe's ``resource_missing`` 404."""
        found = self.tables[table].get(object_id)
        if found is None:
            raise resource_missing(noun or table, object_id, param)
        return found

    # --- events -----------------------------------------------------------------------

    def emit(self, type_: str, obj: Obj, previous: Obj | None = None) -> Obj:
        """Record an event with a snapshot of ``obj`` and hand it to webhook delivery."""
        ctx = current_request.get()
        event = objects.event(
            type_,
            snapshot(obj),
            previous=previous,
            request_id=ctx.request_id if ctx else None,
            idempotency_key=ctx.idempotency_key if ctx else None,
            pending_webhooks=self._pending(type_),
        )
        self.insert(event)
        self._publish(event)
        for observer in self.observers:
            observer(type_, obj)
        return event

    # --- reading ----------------------------------------------------------------------

    def expand(self, obj: Obj, paths: Iterable[str]) -> Obj:
        """A copy of ``obj`` with the named id fields replaced by their objects."""
        out = obj
        for path in paths:
            head, _, rest = path.partition(".")
            allowed = EXPANDABLE.get(obj.get("object", ""), set())
            if head not in allowed:
                raise invalid_request(
                    f"This property cannot be expanded ({path}).", param="expand", stored=False
                )
            if out is obj:
                out = dict(obj)
            if head == "refunds":
                out["refunds"] = self._charge_refunds(obj)
                continue
            value = out.get(head)
            if isinstance(value, str):
                table = PREFIXES[value.split("_", 1)[0]][0]
                target = self.tables[table].get(value)
                if target is not None:
                    out[head] = self.expand(target, [rest]) if rest else target
            elif isinstance(value, dict) and rest:
                out[head] = self.expand(value, [rest])
        return out

    def _charge_refunds(self, charge: Obj) -> Obj:
        refunds = [
            r for r in reversed(self.tables["refund"].values()) if r["charge"] == charge["id"]
        ]
        return {
            "object": "list",
            "data": refunds,
            "has_more": False,
            "url": f"/v1/charges/{charge['id']}/refunds",
        }

    def render(self, obj: Obj, expand: Iterable[str] = ()) -> str:
        """The JSON text of an object (expanded), taken under the lock."""
        with self.lock:
            return json.dumps(self.expand(obj, expand) if expand else obj)

    def list_page(
        self,
        table: str,
        params: Params,
        url: str,
        keep: Callable[[Obj], bool] | None = None,
    ) -> str:
        """One page of a list endpoint, newest first, as JSON text."""
        limit = get_int(params, "limit", minimum=1, maximum=100)
        limit = 10 if limit is None else limit
        starting_after = get_str(params, "starting_after")
        ending_before = get_str(params, "ending_before")
        if starting_after and ending_before:
            raise parameter_invalid(
                "ending_before",
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
        created = created_filter(params)
        expand = [p.removeprefix("data.") for p in get_list(params, "expand")]
        with self.lock:
            ordered = list(reversed(self.tables[table].values()))

            def wanted(rows: list[Obj]) -> list[Obj]:
                return [
                    o
                    for o in rows
                    if (not created or matches_created(o["created"], created))
                    and (keep is None or keep(o))
                ]

            # Cursors are positions in the full newest-first order, so an id that the
            # filters exclude still pages correctly, as at Stripe.
            if starting_after:
                after = wanted(
                    ordered[self._cursor(table, ordered, starting_after, "starting_after") + 1 :]
                )
                page, has_more = after[:limit], len(after) > limit
            elif ending_before:
                before = wanted(
                    ordered[: self._cursor(table, ordered, ending_before, "ending_before")]
                )
                page, has_more = before[-limit:], len(before) > limit
            else:
                rows = wanted(ordered)
                page, has_more = rows[:limit], len(rows) > limit
            data = [self.expand(o, expand) for o in page] if expand else page
            return json.dumps({"object": "list", "data": data, "has_more": has_more, "url": url})

    def _cursor(self, table: str, ordered: list[Obj], cursor: str, param: str) -> int:
        if cursor in self.tables[table]:
            for index, obj in enumerate(ordered):
                if obj["id"] == cursor:
                    return index
        noun = PREFIXES.get(cursor.split("_", 1)[0], (table, table))[1]
        raise resource_missing(noun, cursor, param)


def snapshot(obj: Obj) -> Obj:
    """A deep copy of a JSON object (events must not change when the object does).

    Dicts and lists are copied and scalars shared (they are immutable); tuples become
    lists, as a JSON round trip would make them. Five times cheaper than that round trip,
    and every confirm snapshots several objects.
    """
    return _copy_dict(obj)


def _copy_dict(obj: Obj) -> Obj:
    out = {}
    for key, value in obj.items():
        kind = type(value)
        if kind is dict:
            value = _copy_dict(value)
        elif kind is list or kind is tuple:
            value = _copy_list(value)
        out[key] = value
    return out


def _copy_list(items: Iterable[Any]) -> list[Any]:
    out = []
    for value in items:
        kind = type(value)
        if kind is dict:
            value = _copy_dict(value)
        elif kind is list or kind is tuple:
            value = _copy_list(value)
        out.append(value)
    return out
