"""0014: index only the rows still in play of the reservations and the webhook inbox, and
an order's state with its id (issue 20).

- ``reservation_held`` (``expires_at, order_id`` where the hold is HELD) replaces
  ``reservation_status`` and ``reservation_expires_at``: the overdue sweep asks for HELD
  holds past their expiry, the rebuild for the HELD ones; every other reservation query
  goes by the order (``reservation_order_id``) or the id. A reservation's insert writes one
  entry fewer, and its confirmation (a non-HOT update: the status changes) two fewer.
- ``webhook_event_unfinished`` (``id`` where not ``processed``) replaces
  ``webhook_event_status``: the sweep, the dead letters and the console's filters look for
  the unfinished few; marking an event processed writes one entry fewer.
- ``orders_state_id`` (``state, id``) replaces ``orders_state``: the same lookups by state,
  and a transition's ``WHERE id = … AND state = …`` finds its one entry in it.

0001 creates the tables from the models as they stand, so on a fresh database these are
the indexes already; elsewhere each is created, then the ones it replaces dropped, in the
migration's transaction (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import peewee

# The new index's CREATE, then the indexes it replaces. The statuses are spelt out, as
# they stood at this version (models.webhook_event.UNFINISHED: every one but processed).
REPLACED = (
    (
        "CREATE INDEX IF NOT EXISTS reservation_held ON reservation (expires_at, order_id) "
        "WHERE status = 'HELD'",
        ("reservation_status", "reservation_expires_at"),
    ),
    (
        "CREATE INDEX IF NOT EXISTS webhook_event_unfinished ON webhook_event (id) "
        "WHERE status IN ('received', 'ignored', 'failed', 'dead')",
        ("webhook_event_status",),
    ),
    (
        "CREATE INDEX IF NOT EXISTS orders_state_id ON orders (state, id)",
        ("orders_state",),
    ),
)


def up(db: peewee.Database) -> None:
    """Create the partial indexes; drop the full ones they replace."""
    for create, old in REPLACED:
        db.execute_sql(create)
        for name in old:
            db.execute_sql(f"DROP INDEX IF EXISTS {name}")
