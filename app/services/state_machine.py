"""The order state machine: one transition table, and the audit trail (I4).

Every state change goes through :func:`transition`, which refuses anything the table
does not list with :class:`~app.errors.InvalidState` and appends a ``STATE_CHANGED``
event ``{from, to, reason}``. Other facts are appended with :func:`record_event`.
Callers run both inside the transaction that makes the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from peewee import Field

from app.errors import InvalidState
from app.services import shop_events
from app.services.order_body import trail_of, trail_read
from models import Order, OrderEvent, statements
from models.db import utcnow
from models.statuses import OrderState

PENDING, PAID = OrderState.PENDING, OrderState.PAID
AUTHORIZED = OrderState.AUTHORIZED
FULFILLING, FULFILLED = OrderState.FULFILLING, OrderState.FULFILLED
FAILED, CANCELED, REFUNDED = OrderState.FAILED, OrderState.CANCELED, OrderState.REFUNDED

# The one transition table: state → the states it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({AUTHORIZED, PAID, FAILED, CANCELED}),
    # Manual capture (wave 2): authorised, stock confirmed; captured → PAID, voided or
    # lapsed uncaptured → CANCELED.
    AUTHORIZED: frozenset({PAID, CANCELED}),
    PAID: frozenset({FULFILLING, REFUNDED}),
    FULFILLING: frozenset({FULFILLED, REFUNDED}),
    FULFILLED: frozenset({REFUNDED}),
    FAILED: frozenset(),
    CANCELED: frozenset(),
    REFUNDED: frozenset(),
}
STATES = tuple(TRANSITIONS)
TERMINAL = frozenset(state for state, targets in TRANSITIONS.items() if not targets)

# Reasons that make a late payment whole (the buyer paid after the hold was released).
LATE_PAYMENT = "late_payment_restocked"
STOCK_UNAVAILABLE_AFTER_PAYMENT = "stock_unavailable_after_payment"
REFUND_REVERSED = "refund_failed"
# Part of the table, but legal ONLY for the listed reasons: a closed order reopens
# when its payment succeeded after all and its lines could be held again (PAID), a
# FAILED order whose late payment is refunded for want of stock ends CANCELED, and a
# REFUNDED order whose refund Stripe said succeeded fails after all
# (``pm_card_refundFail``) goes back to the state it was refunded from.
REASONED_TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (CANCELED, PAID): frozenset({LATE_PAYMENT}),
    (FAILED, PAID): frozenset({LATE_PAYMENT}),
    (FAILED, CANCELED): frozenset({STOCK_UNAVAILABLE_AFTER_PAYMENT}),
    (REFUNDED, PAID): frozenset({REFUND_REVERSED}),
    (REFUNDED, FULFILLING): frozenset({REFUND_REVERSED}),
    (REFUNDED, FULFILLED): frozenset({REFUND_REVERSED}),
}

# Audit event types (design.md lists the first fourteen; the rest are ours).
EVENT_TYPES = frozenset(
    {
        "ORDER_CREATED",
        "STOCK_HELD",
        "PAYMENT_INTENT_CREATED",
        "PAYMENT_REQUIRES_ACTION",
        "PAYMENT_PROCESSING",
        "PAYMENT_FAILED",
        "PAYMENT_SUCCEEDED",
        "STOCK_CONFIRMED",
        "STOCK_RECLAIMED",
        "HOLD_EXPIRED",
        "HOLD_EXTENDED",
        "PAYMENT_INTENT_LOOKUP",
        "PAYMENT_INTENT_CANCELED",
        "STOCK_RELEASED",
        "REFUND_REQUESTED",
        "REFUND_UPDATED",
        "REFUND_FAILED",
        "REFUNDED",
        "STATE_CHANGED",
        "DISPUTE_CREATED",  # before wave 2; DISPUTE_OPENED since
        "DISPUTE_OPENED",
        "DISPUTE_UPDATED",
        "DISPUTE_CLOSED",
        "DISPUTE_EVIDENCE_STAGED",
        "LATE_PAYMENT_REFUNDED",
        "STOCK_UNAVAILABLE",
        "RECEIPT_QUEUED",
        "RECEIPT_SENT",
        "STOCK_RESTOCKED",
        "PAYMENT_AFTER_CLOSE",
        "PAYMENT_MISMATCH_IGNORED",
        "ORDER_UNPROCESSABLE",
        "FULFILLMENT_STARTED",
        "FULFILLED",
        # Wave 2: manual capture, delayed payment methods, e-mails through the outbox.
        "PAYMENT_AUTHORIZED",
        "CAPTURE_REQUESTED",
        "CAPTURE_FAILED",  # Stripe refused it; the order stays AUTHORIZED, another may be asked
        "PAYMENT_CAPTURED",
        "AUTHORIZATION_VOIDED",
        "AUTHORIZATION_EXPIRING",
        "AUTHORIZATION_EXPIRED",
        "PAYMENT_CONFIRMATION_REQUESTED",
        "PAYMENT_PROCESSING_OVERDUE",
        "MAIL_QUEUED",
        "MAIL_SENT",
        "SHOP_NOTIFIED",
        # Wave 3: the buyer's personal data was redacted (flask buyers erase).
        "PERSONAL_DATA_ERASED",
        # Wave 3: hosted Checkout (the session's intent is PAYMENT_INTENT_CREATED when
        # the buyer's first attempt makes it).
        "CHECKOUT_SESSION_CREATED",
        # Wave 3: Stripe Tax (TAX_PROVIDER=stripe): the paid order's tax transaction and
        # a refund's reversal recorded at Stripe, or refused by it for good.
        "TAX_TRANSACTION_RECORDED",
        "TAX_REVERSAL_RECORDED",
        "TAX_RECORDING_FAILED",
    }
)


# Actors that are people, named in their events' payloads (``record_event``).
PERSON_ACTORS = ("operator:", "admin:")


def can_transition(current: str, to: str, reason: str | None = None) -> bool:
    """Whether the table allows ``current`` → ``to`` (for ``reason``, if it is restricted)."""
    if to in TRANSITIONS.get(current, frozenset()):
        return True
    return reason in REASONED_TRANSITIONS.get((current, to), frozenset())


def record_event(
    order: Order, type_: str, payload: dict[str, Any] | None = None, actor: str = "system"
) -> OrderEvent:
    """Append one audit event to ``order``'s trail.

    A person's action (``operator:<email>`` from the console, ``admin:<sub>`` from the
    admin API) names them in the payload too: the order body shows payloads, not the
    ``actor`` column (which keeps the first 64 characters).
    """
    return record_events(order, [(type_, payload)], actor)[0]


def record_events(
    order: Order, events: Sequence[tuple[str, dict[str, Any] | None]], actor: str = "system"
) -> list[OrderEvent]:
    """Append ``events`` (``(type, payload)``, oldest first) to ``order``'s trail in one
    multi-row INSERT; each as :func:`record_event` appends it."""
    rows = [_event_row(order, type_, payload, actor) for type_, payload in events]
    written = statements.create_many(OrderEvent, rows)
    _tell_shop(order, events)
    return written


def record_events_and_trail(
    order: Order, events: Sequence[tuple[str, dict[str, Any] | None]], actor: str = "system"
) -> list[OrderEvent]:
    """:func:`record_events`, answering ``order``'s whole trail with them, oldest first:
    the earlier events read in the INSERT's own statement on PostgreSQL
    (``statements.create_many_beside``), not by a statement of their own after it."""
    rows = [_event_row(order, type_, payload, actor) for type_, payload in events]
    written, earlier = statements.create_many_beside(OrderEvent, rows, trail_read(order))
    _tell_shop(order, events)
    return trail_of(earlier) + written


def _tell_shop(order: Order, events: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
    """The shop events of audit events that are themselves one (a dispute's)."""
    for type_, _ in events:
        if type_ in shop_events.AUDIT_EVENTS:
            shop_events.record(order, shop_events.AUDIT_EVENTS[type_])


def _event_row(
    order: Order, type_: str, payload: dict[str, Any] | None, actor: str
) -> dict[str, Any]:
    """One audit event's columns; a person's action names them in the payload."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown audit event type {type_!r}")
    if actor.startswith(PERSON_ACTORS):
        payload = {**(payload or {}), "actor": actor}
    return {
        "order": order,
        "ts": utcnow(),
        "type": type_,
        "payload": payload or {},
        "actor": actor[:64],
    }


def transition(
    order: Order,
    to: str,
    reason: str,
    actor: str = "system",
    payload: dict[str, Any] | None = None,
    *,
    changes: Mapping[Field, Any] | None = None,
    events: Sequence[tuple[str, dict[str, Any] | None]] = (),
) -> Order:
    """Move ``order`` to ``to`` (saved) and append ``STATE_CHANGED``; InvalidState if illegal.

    ``changes``: other columns of the order written in the same UPDATE (plain values);
    ``events``: audit events ``(type, payload)`` recorded just before ``STATE_CHANGED``,
    in the same multi-row INSERT (what the change is the consequence of).
    """
    current = order.state
    if not can_transition(current, to, reason):
        raise InvalidState(f"An order in state {current} cannot become {to}.")
    # Compare-and-set on the old state: a concurrent writer that moved the order first
    # makes this update touch no row, and the change is refused instead of lost.
    now = utcnow()
    values = {**(changes or {}), Order.state: to, Order.updated_at: now}
    updated = statements.update(Order, order.id, values, expect={Order.state: current})
    if updated != 1:
        raise InvalidState(f"Order {order.id} changed state concurrently; {current} is stale.")
    for field, value in values.items():
        setattr(order, field.name, value)
    changed = {"from": current, "to": to, "reason": reason, **(payload or {})}
    trail = record_events_and_trail(order, [*events, ("STATE_CHANGED", changed)], actor)
    # The shop's outbox, same transaction; the body's trail is the one just answered.
    shop_events.record(order, shop_events.type_for_state(to), trail=trail)
    return order
