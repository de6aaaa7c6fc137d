"""Orders: writing the PENDING order from an admitted submission, and order lookups.

The submit endpoint only admits (Redis); the worker calls
:func:`create_order_from_submission`, which prices the cart from the database and
writes order + reservation + first audit events in ONE transaction (idempotent: a
second run finds the order), then creates the PaymentIntent (``payments``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import peewee

from app.errors import InvalidRequest, NotFound
from app.services import admission, checkout_status
from app.services.catalog import product_prices
from app.services.inventory import Inventory
from app.services.pricing import price_cart
from app.services.state_machine import PENDING, record_event
from models import Order, Reservation
from models.db import database, is_postgres, utcnow

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

ORDER_LOCK_PREFIX = "{shop}:lock:order:"


@dataclass(frozen=True)
class Unprocessable:
    """Why a submission could not become an order (published to the read model)."""

    code: str
    message: str


def to_utc_naive(value: str | datetime) -> datetime:
    """An ISO 8601 string or datetime as the naive UTC datetime the database stores."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@contextmanager
def order_lock(redis: Any, order_id: str, timeout: int = 120) -> Iterator[None]:
    """One actor at a time per order (``{shop}:lock:order:<id>``), across all workers."""
    lock = redis.lock(ORDER_LOCK_PREFIX + order_id, timeout=timeout, blocking_timeout=30)
    if not lock.acquire():
        # Another worker holds the order for longer than we wait: retry later.
        raise TimeoutError(f"order {order_id} is locked by another worker")
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # the lock expired meanwhile; nothing to release
            log.warning("order lock for %s expired before release", order_id)


def lock_order(order_id: str) -> Order:
    """Re-read an order inside the current transaction, row-locked on PostgreSQL."""
    query = Order.select().where(Order.id == order_id)
    if is_postgres():
        query = query.for_update()
    order = query.get_or_none()
    if order is None:
        raise NotFound(f"Order {order_id} not found.")
    return order


def submission_lines(submission: dict[str, Any]) -> list[tuple[str, int]]:
    """The ``(sku, quantity)`` lines of a stored submission."""
    lines = []
    for item in submission.get("items") or []:
        if isinstance(item, dict):
            lines.append((str(item["sku"]), int(item["quantity"])))
        else:
            lines.append((str(item[0]), int(item[1])))
    return lines


def write_order(order_id: str, view: dict[str, Any], currency: str) -> Order:
    """Price the submission and write order + reservation + ORDER_CREATED + STOCK_HELD.

    One transaction; when another worker wrote the order first, returns that order.
    Raises InvalidRequest when the cart can no longer be priced (e.g. a SKU removed).
    """
    submission = view["submission"]
    lines = submission_lines(submission)
    quote = price_cart(
        lines,
        submission.get("shippingAddress"),
        currency,
        product_prices(sku for sku, _ in lines),
    )
    reservation_id = submission.get("reservationId") or view.get("reservationId")
    expires_at = to_utc_naive(view["holdExpiresAt"])
    try:
        with database().atomic():
            order = Order.create(
                id=order_id,
                order_number=view["orderNumber"],
                idempotency_key=submission.get("idempotencyKey") or f"order:{order_id}",
                state=PENDING,
                email=submission["email"],
                user_id=view.get("userId") or None,
                line_items=[line.to_dict() for line in quote.line_items],
                subtotal=quote.subtotal,
                shipping=quote.shipping,
                tax=quote.tax,
                total=quote.total,
                currency=quote.currency,
                shipping_address=submission.get("shippingAddress") or {},
                billing_address=submission.get("billingAddress"),
                reservation_id=reservation_id,
                checkout_token_hash=view.get("tokenHash") or "",
                payment_status="creating",
            )
            Reservation.create(
                id=reservation_id,
                order=order,
                items=[list(x) for x in lines],
                expires_at=expires_at,
            )
            record_event(
                order,
                "ORDER_CREATED",
                {
                    "orderNumber": order.order_number,
                    "total": order.total,
                    "currency": order.currency,
                },
                actor="worker",
            )
            record_event(
                order,
                "STOCK_HELD",
                {
                    "reservationId": reservation_id,
                    "items": [list(x) for x in lines],
                    "expiresAt": admission.iso_utc(expires_at),
                },
                actor="worker",
            )
    except peewee.IntegrityError:
        # A concurrent run wrote it first (same order id or idempotency key): use theirs.
        existing = Order.get_or_none(Order.id == order_id)
        if existing is None:
            raise
        return existing
    return order


def create_order_from_submission(order_id: str, runtime: Runtime) -> Order | None:
    """Make sure the order of an admitted submission exists and has its PaymentIntent.

    Returns the order, or None when the submission is gone or unprocessable (its hold
    is released and the reason published). Retryable Stripe errors propagate.
    """
    from app.services import payments  # payments imports this module

    redis = runtime.redis
    order = Order.get_or_none(Order.id == order_id)
    if order is None:
        view = checkout_status.read(redis, order_id)
        if view is None or not view.get("submission"):
            log.warning("submission %s is gone; nothing to create", order_id)
            admission.mark_written(redis, order_id)
            return None
        if view.get("state") not in (None, "", PENDING):
            # Expired (or refused) before a worker got to it.
            admission.mark_written(redis, order_id)
            return None
        try:
            order = write_order(order_id, view, runtime.config.store_currency)
        except InvalidRequest as exc:
            reject_submission(
                runtime, order_id, view, Unprocessable("validation_failed", exc.message)
            )
            return None
    admission.mark_written(redis, order_id)
    if order.state != PENDING:
        return order
    return payments.ensure_intent(order, runtime)


def reject_submission(
    runtime: Runtime, order_id: str, view: dict[str, Any], why: Unprocessable
) -> None:
    """A submission that will never become an order: release its hold, publish why."""
    submission = view.get("submission") or {}
    reservation_id = submission.get("reservationId") or view.get("reservationId")
    if reservation_id:
        Inventory(runtime.redis).release(reservation_id)
    checkout_status.publish(
        runtime.redis,
        order_id,
        state="CANCELED" if why.code == "hold_expired" else "FAILED",
        paymentStatus="canceled",
        error={"code": why.code, "message": why.message},
    )
    admission.mark_written(runtime.redis, order_id)
    log.warning("submission %s unprocessable: %s (%s)", order_id, why.code, why.message)


def checkout_fields(order: Order) -> dict[str, Any]:
    """The read-model fields that mirror an order row (published after each change)."""
    return {
        "state": order.state,
        "paymentStatus": order.payment_status,
        "intentId": order.payment_intent_id or "",
        "clientSecret": order.client_secret or "",
        "lineItems": order.line_items,
        "totals": totals(order),
    }


def totals(order: Order) -> dict[str, Any]:
    """The contract's ``totals`` object of an order."""
    return {
        "subtotal": order.subtotal,
        "shipping": order.shipping,
        "tax": order.tax,
        "total": order.total,
        "currency": order.currency,
    }


def touch(order: Order, **changes: Any) -> Order:
    """Save ``changes`` on ``order`` with a fresh ``updated_at``."""
    for name, value in changes.items():
        setattr(order, name, value)
    order.updated_at = utcnow()
    order.save(only=[*(getattr(Order, n) for n in changes), Order.updated_at])
    return order
