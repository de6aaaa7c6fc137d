"""Authorise now, capture at shipping (``CAPTURE_METHOD=manual``).

An AUTHORIZED order's stock is sold; its money is only reserved on the buyer's card
until ``capture_before`` (7 days for most cards). Captures are requested (audited
``CAPTURE_REQUESTED``, by an admin or by fulfilment start) and run by an actor:
:func:`capture_payment` captures at Stripe (all, or less — the rest is released),
puts back any restock lines, and starts fulfilment when asked. :func:`check_authorization`
is the clock's: warn 24 h before the authorisation lapses, close the order once it has.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import peewee
from prometheus_client import Counter

from app.errors import InvalidRequest, InvalidState, NotFound, PaymentProviderError
from app.services.fulfillment import update_fulfillment
from app.services.holds import restock_lines
from app.services.payments import apply_intent
from app.services.receipts import queue_mail
from app.services.records import lock_order
from app.services.state_machine import AUTHORIZED, PAID, record_event
from models import Order, OrderEvent
from models.db import database, utcnow
from models.statuses import MailKind, PaymentStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

# The operator is warned this long before an authorisation lapses uncaptured.
WARN_BEFORE = timedelta(hours=24)

AUTHORIZATIONS_EXPIRING = Counter(
    "checkout_authorizations_expiring_total",
    "Authorisations within 24 h of capture_before and still uncaptured (capture or lose them).",
)
AUTHORIZATIONS_EXPIRED = Counter(
    "checkout_authorizations_expired_total",
    "Authorisations that lapsed uncaptured (order canceled, stock back on sale).",
)


# --- capture requests ------------------------------------------------------------------


def fulfilment_request_id(order_id: str) -> str:
    """The one capture request a fulfilment start makes for an order."""
    return f"fulfil-{order_id}"


def capture_request(order_id: str, request_id: str) -> dict[str, Any] | None:
    """The payload of the order's ``CAPTURE_REQUESTED`` event with this request id."""
    rows = OrderEvent.select().where(
        (OrderEvent.order == order_id) & (OrderEvent.type == "CAPTURE_REQUESTED")
    )
    for event in rows:
        if (event.payload or {}).get("requestId") == request_id:
            return dict(event.payload)
    return None


def record_capture_request(
    order_id: str,
    request_id: str,
    *,
    amount: int | None = None,
    restock: list[dict[str, Any]] | None = None,
    fulfil: bool = False,
    details: dict[str, Any] | None = None,
    actor: str = "admin",
) -> bool:
    """Audit a capture request (once per ``request_id``); True when recorded now.

    Raises NotFound, InvalidState (not AUTHORIZED; more than authorised) or
    InvalidRequest (restock lines not on the order).
    """
    with database().atomic():
        order = lock_order(order_id)
        if capture_request(order.id, request_id) is not None:
            return False
        if order.state != AUTHORIZED:
            raise InvalidState(
                f"Only AUTHORIZED orders can be captured; this one is {order.state}."
            )
        if amount is not None and amount > order.total:
            raise InvalidState(f"At most {order.total} is authorised.")
        running = capture_in_flight(order.id)
        if running is not None:
            # One capture at a time, as one refund of the remainder: a second would
            # restock its lines again once the first has captured.
            raise InvalidState(
                f"Capture {running} of this order is still in flight; wait for its outcome."
            )
        lines = checked_restock(order, restock or [])
        payload = {
            "requestId": request_id,
            "amount": order.total if amount is None else amount,
            "restock": lines,
            "fulfil": fulfil,
            **(details or {}),
        }
        record_event(order, "CAPTURE_REQUESTED", payload, actor)
    return True


def capture_in_flight(order_id: str) -> str | None:
    """The request id of the order's capture not settled yet, or None.

    Called on an AUTHORIZED order, under its row lock: a request that captured moved
    the order on; one Stripe refused carries a ``CAPTURE_FAILED`` event.
    """
    requested, failed = capture_requests(order_id)
    return next((r for r in requested if r not in failed), None)


def capture_requests(order_id: str) -> tuple[list[str], set[str]]:
    """The order's capture request ids, oldest first, and those Stripe refused."""
    requested: list[str] = []
    failed: set[str] = set()
    rows = OrderEvent.select(OrderEvent.type, OrderEvent.payload).where(
        (OrderEvent.order == order_id)
        & OrderEvent.type.in_(("CAPTURE_REQUESTED", "CAPTURE_FAILED"))
    )
    for event in rows:
        request_id = str((event.payload or {}).get("requestId"))
        if event.type == "CAPTURE_FAILED":
            failed.add(request_id)
        else:
            requested.append(request_id)
    return requested, failed


def checked_restock(order: Order, restock: list[dict[str, Any]]) -> list[list[Any]]:
    """Restock lines as ``[[sku, quantity]]``; each must be on the order, within its quantity."""
    ordered = {str(line["sku"]): int(line["quantity"]) for line in order.line_items or []}
    errors: dict[str, list[str]] = {}
    for index, line in enumerate(restock):
        sku, qty = str(line["sku"]), int(line["quantity"])
        if sku not in ordered:
            errors[f"restock.{index}.sku"] = ["This SKU is not on the order."]
        elif qty > ordered[sku]:
            errors[f"restock.{index}.quantity"] = [f"At most {ordered[sku]} were ordered."]
    if errors:
        raise InvalidRequest("The restock lines do not match the order.", fields=errors)
    return [[str(line["sku"]), int(line["quantity"])] for line in restock]


# --- the capture itself (actor) ----------------------------------------------------------


def capture_payment(order_id: str, request_id: str, runtime: Runtime) -> list[int]:
    """Run one capture request; returns the outbox ids (the receipt) to send.

    Stripe key ``pi-capture-<requestId>``. An intent that moved on (already captured,
    voided, lapsed) is re-read and its status applied instead.
    """
    order = Order.get_or_none(Order.id == order_id)
    request = capture_request(order_id, request_id) if order is not None else None
    if order is None or request is None:
        raise NotFound(f"No capture request {request_id} for order {order_id}.")
    intent = None
    if order.state == AUTHORIZED and order.payment_intent_id:
        amount = int(request["amount"])
        try:
            intent = runtime.gateway.capture_intent(
                order.payment_intent_id,
                amount=None if amount >= order.total else amount,
                idempotency_key=f"pi-capture-{request_id}",
            )
        except PaymentProviderError as exc:
            if exc.retryable:
                raise
            log.error("order %s: capture %s refused: %s", order_id, request_id, exc.message)
            intent = runtime.gateway.retrieve_intent(order.payment_intent_id)
    with database().atomic():
        order = lock_order(order_id)
        outbox_ids = apply_intent(order, intent, runtime, actor="admin") if intent else []
        if order.state != AUTHORIZED and order.payment_status == PaymentStatus.SUCCEEDED:
            restock_once(order, runtime, request)
        elif order.state == AUTHORIZED:
            settle_refused(order, request_id)
        if request.get("fulfil") and order.state == PAID:
            update_fulfillment(
                order.id,
                "start",
                runtime=runtime,
                carrier=request.get("carrier"),
                tracking_number=request.get("trackingNumber"),
            )
    return outbox_ids


def restock_once(order: Order, runtime: Runtime, request: dict[str, Any]) -> None:
    """Put a capture request's restock lines back on hand, once."""
    lines = [(str(sku), int(qty)) for sku, qty in request.get("restock") or []]
    reason = f"capture:{request['requestId']}"
    done = OrderEvent.select().where(
        (OrderEvent.order == order.id) & (OrderEvent.type == "STOCK_RESTOCKED")
    )
    if not lines or any((event.payload or {}).get("reason") == reason for event in done):
        return
    restock_lines(order, runtime, lines, reason=reason, actor="admin")


def settle_refused(order: Order, request_id: str) -> None:
    """Mark a capture that left the order AUTHORIZED as done (once), so another may run."""
    if request_id in capture_requests(order.id)[1]:
        return
    record_event(order, "CAPTURE_FAILED", {"requestId": request_id}, "admin")


# --- the clock: warn before capture_before, close after ----------------------------------


def lapsing(moment: datetime, *columns: Any) -> peewee.ModelSelect[Order]:
    """AUTHORIZED orders within :data:`WARN_BEFORE` of ``capture_before`` (or past it),
    soonest first: the clock's warnings and the console's Attention page."""
    return (
        Order.select(*columns)
        .where(
            (Order.state == AUTHORIZED)
            & Order.capture_before.is_null(False)
            & (Order.capture_before <= moment + WARN_BEFORE)
        )
        .order_by(Order.capture_before)
    )


def due_order_ids(limit: int, now: datetime | None = None) -> list[str]:
    """AUTHORIZED orders to warn about (within 24 h, not warned yet) or to close (lapsed)."""
    moment = now or utcnow()
    rows = lapsing(moment, Order.id, Order.capture_before).limit(limit)
    due = []
    for order in rows:
        if order.capture_before <= moment or not warned(order.id):  # type: ignore[operator]
            due.append(order.id)
    return due


def warned(order_id: str) -> bool:
    """Whether the operator was already warned about this authorisation."""
    return (
        OrderEvent.select()
        .where((OrderEvent.order == order_id) & (OrderEvent.type == "AUTHORIZATION_EXPIRING"))
        .exists()
    )


def check_authorization(
    order_id: str, runtime: Runtime, *, now: datetime | None = None
) -> list[int]:
    """Warn once 24 h before ``capture_before``; close the order once it has passed.

    Past ``capture_before`` Stripe cancels the authorisation itself
    (``cancellation_reason: automatic``); if it has not yet, it is canceled here
    (``abandoned``) before the stock is released (I8). Returns outbox ids to send.
    """
    moment = now or utcnow()
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.state != AUTHORIZED or order.capture_before is None:
        return []
    lapses: datetime = order.capture_before
    if moment >= lapses:
        return close_lapsed(order, runtime)
    if moment < lapses - WARN_BEFORE:
        return []
    with database().atomic():
        order = lock_order(order_id)
        if order.state != AUTHORIZED or warned(order.id):
            return []
        when = lapses.isoformat() + "Z"
        record_event(
            order,
            "AUTHORIZATION_EXPIRING",
            {"intentId": order.payment_intent_id, "captureBefore": when, "amount": order.total},
            "clock",
        )
        outbox_id = queue_mail(
            order,
            MailKind.AUTHORIZATION_EXPIRING,
            "clock",
            to=runtime.config.operator_email,
        )
    AUTHORIZATIONS_EXPIRING.inc()
    log.error(
        "AUTHORIZATION OF ORDER %s LAPSES AT %s: capture it (start fulfilment) or lose it",
        order.order_number,
        when,
    )
    return [outbox_id]


def close_lapsed(order: Order, runtime: Runtime) -> list[int]:
    """The authorisation passed ``capture_before``: make sure it is canceled, then close."""
    gateway = runtime.gateway
    assert order.payment_intent_id is not None
    intent = gateway.retrieve_intent(order.payment_intent_id)
    if intent.status == PaymentStatus.REQUIRES_CAPTURE:
        try:
            intent = gateway.cancel_intent(
                intent.id, reason="abandoned", idempotency_key=f"pi-cancel-auth-{order.id}"
            )
        except PaymentProviderError as exc:
            if exc.retryable:
                raise
            intent = gateway.retrieve_intent(intent.id)
    with database().atomic():
        locked = lock_order(order.id)
        outbox_ids = apply_intent(locked, intent, runtime, actor="clock")
    if intent.status == PaymentStatus.CANCELED:
        AUTHORIZATIONS_EXPIRED.inc()
        log.error("authorisation of order %s lapsed uncaptured; order canceled", order.id)
    return outbox_ids
