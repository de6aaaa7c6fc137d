"""What one paid order costs in counts: the hooks that count them, in one place.

A *SQL statement* is what peewee sends to the database: ``Database.execute_sql`` (every
query, insert, update and delete goes through it) plus each ``BEGIN``, ``COMMIT`` and
``ROLLBACK`` (peewee sends those on the cursor directly); a *transaction* is a ``BEGIN``
peewee sends (``atomic()`` outside another one). A *Redis round trip* is one
``send_packed_command`` of redis-py: a command, a pipeline or a script call, each one
request and one wait for the answer.

Both the cost bench's probe (``probe/sitecustomize.py``, in the bench's processes) and
the regression test of the counts per step (tests/services/test_order_cost.py) count
through :func:`install`, so the bench's figures and the test's budget mean the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Hook = Callable[[], None]


def install(*, statement: Hook, transaction: Hook, round_trip: Hook) -> Callable[[], None]:
    """Call ``statement`` / ``transaction`` / ``round_trip`` at each one, in every thread
    of this process, from now on; returns the function that takes the hooks out again."""
    import peewee
    import redis.connection

    def begun() -> None:
        statement()
        transaction()

    patches: list[tuple[type, str, Hook]] = [(peewee.Database, "execute_sql", statement)]
    for owner in (peewee.Database, peewee.PostgresqlDatabase, peewee.SqliteDatabase):
        # Each class's own begin (PostgreSQL's does not call the base class's).
        patches.append((owner, "begin", begun))
    patches += [(peewee.Database, "commit", statement), (peewee.Database, "rollback", statement)]
    patches.append((redis.connection.AbstractConnection, "send_packed_command", round_trip))
    undo = [_wrap(owner, name, hook) for owner, name, hook in patches]

    def uninstall() -> None:
        for restore in reversed(undo):
            restore()

    return uninstall


def _wrap(owner: type, name: str, hook: Hook) -> Hook:
    """Call ``hook`` before ``owner.name`` (only where ``owner`` defines it itself)."""
    original = owner.__dict__.get(name)
    if original is None:
        return lambda: None

    @functools.wraps(original)
    def counted(*args: Any, **kwargs: Any) -> Any:
        hook()
        return original(*args, **kwargs)

    setattr(owner, name, counted)
    return lambda: setattr(owner, name, original)
