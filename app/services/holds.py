"""Stock holds of an order: the reservation row and its Redis record move together.

``confirm_hold`` sells the units (stock on hand decremented), ``release_hold`` puts them
back on sale, ``return_confirmed`` puts sold units back (a voided or lapsed
authorisation: the stock was confirmed at authorisation), ``restock_lines`` puts some
units of a captured order back, ``sync_redis_hold`` repairs Redis after the database
moved on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis import Redis

from app import keys
from app.errors import InvalidRequest, OutOfStock
from app.services.inventory import Inventory
from app.services.state_machine import record_event
from models import Order, OrderEvent, Product, Reservation, statements
from models.db import database, is_postgres, utcnow
from models.statuses import ReservationStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

# The events whose ``items`` put sold units back on hand, and the one that sells them.
SOLD_OR_PUT_BACK = ("STOCK_CONFIRMED", "STOCK_RESTOCKED", "STOCK_RELEASED", "STOCK_RECLAIMED")
# The event that takes units a refund put back off sale again (the refund failed later).
RECLAIMED = "STOCK_RECLAIMED"


def confirm_hold(order: Order, runtime: Runtime, actor: str) -> None:
    """HELD → CONFIRMED in the database (stock on hand decremented) and in Redis."""
    # One statement marks a HELD reservation and answers it (a SELECT and an UPDATE before).
    now = utcnow()
    marked = statements.run(
        "holds.confirm",
        lambda: (
            Reservation.update(status=ReservationStatus.CONFIRMED, updated_at=now)
            .where((Reservation.order == order.id) & (Reservation.status == ReservationStatus.HELD))
            .returning(Reservation.id, Reservation.items)
        ),
        [ReservationStatus.CONFIRMED, now, order.id, ReservationStatus.HELD],
    ).fetchone()
    if marked is None:  # none, or no longer held
        return
    reservation = statements.instance(Reservation, marked, CONFIRMED_ANSWERS)
    for sku, qty in reservation.items:
        take_stock(str(sku), int(qty))
    # Idempotent; done before commit so a rolled-back transaction is simply redone.
    Inventory(runtime.redis).confirm(reservation.id)
    record_event(order, "STOCK_CONFIRMED", {"reservationId": reservation.id}, actor)


# What confirm_hold's UPDATE answers of the reservation it marked.
CONFIRMED_ANSWERS = (Reservation.id, Reservation.items)


def take_stock(sku: str, qty: int) -> None:
    """Take ``qty`` sold units of ``sku`` off hand, relative to the row's count so that
    concurrent sales add up (Redis decided that the units were there: I1)."""
    now = utcnow()
    statements.run(
        "holds.take_stock",
        lambda: Product.update(stock_on_hand=Product.stock_on_hand - qty, updated_at=now).where(
            Product.sku == sku
        ),
        [qty, now, sku],
    )


def rehold_hold(order: Order, runtime: Runtime, actor: str) -> bool:
    """Sell a released hold's lines again (a late payment): True if sold, False if short.

    One Lua script takes the units (I1) and marks the Redis record CONFIRMED; the
    reservation row follows (RELEASED → CONFIRMED, stock on hand decremented). Done
    before commit like :func:`confirm_hold`: a rolled-back transaction's retry finds
    the Redis record CONFIRMED and only redoes the database part.
    """
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    if reservation is None:
        return False
    if reservation.status == ReservationStatus.CONFIRMED:
        return True
    lines = [(str(sku), int(qty)) for sku, qty in reservation.items]
    try:
        Inventory(runtime.redis).rehold(reservation.id, lines, order.id)
    except (OutOfStock, InvalidRequest) as refused:
        record_event(
            order,
            "STOCK_UNAVAILABLE",
            {"reservationId": reservation.id, "short": getattr(refused, "items", [])},
            actor,
        )
        return False
    for sku, qty in lines:
        take_stock(sku, qty)
    reservation.status, reservation.updated_at = ReservationStatus.CONFIRMED, utcnow()
    reservation.save()
    record_event(
        order, "STOCK_HELD", {"reservationId": reservation.id, "reason": "late_payment"}, actor
    )
    record_event(order, "STOCK_CONFIRMED", {"reservationId": reservation.id}, actor)
    return True


def release_hold(order: Order, runtime: Runtime, *, reason: str, actor: str = "worker") -> None:
    """HELD → RELEASED in the database and in Redis (units back on sale)."""
    reservation = statements.get(Reservation, order.id, by=Reservation.order)
    if reservation is None or reservation.status != ReservationStatus.HELD:
        return
    reservation.status, reservation.updated_at = ReservationStatus.RELEASED, utcnow()
    statements.save(reservation, Reservation.status, Reservation.updated_at)
    Inventory(runtime.redis).release(reservation.id)
    record_event(
        order, "STOCK_RELEASED", {"reservationId": reservation.id, "reason": reason}, actor
    )


def return_confirmed(order: Order, runtime: Runtime, *, reason: str, actor: str) -> None:
    """CONFIRMED → RELEASED: the units go back on hand (DB now, Redis after commit)."""
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    if reservation is None or reservation.status != ReservationStatus.CONFIRMED:
        return
    lines = [(str(sku), int(qty)) for sku, qty in reservation.items]
    reservation.status, reservation.updated_at = ReservationStatus.RELEASED, utcnow()
    reservation.save()
    restock_lines(
        order,
        runtime,
        lines,
        event="STOCK_RELEASED",
        reason=reason,
        actor=actor,
        returned=reservation.id,
    )


def restock_lines(
    order: Order,
    runtime: Runtime,
    lines: Sequence[tuple[str, int]],
    *,
    event: str = "STOCK_RESTOCKED",
    reason: str,
    actor: str,
    returned: str | None = None,
) -> list[tuple[str, int]]:
    """Put sold units back on hand (DB now, Redis counters once committed) and audit it.

    Never more per SKU than the order bought, summed over every capture, refund and
    void (:func:`restockable`): lines beyond that are cut, duplicates count together.
    Returns the lines put back (none: no event). The caller holds the order's row lock.
    ``returned``: the reservation now RELEASED in the database (a void), whose Redis
    record follows in the same script as the counters, even when no unit is left to
    put back.
    """
    left = restockable(order)
    taken: dict[str, int] = {}
    for sku, qty in lines:
        take = min(int(qty), left.get(sku, 0) - taken.get(sku, 0))
        if take > 0:
            taken[sku] = taken.get(sku, 0) + take
    back = list(taken.items())
    if back:
        for sku, qty in back:
            Product.update(stock_on_hand=Product.stock_on_hand + qty, updated_at=utcnow()).where(
                Product.sku == sku
            ).execute()
        record_event(
            order,
            event,
            {
                "reservationId": order.reservation_id,
                "items": [list(x) for x in back],
                "reason": reason,
            },
            actor,
        )
    if back or returned is not None:
        redis = runtime.redis
        # After commit only: a rolled-back transaction must not add the units twice on
        # retry. One script for the counters and the record: no extra round trip.
        database().after_commit(lambda: Inventory(redis).restock(back, returned=returned))
    return back


def restockable(order: Order) -> dict[str, int]:
    """Units per SKU the order may still put back: bought, minus restocked since sold.

    The count is the order's own audit trail, read under the order's row lock that
    every restock's transaction holds (``FOR UPDATE`` on PostgreSQL; SQLite's writers
    are serialised by ``BEGIN IMMEDIATE``): a concurrent capture, refund and void queue
    on the row and each sees the others' events. Redis could not say this (its counters
    know SKUs, not orders). Counting starts at the last sale (STOCK_CONFIRMED), so a
    late payment that sold released lines again may restock them again.
    """
    if is_postgres():  # re-taken here (nothing new when held) so no caller can forget it
        Order.select(Order.id).where(Order.id == order.id).for_update().execute()
    bought: dict[str, int] = {}
    for line in order.line_items or []:
        bought[str(line["sku"])] = bought.get(str(line["sku"]), 0) + int(line["quantity"])
    restocked: dict[str, int] = {}
    events = (
        OrderEvent.select(OrderEvent.type, OrderEvent.payload)
        .where((OrderEvent.order == order.id) & OrderEvent.type.in_(SOLD_OR_PUT_BACK))
        .order_by(OrderEvent.id)
    )
    for row in events:
        if row.type == "STOCK_CONFIRMED":
            restocked = {}  # sold (again): every unit may come back once more
            continue
        sign = -1 if row.type == RECLAIMED else 1  # sold again: may come back again
        for sku, qty in (row.payload or {}).get("items") or []:
            restocked[str(sku)] = restocked.get(str(sku), 0) + sign * int(qty)
    left = {sku: qty - restocked.get(sku, 0) for sku, qty in bought.items()}
    return {sku: qty for sku, qty in left.items() if qty > 0}


def reclaim_refund_restock(order: Order, runtime: Runtime, *, actor: str) -> None:
    """Take the units a refund put back on sale off sale again: the refund failed after
    Stripe had said it succeeded, so the goods are still the buyer's.

    As many as are still free: units sold again meanwhile stay sold (an oversell of the
    shelf a person must settle: the event's ``short`` and an ERROR line say so). Redis
    decides inside this transaction, once per restock (``reclaim.lua``'s marker), so a
    retried message takes nothing twice; a transaction that never commits leaves the
    counter lower than the database, the safe side, until ``inventory rebuild``.
    """
    outstanding: dict[str, int] = {}
    last_restock = None
    events = (
        OrderEvent.select()
        .where((OrderEvent.order == order.id) & OrderEvent.type.in_(SOLD_OR_PUT_BACK))
        .order_by(OrderEvent.id)
    )
    for row in events:
        payload = row.payload or {}
        if row.type == "STOCK_CONFIRMED":
            outstanding, last_restock = {}, None
        elif row.type == RECLAIMED or payload.get("reason") == "refund":
            sign = -1 if row.type == RECLAIMED else 1
            for sku, qty in payload.get("items") or []:
                outstanding[str(sku)] = outstanding.get(str(sku), 0) + sign * int(qty)
            last_restock = row.id if sign > 0 else last_restock
    lines = [(sku, qty) for sku, qty in outstanding.items() if qty > 0]
    if not lines or last_restock is None:
        return
    marker = keys.reclaim(order.id, int(last_restock))
    taken = Inventory(runtime.redis).reclaim(lines, marker)
    for sku, qty in taken.items():
        if qty > 0:
            take_stock(sku, qty)
    short = [[sku, qty - taken.get(sku, 0)] for sku, qty in lines if qty > taken.get(sku, 0)]
    items = [[sku, qty] for sku, qty in taken.items() if qty > 0]
    payload = {"reservationId": order.reservation_id, "items": items, "short": short}
    record_event(order, RECLAIMED, {**payload, "reason": "refund_failed"}, actor)
    if short:
        log.error(
            "order %s: units restocked for a failed refund were sold again: %s", order.id, short
        )


def original_hold_expiry(order: Order) -> datetime | None:
    """When the order's hold first expired (STOCK_HELD), before any extension."""
    held = (
        OrderEvent.select()
        .where((OrderEvent.order == order.id) & (OrderEvent.type == "STOCK_HELD"))
        .first()
    )
    expires = (held.payload or {}).get("expiresAt") if held is not None else None
    if not expires:
        return None
    moment = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def overdue_order_ids(redis: Redis, limit: int) -> list[str]:
    """Orders whose hold is past due, from Redis and from the database (the record)."""
    found = {order_id for _, order_id in Inventory(redis).overdue() if order_id}
    held = (
        Reservation.select(Reservation.order)
        .where((Reservation.status == ReservationStatus.HELD) & (Reservation.expires_at < utcnow()))
        .limit(limit)
        .tuples()
    )
    rows: Any = held  # tuples(): each row is (order_id,)
    found.update(str(row[0]) for row in rows)
    return sorted(found)[:limit]


def sync_redis_hold(order: Order, runtime: Runtime) -> None:
    """Repair Redis after a closed order: its hold follows the database's reservation."""
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    if reservation is None:
        return
    inventory = Inventory(runtime.redis)
    if reservation.status == ReservationStatus.CONFIRMED:
        inventory.confirm(reservation.id)
    elif reservation.status == ReservationStatus.RELEASED:
        inventory.release(reservation.id)
