"""Shop webhooks: the outbox of events told to the shop's own backend, and their
deliveries, one row per (event, endpoint).

A :class:`ShopEvent` is written in the transaction that changes the order (a transition,
a refund, a dispute), with the body it will be sent as — the order as it was then. The
deliverer fans each event out to the configured endpoints (``dispatched``) and keeps one
:class:`ShopDelivery` per endpoint: attempts, the last answer, when to try next.
"""

from __future__ import annotations

import peewee

from models.db import BaseModel, JSONField, utcnow
from models.order import Order
from models.statuses import ShopDeliveryStatus

SHOP_DELIVERY_STATUSES = tuple(s.value for s in ShopDeliveryStatus)


class ShopEvent(BaseModel):
    """One event for the shop; ``id`` (the sequence) is the order deliveries keep."""

    id = peewee.AutoField()
    event_id = peewee.CharField(max_length=40, unique=True)  # "evt_…", the body's id
    type = peewee.CharField(max_length=40)
    order = peewee.ForeignKeyField(Order, backref="shop_events", on_delete="CASCADE")
    body = JSONField()  # {id, type, createdAt, data: {order}} as it is sent
    created_at = peewee.DateTimeField(default=utcnow)
    # False until the deliverer created its deliveries for the endpoints configured then;
    # the waiting ones are found through the partial index below.
    dispatched = peewee.BooleanField(default=False)
    # When it first reached every endpoint (the order's SHOP_NOTIFIED audit event).
    notified_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "shop_events"


# The events still to dispatch, in id order: a few rows among every event ever recorded
# (migration 0013; an index of the flag itself listed the dispatched ones too, and the
# planner, ordering by id, walked the primary key over all of them).
ShopEvent.add_index(
    ShopEvent.index(ShopEvent.id, name="shop_events_waiting", where=ShopEvent.dispatched == False)  # noqa: E712
)


class ShopDelivery(BaseModel):
    """One event to one endpoint; an endpoint's pending rows go out in event order."""

    id = peewee.AutoField()
    event = peewee.ForeignKeyField(ShopEvent, backref="deliveries", on_delete="CASCADE")
    endpoint = peewee.CharField(max_length=2048)
    status = peewee.CharField(max_length=16, default=ShopDeliveryStatus.PENDING.value, index=True)
    attempts = peewee.IntegerField(default=0)
    last_status_code = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    next_attempt_at = peewee.DateTimeField(default=utcnow)
    # Retried until then (3 days after the event, or after a resend), then failed.
    retry_until = peewee.DateTimeField()
    created_at = peewee.DateTimeField(default=utcnow)
    delivered_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "shop_webhook_deliveries"
        indexes = (
            (("event", "endpoint"), True),
            # An endpoint's head: its oldest pending event.
            (("endpoint", "status", "event"), False),
        )
