"""models/db.py: binding the models, and the PostgreSQL pool of the web and worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import peewee
import psycopg2
import pytest
from playhouse.pool import PooledPostgresqlDatabase

import models.db as db_module
from models.db import bind_database, close_database


def backend_pid(db: peewee.Database) -> int:
    """The PostgreSQL server process serving this thread's connection."""
    return int(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


class TestSqlite:
    def test_a_pool_size_leaves_sqlite_unpooled(self, sqlite_url: str) -> None:
        db = bind_database(sqlite_url, pool_size=4)
        try:
            assert isinstance(db, peewee.SqliteDatabase)
            assert not hasattr(db, "max_connections") and not hasattr(db, "_max_connections")
        finally:
            close_database()


@pytest.mark.postgres
def wait_until_gone(cur: Any, pid: int) -> None:
    """Wait until the server process ``pid`` has exited (its socket closed)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        if cur.fetchone()[0] == 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"server process {pid} still there")


def count_pings(pooled: PooledPostgresqlDatabase, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The backend pids of the connections the pool pings from now on (``SELECT 1``)."""
    pinged: list[int] = []
    adapter = pooled._adapter
    real = adapter.is_connection_closed

    def ping(conn: Any) -> bool:
        pinged.append(conn.get_backend_pid())
        return bool(real(conn))

    monkeypatch.setattr(adapter, "is_connection_closed", ping)
    return pinged


class TestPostgresPool:
    @pytest.fixture
    def pooled(self, postgres_url: str) -> Iterator[PooledPostgresqlDatabase]:
        db = bind_database(postgres_url, pool_size=2)
        assert isinstance(db, PooledPostgresqlDatabase)
        yield db
        db.close_all()

    def test_a_closed_connection_is_handed_out_again(
        self, pooled: PooledPostgresqlDatabase
    ) -> None:
        first = backend_pid(pooled)
        pooled.close()
        assert backend_pid(pooled) == first  # the same server process: nothing forked

    def test_unpooled_without_a_size(self, postgres_url: str) -> None:
        db = bind_database(postgres_url)
        try:
            assert not isinstance(db, PooledPostgresqlDatabase)
            first = backend_pid(db)
            db.close()
            assert backend_pid(db) != first
        finally:
            close_database()

    def test_a_connection_the_server_ended_is_not_handed_out(
        self, pooled: PooledPostgresqlDatabase, postgres_url: str
    ) -> None:
        # What a PostgreSQL restart does to every idle pooled connection.
        lost = backend_pid(pooled)
        pooled.close()
        admin = psycopg2.connect(postgres_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (lost,))
            wait_until_gone(cur, lost)
        admin.close()
        assert backend_pid(pooled) != lost  # checked on the way out, replaced, no error

    def test_a_connection_idle_for_a_while_is_pinged(
        self, pooled: PooledPostgresqlDatabase, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pings = count_pings(pooled, monkeypatch)
        first = backend_pid(pooled)
        pooled.close()
        monkeypatch.setattr(db_module, "POOL_PING_IDLE_SECONDS", 0.0)
        assert backend_pid(pooled) == first
        assert pings == [first]

    def test_a_connection_given_back_just_now_is_not_pinged(
        self, pooled: PooledPostgresqlDatabase, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pings = count_pings(pooled, monkeypatch)
        first = backend_pid(pooled)
        pooled.close()
        assert backend_pid(pooled) == first
        assert pings == []  # one round trip per message or request saved

    def test_the_pool_holds_at_most_its_size(self, pooled: PooledPostgresqlDatabase) -> None:
        held = threading.Barrier(3)
        release = threading.Event()
        waited: list[float] = []

        def hold() -> None:
            backend_pid(pooled)
            held.wait(10)
            release.wait(10)
            pooled.close()

        holders = [threading.Thread(target=hold) for _ in range(2)]
        for thread in holders:
            thread.start()
        held.wait(10)  # both connections are out

        def third() -> None:
            start = time.monotonic()
            backend_pid(pooled)  # waits: both connections are out
            waited.append(time.monotonic() - start)
            pooled.close()

        late = threading.Thread(target=third)
        late.start()
        late.join(0.5)
        assert late.is_alive() and not waited
        release.set()
        late.join(10)
        for thread in holders:
            thread.join(10)
        assert len(waited) == 1
