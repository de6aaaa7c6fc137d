"""The database handle shared by every model: a proxy bound once per process.

``bind_database(url)`` connects the proxy to SQLite (WAL, foreign keys, busy timeout,
``BEGIN IMMEDIATE`` writers) or PostgreSQL (psycopg2; with ``pool_size``, through a
pool of that many connections per process). All timestamps are naive UTC datetimes (see
:func:`utcnow`) so SQLite and PostgreSQL store and compare them alike.
"""

from __future__ import annotations

import json
import select
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import peewee
from gevent import monkey
from playhouse.db_url import connect, parse
from playhouse.pool import PooledPostgresqlDatabase

database_proxy = peewee.DatabaseProxy()

# SQLite settings: WAL lets readers run beside the single writer; the busy timeout makes
# concurrent writers queue instead of failing at once.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
}

# A pooled PostgreSQL connection this old is closed and replaced when next taken out or
# given back (connections do not outlive a failover or a server's limits for ever); a
# caller finding the pool full waits this long for one to come back before failing.
POOL_STALE_SECONDS = 300
POOL_WAIT_SECONDS = 10
# A pooled connection given back less than this long ago is handed out again without a
# ping (``SELECT 1``, a round trip per message or request otherwise); one idle longer
# is pinged, so one a PostgreSQL restart ended (which takes seconds) is replaced.
POOL_PING_IDLE_SECONDS = 1.0

# The operating system's poll, also under gevent's monkey-patching (the gevent web, a
# ``dramatiq-gevent`` worker): a zero-timeout poll never blocks, and gevent's own parks
# the greenlet and switches to the hub and back (as app.gateways.redis_client's check).
_os_poll = monkey.get_original("select", "poll")


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (the form every column stores)."""
    # The fields copied: ``replace(tzinfo=None)`` costs twice as much (keyword parsing),
    # and this runs for every row and timestamp the worker writes.
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, now.hour, now.minute, now.second, now.microsecond)


def bind_database(
    url: str, *, pool_size: int = 0, prepared_statements: bool = False
) -> peewee.Database:
    """Connect the models to the database at ``url`` and return the database.

    ``pool_size`` > 0 (PostgreSQL only): ``close()`` gives a thread's connection back to
    a pool of at most that many instead of ending it. Each new PostgreSQL connection is
    a server process forked and warmed up, milliseconds of CPU, which a worker paid per
    message and the web per request before; SQLite connections are a file open and stay
    unpooled. ``prepared_statements`` (pooled PostgreSQL only): ``models.statements``
    runs its compiled statements as server-side prepared ones (:class:`Prepared`); not
    through a pooler that hands a connection's server session to others (PgBouncer in
    transaction mode), where a name prepared on one session is unknown on the next.
    """
    scheme = urlparse(url).scheme
    if pool_size > 0 and scheme.startswith("postgres"):
        db: peewee.Database = _pooled_postgres(url, pool_size)
        db.prepares = prepared_statements  # type: ignore[attr-defined]
        database_proxy.initialize(db)
        return db
    if scheme.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        # IMMEDIATE: a writer takes the lock at BEGIN, so two writers never deadlock
        # upgrading from a read lock (the busy timeout then queues them).
        db = connect(url, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", timeout=10)
    elif scheme.startswith("postgres"):
        db = connect(url, autorollback=True)
    else:
        db = connect(url)
    database_proxy.initialize(db)
    return db


@dataclass
class Prepared:
    """The statements prepared on one server session (``PREPARE`` lasts as long as the
    session, whatever becomes of the transaction it ran in).

    ``unsure``: a statement that was to prepare one failed, so whether it did is not
    known; the next ``PREPARE`` on the session is sent after a ``DEALLOCATE ALL``.
    """

    names: set[str] = field(default_factory=set)
    unsure: bool = False

    def forget(self) -> None:
        """What the session holds is not known any more (a failure, a ``DISCARD``)."""
        self.names.clear()
        self.unsure = True


def prepared_on(db: peewee.Database) -> Prepared | None:
    """What this thread's connection has prepared; None where ``db`` does not prepare
    (SQLite, an unpooled connection ended after each message, or switched off)."""
    if not getattr(db, "prepares", False):
        return None
    pool: PingWhenIdlePool = db  # type: ignore[assignment]  # only the pool prepares
    return pool.prepared(db.connection())


class PingWhenIdlePool(PooledPostgresqlDatabase):
    """peewee's PostgreSQL pool, pinging only connections idle for a while.

    peewee pings every connection it takes out of the pool (``SELECT 1``: a round trip
    and a statement for PostgreSQL per worker message and per web request). A connection
    given back under :data:`POOL_PING_IDLE_SECONDS` ago, idle, not closed and with
    nothing waiting on its socket is handed out as it is: a server that ended it (a
    restart, ``pg_terminate_backend``) sends its error and closes the socket, which
    makes it readable, and that is checked without a round trip. Older or readable ones
    are pinged as before; one that broke while in use is never given back (peewee checks
    its status when it returns).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._returned_at: dict[int, float] = {}
        # By the connection object itself: a closed one's entry goes with it (an id
        # could be a new connection's once the old one is freed).
        self._prepared: weakref.WeakKeyDictionary[Any, Prepared] = weakref.WeakKeyDictionary()
        self.prepares = False

    def prepared(self, conn: Any) -> Prepared:
        """What ``conn`` (one of this pool's, in this thread's hands) has prepared."""
        found = self._prepared.get(conn)
        if found is None:
            found = self._prepared[conn] = Prepared()
        return found

    def _is_closed(self, conn: Any) -> bool:
        returned = self._returned_at.get(self.conn_key(conn))
        if (
            returned is not None
            and time.monotonic() - returned < POOL_PING_IDLE_SECONDS
            and not conn.closed
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
            and not _has_input(conn)
        ):
            return False
        return bool(super()._is_closed(conn))

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        with self._pool_lock:  # re-entrant: the pool's own _close takes it again
            self._returned_at[self.conn_key(conn)] = time.monotonic()
            super()._close(conn, close_conn)

    def _close_raw(self, conn: Any) -> None:
        self._returned_at.pop(self.conn_key(conn), None)
        super()._close_raw(conn)


def _has_input(conn: Any) -> bool:
    """Whether an idle connection's socket has something to read (the server's goodbye,
    or its closing); True when that cannot be told, so that the caller pings."""
    try:
        poller = _os_poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:  # no socket any more, or no poll(): let the ping decide
        return True


def _pooled_postgres(url: str, pool_size: int) -> PooledPostgresqlDatabase:
    # playhouse.db_url parses the URL (user, host, port, query options).
    return PingWhenIdlePool(
        **parse(url),
        autorollback=True,
        max_connections=pool_size,
        stale_timeout=POOL_STALE_SECONDS,
        timeout=POOL_WAIT_SECONDS,
    )


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = urlparse(url).path[1:]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def database() -> peewee.Database:
    """The bound database (raises when :func:`bind_database` has not run)."""
    db = database_proxy.obj
    if db is None:
        raise RuntimeError("models.db.bind_database() has not been called")
    return db


def is_bound() -> bool:
    """Whether :func:`bind_database` has run in this process."""
    return database_proxy.obj is not None


def close_database() -> None:
    """Close this thread's connection, if one is open."""
    db = database_proxy.obj
    if db is not None and not db.is_closed():
        db.close()


def is_postgres(db: peewee.Database | None = None) -> bool:
    """Whether ``db`` (default: the bound one) is PostgreSQL."""
    return isinstance(db or database(), peewee.PostgresqlDatabase)


def insert_new(query: peewee.ModelInsert, key: peewee.Field) -> Any | None:
    """Run ``query`` as ``INSERT … ON CONFLICT DO NOTHING RETURNING key``: the new row's
    ``key``, or None when a row with the same unique value already existed.

    One statement, no transaction or savepoint of its own (peewee's ``get_or_create``
    costs a SELECT, a SAVEPOINT, the INSERT and its RELEASE). PostgreSQL and SQLite
    (3.35+) both answer RETURNING.
    """
    rows = list(query.on_conflict_ignore().returning(key).tuples().execute())
    return rows[0][0] if rows else None


def beside_sql(
    insert: peewee.Query, key: peewee.Field, select: peewee.Query
) -> tuple[str, list[Any]]:
    """The one PostgreSQL statement of ``models.statements.insert_new_beside`` (``insert``: its
    ``… RETURNING key``), and its parameters: the key inserted (NULL: none), then
    ``select``'s columns (NULL: no row)."""
    insert_sql, insert_params = insert.sql()
    select_sql, select_params = select.sql()
    sql = (
        f'WITH "new" AS ({insert_sql}) SELECT (SELECT "{key.column_name}" FROM "new"), "read".*'
        f' FROM (SELECT 1) AS "one" LEFT JOIN ({select_sql}) AS "read" ON TRUE'
    )
    return sql, [*insert_params, *select_params]


class JSONField(peewee.TextField):
    """A JSON document stored as text (portable between SQLite and PostgreSQL)."""

    def db_value(self, value: Any) -> str | None:
        """Serialise ``value`` to compact JSON."""
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value: Any) -> Any:
        """Parse the stored JSON."""
        if value is None or not isinstance(value, str):
            return value
        return json.loads(value)


class BaseModel(peewee.Model):
    """The base of every model: bound to the shared proxy."""

    class Meta:
        database = database_proxy
        legacy_table_names = False
