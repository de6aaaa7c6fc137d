"""The outbox: side effects (receipt e-mails) written in the same transaction as the
state change that causes them, and delivered afterwards by an actor."""

from __future__ import annotations

import peewee

from models.db import BaseModel, JSONField, utcnow
from models.order import Order
from models.statuses import OutboxStatus

OUTBOX_STATUSES = tuple(s.value for s in OutboxStatus)


class Outbox(BaseModel):
    """A message to deliver; ``key`` is unique so one cause queues one message."""

    id = peewee.AutoField()
    key = peewee.CharField(max_length=200, unique=True)
    kind = peewee.CharField(max_length=40)
    order = peewee.ForeignKeyField(Order, backref="outbox", on_delete="CASCADE")
    payload = JSONField(default=dict)
    status = peewee.CharField(max_length=16, default=OutboxStatus.PENDING.value)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    sent_at = peewee.DateTimeField(null=True)


# The rows still to send (the clock's sweep, receipts.unsent), in id order: the pending
# few among every message ever sent (migration 0013). An index of the status itself
# listed every sent row too, and took a new entry each time a row was marked sent.
Outbox.add_index(
    Outbox.index(
        Outbox.id, name="outbox_pending", where=Outbox.status == OutboxStatus.PENDING.value
    )
)
