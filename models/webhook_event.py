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
    status = peewee.CharField(max_length=16, default=WebhookStatus.RECEIVED.value)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    processed_at = peewee.DateTimeField(null=True)


# Every row but the processed ones (nearly all of them), in id order: the clock's sweep of
# received and failed rows, the dead letters, the console's filter by one of these statuses
# (migration 0014). A processed row leaves it (marking a row processed writes no entry
# here), so it stays as small as the inbox's backlog. The statuses are listed rather than
# ``<> 'processed'`` so that, without statistics, the planner estimates the index as
# small (a few per cent of the rows) and uses it; filtering on ``processed`` walks the
# primary key, where those rows are most of every page.
UNFINISHED = tuple(status for status in WEBHOOK_STATUSES if status != WebhookStatus.PROCESSED)
WebhookEvent.add_index(
    WebhookEvent.index(
        WebhookEvent.id, name="webhook_event_unfinished", where=WebhookEvent.status.in_(UNFINISHED)
    )
)
