"""The webhook inbox: one row per Stripe event id (the exactly-once record, I3)."""

from __future__ import annotations

import peewee

from models.db import BaseModel, JSONField, utcnow
from models.statuses import WebhookStatus

WEBHOOK_STATUSES = tuple(s.value for s in WebhookStatus)


class WebhookEvent(BaseModel):
    """A received Stripe event; ``processed``/``ignored`` rows are never applied again."""

    id = peewee.AutoField()
    event_id = peewee.CharField(max_length=255, unique=True)
    type = peewee.CharField(max_length=100)
    payload = JSONField()
    status = peewee.CharField(max_length=16, default=WebhookStatus.RECEIVED.value, index=True)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    processed_at = peewee.DateTimeField(null=True)
