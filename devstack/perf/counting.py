"""What one paid order costs in counts: the hooks that count them, in one place.

A *SQL statement* is what peewee sends to the database: ``Database.execute_sql`` (every
query, insert, update and delete goes through it) plus each ``BEGIN``, ``COMMIT`` and
``ROLLBACK`` (peewee sends those on the cursor directly); a *transaction* is a ``BEGIN``
peewee sends (``atomic()`` outside another one). A *Redis round trip* is one
``send_packed_command`` of redis-py: a command, a pipeline or a script call, each one
request and one wait for the answer. Optionally the round trips of Dramatiq's Redis
broker (enqueueing, and the worker's fetching, acknowledging and heartbeats, which go on
while it waits for messages) are counted apart from the app's own.

Both the cost bench's probe (``probe/sitecustomize.py``, in the bench's processes) and
the regression test of the counts per step (tests/services/test_order_cost.py) count
through :func:`install`, so the bench's figures and the test's budget mean the same.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

Hook = Callable[[], None]


def install(
    *, statement: Hook, transaction: Hook, round_trip: Hook, broker_round_trip: Hook | None = None
) -> Callable[[], None]:
    """Call ``statement`` / ``transaction`` / ``round_trip`` at each one, in every thread
    of this process, from now on; with ``broker_round_trip``, a round trip of Dramatiq's
    Redis broker calls that instead of ``round_trip``. Returns the function that takes
    the hooks out again."""
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
    undo = [_wrap(owner, name, hook) for owner, name, hook in patches]
    connection = redis.connection.AbstractConnection
    undo.append(_count_round_trips(connection, round_trip, broker_round_trip or round_trip))

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


def _count_round_trips(owner: type, app: Hook, broker: Hook) -> Hook:
    """Count each send; a connection first used by Dramatiq's Redis broker is the
    broker's for good (each client has its own pool, so a connection serves one)."""
    original = owner.__dict__["send_packed_command"]

    @functools.wraps(original)
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        mine = self.__dict__.get("cost_broker")
        if mine is None:
            mine = self.cost_broker = _under_the_broker()
        (broker if mine else app)()
        return original(self, *args, **kwargs)

    owner.send_packed_command = counted  # type: ignore[attr-defined]
    return lambda: setattr(owner, "send_packed_command", original)


def _under_the_broker() -> bool:
    # Not by patching RedisBroker: importing Dramatiq before gunicorn's gevent patches
    # the standard library breaks its shutdown middleware, so the probe never imports it.
    frame = sys._getframe(2)
    while frame is not None:
        if "dramatiq/brokers/" in frame.f_code.co_filename.replace("\\", "/"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False
