"""0013: partial indexes where an order's writes paid for entries no query reads (issue 20).

- ``shop_events_waiting`` (``id`` where not dispatched) replaces ``shop_events_dispatched``:
  the events still to dispatch are found, in id order, among the few waiting rows (the
  planner walked the primary key over every event ever recorded: about 1 ms of server
  CPU per marking, twice per order, and growing with the table).
- ``outbox_pending`` (``id`` where pending) replaces ``outbox_status``: the sweep asks for
  pending rows only, and marking a row sent no longer adds an entry.
- ``orders_user_id``, ``orders_promotion_code``, ``orders_payment_intent_id`` and
  ``orders_checkout_session_id`` cover only the rows where the column is set (the unique
  ones stay unique there): every query looks them up by a value, and an order written
  without them pays no entry.

0001 creates the tables from the models as they stand, so on a fresh database these are
the indexes already; elsewhere each is created, then the one it replaces dropped, in the
migration's transaction (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import peewee

REPLACED = {
    "shop_events_dispatched": (
        "CREATE INDEX IF NOT EXISTS shop_events_waiting ON shop_events (id) "
        "WHERE dispatched = false"
    ),
    "outbox_status": (
        "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE status = 'pending'"
    ),
}
# orders: (index name, column, unique); each keeps its name.
WHERE_SET = (
    ("orders_user_id", "user_id", False),
    ("orders_promotion_code", "promotion_code", False),
    ("orders_payment_intent_id", "payment_intent_id", True),
    ("orders_checkout_session_id", "checkout_session_id", True),
)


def up(db: peewee.Database) -> None:
    """Create the partial indexes; drop the full ones they replace."""
    for old, create in REPLACED.items():
        db.execute_sql(create)
        db.execute_sql(f"DROP INDEX IF EXISTS {old}")
    partial = {
        index.name for index in db.get_indexes("orders") if " WHERE " in (index.sql or "").upper()
    }
    for name, column, unique in WHERE_SET:
        if name in partial:
            continue
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
        kind = "UNIQUE INDEX" if unique else "INDEX"
        db.execute_sql(f"CREATE {kind} {name} ON orders ({column}) WHERE {column} IS NOT NULL")
