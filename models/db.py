"""The database handle shared by every model: a proxy bound once per process.

``bind_database(url)`` connects the proxy to SQLite (WAL, foreign keys, busy timeout,
``BEGIN IMMEDIATE`` writers) or PostgreSQL (psycopg2; with ``pool_size``, through a
pool of that many connections per process). All timestamps are naive UTC datetimes (see
:func:`utcnow`) so SQLite and PostgreSQL store and compare them alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import peewee
from playhouse.db_url import connect
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


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (the form every column stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


def bind_database(url: str, *, pool_size: int = 0) -> peewee.Database:
    """Connect the models to the database at ``url`` and return the database.

    ``pool_size`` > 0 (PostgreSQL only): ``close()`` gives a thread's connection back to
    a pool of at most that many instead of ending it. Each new PostgreSQL connection is
    a server process forked and warmed up, milliseconds of CPU, which a worker paid per
    message and the web per request before; SQLite connections are a file open and stay
    unpooled.
    """
    scheme = urlparse(url).scheme
    if pool_size > 0 and scheme.startswith("postgres"):
        db: peewee.Database = _pooled_postgres(url, pool_size)
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


def _pooled_postgres(url: str, pool_size: int) -> PooledPostgresqlDatabase:
    # playhouse.db_url parses the URL (user, host, port, query options); only the
    # class differs from the unpooled connection.
    return connect(
        url.replace(urlparse(url).scheme, "postgresql+pool", 1),
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
