"""The reservation aggregate: the database record of an order's stock hold."""

from __future__ import annotations

import peewee

from models.db import BaseModel, JSONField, utcnow
from models.order import Order
from models.statuses import ReservationStatus

RESERVATION_STATUSES = tuple(s.value for s in ReservationStatus)


class Reservation(BaseModel):
    """A hold of ``items`` (``[[sku, qty], ...]``) for one order until ``expires_at``."""

    id = peewee.CharField(max_length=64, primary_key=True)
    order = peewee.ForeignKeyField(Order, unique=True, backref="reservations", on_delete="CASCADE")
    items = JSONField()
    expires_at = peewee.DateTimeField()
    status = peewee.CharField(max_length=16, default=ReservationStatus.HELD.value)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)


# The holds still HELD, by expiry (the clock's overdue sweep, the rebuild of Redis's
# counters): a few rows among every reservation ever made (migration 0014). Indexes of the
# status and of the expiry listed every confirmed and released hold too, and an order's
# confirmation wrote an entry in each. The order's id rides along: the confirmation
# (``WHERE order_id = %s AND status = 'HELD'``), when the planner takes this index, checks
# it in the index rather than fetching every held row.
Reservation.add_index(
    Reservation.index(
        Reservation.expires_at,
        Reservation.order,
        name="reservation_held",
        where=Reservation.status == ReservationStatus.HELD.value,
    )
)
