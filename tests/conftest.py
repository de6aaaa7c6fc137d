"""Shared fixtures: configuration, Redis (fakeredis or the real one), the database,
the runtime with fake adapters, the Flask app and client, and a Dramatiq stub worker.

Default runs need nothing installed: SQLite in a temp dir and fakeredis with Lua.
With ``REDIS_URL`` / ``DATABASE_URL`` set, tests marked ``realredis`` / ``postgres``
run against those servers, each session on its own Redis db index (never one holding
keys the suite did not write) and its own PostgreSQL database, removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse, urlunparse

import pytest

# The real servers, remembered before any test rewrites the environment.
REAL_REDIS_URL = os.environ.get("REDIS_URL")
REAL_DATABASE_URL = os.environ.get("DATABASE_URL")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# In CI (CI=true) a missing prerequisite is a failure, never a quiet skip: the contract
# (../shared/stripe-openapi), a free Redis db index, the Stripe.js stand-in, OpenBao.
IN_CI = os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """``pytest.skip`` on a developer's machine, ``pytest.fail`` in CI (CI=true)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: prerequisites may not be skipped)")
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip suites whose servers or browser are absent, with the reason spelled out."""
    for item in items:
        if "realredis" in item.keywords and not REAL_REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="REDIS_URL not set: real-Redis suite"))
        if "postgres" in item.keywords and not _is_postgres(REAL_DATABASE_URL):
            item.add_marker(pytest.mark.skip(reason="DATABASE_URL is not PostgreSQL"))
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(pytest.mark.skip(reason="/usr/bin/chromium not installed"))


def _is_postgres(url: str | None) -> bool:
    return bool(url) and urlparse(url).scheme.startswith("postgres")


# --- Redis -------------------------------------------------------------------------


@pytest.fixture
def redis() -> Iterator[Any]:
    """A fresh fakeredis client (decode_responses, Lua via lupa) per test."""
    import fakeredis

    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server, decode_responses=True)
    yield client
    client.close()


# In REDIS_URL's own db: one lock per claimed index (renewed while its run lives, so a
# crashed run's lapses), and the indexes that hold only keys this suite wrote.
REDIS_DB_LOCK = "checkout-tests:db:{}"
SUITE_DBS = "checkout-tests:dbs"
REDIS_DB_LOCK_TTL = 300


def _index_of(url: str) -> int:
    return int(urlparse(url).path.strip("/") or 0)


def claim_redis_db(base_url: str, connect: Callable[[str], Any]) -> tuple[str, Any, str]:
    """A db index (1..15) of ``base_url``'s server for this run alone, flushed: its URL,
    the client holding the claim (on ``base_url``'s db) and the claim's token.

    Never the URL's own index (it holds the claims, and perhaps the developer's data),
    never one claimed by a run still alive, and never a database holding keys this suite
    did not write: an index is flushed only when it is empty or recorded in
    :data:`SUITE_DBS` (a crashed run's leftovers).
    """
    admin = connect(base_url)
    token = secrets.token_hex(8)
    for index in range(1, 16):
        lock = REDIS_DB_LOCK.format(index)
        if index == _index_of(base_url) or not admin.set(
            lock, token, nx=True, ex=REDIS_DB_LOCK_TTL
        ):
            continue
        url = urlunparse(urlparse(base_url)._replace(path=f"/{index}"))
        client = connect(url)
        if client.dbsize() and not admin.sismember(SUITE_DBS, str(index)):
            admin.delete(lock)  # someone else's keys: left alone
            continue
        admin.sadd(SUITE_DBS, str(index))
        client.flushdb()
        return url, admin, token
    skip_or_fail("no free Redis db index for this run (1..15, empty or the suite's)")


def release_redis_db(url: str, admin: Any, token: str, connect: Callable[[str], Any]) -> None:
    """Flush a claimed index and give it back (it is no longer the suite's)."""
    connect(url).flushdb()
    index = _index_of(url)
    admin.srem(SUITE_DBS, str(index))
    lock = REDIS_DB_LOCK.format(index)
    if admin.get(lock) in (token, token.encode()):
        admin.delete(lock)


def renew_redis_db_claim(url: str, admin: Any, token: str, stop: threading.Event) -> None:
    """Keep the claim alive until ``stop`` (a run may outlast the lock's TTL)."""
    lock = REDIS_DB_LOCK.format(_index_of(url))
    while not stop.wait(REDIS_DB_LOCK_TTL / 5):
        if admin.get(lock) in (token, token.encode()):
            admin.expire(lock, REDIS_DB_LOCK_TTL)


@pytest.fixture(scope="session")
def real_redis_url() -> Iterator[str]:
    """A Redis URL on a db index of its own for this session, flushed afterwards."""
    if not REAL_REDIS_URL:
        pytest.skip("REDIS_URL not set: real-Redis suite")
    import redis as redis_lib

    url, admin, token = claim_redis_db(REAL_REDIS_URL, redis_lib.Redis.from_url)
    stop = threading.Event()
    renewer = threading.Thread(
        target=renew_redis_db_claim, args=(url, admin, token, stop), daemon=True
    )
    renewer.start()
    yield url
    stop.set()
    renewer.join()
    release_redis_db(url, admin, token, redis_lib.Redis.from_url)
    admin.close()


@pytest.fixture
def real_redis(real_redis_url: str) -> Iterator[Any]:
    """A client on the real Redis, emptied before and after each test."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(real_redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def replicated_redis(tmp_path: Path) -> Iterator[Any]:
    """A primary and its replica of the test's own (``redis-server`` on loopback ports)."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    from devstack.supervisor import Supervisor
    from tests.redis_topology import RedisTopology

    with (tmp_path / "redis.log").open("w") as log:
        topology = RedisTopology(Supervisor(out=log), tmp_path).start()
        try:
            yield topology
        finally:
            topology.stop()


@pytest.fixture(params=["fakeredis", pytest.param("real", marks=pytest.mark.realredis)])
def any_redis(request: pytest.FixtureRequest) -> Any:
    """Each test twice: on fakeredis, then (marker ``realredis``) on the real Redis."""
    return request.getfixturevalue("redis" if request.param == "fakeredis" else "real_redis")


# --- Database ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this session's own, dropped afterwards."""
    if not _is_postgres(REAL_DATABASE_URL):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    import psycopg2

    assert REAL_DATABASE_URL
    name = f"checkout_test_{os.getpid()}_{secrets.token_hex(3)}"
    parsed = urlparse(REAL_DATABASE_URL)
    admin = psycopg2.connect(REAL_DATABASE_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield urlunparse(parsed._replace(path=f"/{name}"))
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own."""
    return f"sqlite:///{tmp_path / 'checkout.db'}"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The database URL a test runs on; override in a module to use ``postgres_url``."""
    return sqlite_url


@pytest.fixture
def db(database_url: str) -> Iterator[Any]:
    """The peewee database bound to the models, migrated, closed afterwards."""
    from models.db import bind_database, close_database
    from models.migrate import apply_migrations

    database = bind_database(database_url)
    apply_migrations(database)
    yield database
    if _is_postgres(database_url):
        from models.migrate import drop_all

        drop_all(database)
    close_database()


# --- Runtime, app, worker ----------------------------------------------------------


@pytest.fixture
def config(database_url: str) -> Any:
    """A test configuration: no rate limiting, short holds, the fake Stripe keys."""
    from app.config import Config

    return Config(
        database_url=database_url,
        redis_url="redis://fake",
        stripe_webhook_secrets=("whsec_test_secret",),
        jwt_secret="test-jwt-secret-of-at-least-32-bytes",
        hold_ttl_seconds=900,
        ratelimit_enabled=False,
        testing=True,
        # Unpooled: an app per test must not leave its connections open (the processes
        # the end-to-end suites start pool, as in production).
        database_pool_size=0,
    )


@pytest.fixture
def gateway() -> Any:
    """The in-memory payment gateway (same Protocol as the Stripe adapter)."""
    from tests.fakes import FakeGateway

    return FakeGateway(webhook_secret="whsec_test_secret")


@pytest.fixture
def mailer() -> Any:
    """A mailer that keeps sent messages in a list."""
    from tests.fakes import ListMailer

    return ListMailer()


@pytest.fixture
def jobs() -> Any:
    """A queue port that records what was enqueued (``jobs.calls``)."""
    from tests.fakes import RecordingJobs

    return RecordingJobs()


@pytest.fixture
def runtime(
    config: Any, redis: Any, db: Any, gateway: Any, mailer: Any, jobs: Any
) -> Iterator[Any]:
    """The process runtime wired to fakeredis, the test database and the fakes."""
    from app.runtime import Runtime, install, uninstall

    yield install(Runtime(config=config, redis=redis, gateway=gateway, mailer=mailer, jobs=jobs))
    uninstall()


@pytest.fixture
def broker(runtime: Any) -> Iterator[Any]:
    """A Dramatiq stub broker with every actor declared; the runtime enqueues on it."""
    from app.gateways.jobs import DramatiqJobs
    from tasks import declare_actors
    from tasks.broker import make_broker

    stub_broker = make_broker("stub")
    declare_actors(stub_broker)
    runtime.jobs = DramatiqJobs(stub_broker)
    yield stub_broker
    stub_broker.flush_all()
    stub_broker.close()


@pytest.fixture
def worker(broker: Any) -> Iterator[Any]:
    """An in-process Dramatiq worker on the stub broker; use ``broker.join(queue)``."""
    from dramatiq import Worker

    w = Worker(broker, worker_timeout=50)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def app(runtime: Any) -> Any:
    """The Flask app built on the test runtime."""
    from app import create_app

    return create_app(runtime.config, runtime=runtime)


@pytest.fixture
def client(app: Any) -> Any:
    """A Flask test client."""
    return app.test_client()


@pytest.fixture
def tmp_var(tmp_path: Path) -> Iterator[Path]:
    """A scratch ``var/`` directory removed afterwards."""
    path = tmp_path / "var"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- the browser (tests marked ``browser``) ----------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; one per session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
