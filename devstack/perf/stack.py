"""The stack a benchmark runs against: ``devstack.demo``'s steps on a Redis db index and
a database of the run's own (PostgreSQL when ``DATABASE_URL`` names one, else SQLite),
plus the bare Flask baseline under the same gunicorn settings. Everything binds
127.0.0.1, and :meth:`BenchStack.close` stops it all by process id and cleans up."""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import jwt
import redis as redis_lib
import requests

from devstack import demo
from devstack.serving import free_port
from devstack.supervisor import Child, Supervisor

JWT_SECRET = "bench-jwt-secret-of-at-least-32-bytes!"
ROOT = Path(__file__).resolve().parents[2]
# Every bench or soak buyer comes from 127.0.0.1: the long-poll caps per IP (and per
# order and credential) of a shop with one buyer per address would refuse them.
POLL_CAPS = {"LONGPOLL_MAX_PER_ORDER": "100", "LONGPOLL_MAX_PER_CREDENTIAL": "100",
             "LONGPOLL_MAX_PER_IP": "5000"}  # fmt: skip


def claim_redis_db(url: str) -> tuple[str, redis_lib.Redis]:
    """A free db index (1..15, not ``url``'s own) of ``url``'s server, claimed with a lock
    key in ``url``'s db; one holding keys no test or benchmark wrote is never taken (the
    test suite's rule, tests/conftest.claim_redis_db: empty or in ``checkout-tests:dbs``)."""
    admin = redis_lib.Redis.from_url(url)
    token = secrets.token_hex(8)
    base = int(urlparse(url).path.strip("/") or 0)
    for index in range(1, 16):
        lock = f"checkout-tests:db:{index}"
        if index == base or not admin.set(lock, token, nx=True, ex=3600):
            continue
        own = urlunparse(urlparse(url)._replace(path=f"/{index}"))
        with redis_lib.Redis.from_url(own) as client:
            foreign = client.dbsize() and not admin.sismember("checkout-tests:dbs", str(index))
        if foreign:
            admin.delete(lock)  # someone else's keys: never flushed
            continue
        admin.sadd("checkout-tests:dbs", str(index))
        return own, admin
    raise SystemExit("no free Redis db index (1..15, empty) for the benchmark")


def own_database(url: str | None, var: Path) -> tuple[str, str | None]:
    """(database URL, the PostgreSQL database to drop afterwards or None)."""
    if url and urlparse(url).scheme.startswith("postgres"):
        try:
            import psycopg2

            name = f"checkout_bench_{uuid.uuid4().hex[:8]}"
            conn = psycopg2.connect(url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            conn.close()
            return urlunparse(urlparse(url)._replace(path=f"/{name}")), name
        except Exception as exc:  # no server: the bench still runs, on SQLite
            print(f"bench: PostgreSQL unavailable ({exc.__class__.__name__}); using SQLite")
    return f"sqlite:///{var / 'bench.db'}", None


@dataclass
class BenchStack:
    """Emulator, mail, web, worker and the bare baseline, with the helpers the runs need."""

    plan: demo.Plan
    env: dict[str, str]
    sup: Supervisor
    redis: redis_lib.Redis
    admin: redis_lib.Redis
    redis_db_key: str
    database_url: str
    pg_admin_url: str | None
    pg_database: str | None
    bare_port: int
    admin_token: str
    session: requests.Session = field(default_factory=requests.Session)
    web: Child | None = None
    worker: Child | None = None
    # The worker's model (``demo.worker_model``): None is DEVSTACK_WORKER_MODEL's, or threads.
    worker_model: str | None = None

    @property
    def web_url(self) -> str:
        """Our web server, no trailing slash."""
        return self.plan.web_url.rstrip("/")

    @property
    def bare_url(self) -> str:
        """The bare Flask baseline."""
        return f"http://{demo.HOST}:{self.bare_port}"

    def start_web(self, extra: Mapping[str, str] | None = None) -> None:
        """(Re)start our web server, the Procfile's way, with ``extra`` environment."""
        if self.web is not None:
            self.sup.stop_child(self.web)
        # Its log lines go to a file, as to a log drain: the supervisor's reader thread
        # (Python, in the bench's process) could not keep up with thousands a second, and a
        # full pipe blocks the gevent worker that writes to it.
        drain = str(self.plan.var_dir / "web.log")
        self.web = demo.start_web(self.sup, self.plan, {**self.env, **(extra or {})}, output=drain)

    def start_worker(self, extra: Mapping[str, str] | None = None) -> None:
        """(Re)start the worker as the Procfile does: 2 processes of 16 threads (or
        greenlets: :attr:`worker_model`)."""
        if self.worker is not None:
            self.sup.stop_child(self.worker)
        env = {**self.env, **(extra or {})}
        self.worker = demo.start_worker(self.sup, env, processes=2, model=self.worker_model)

    def put_product(self, sku: str, stock: int) -> None:
        """Create or restock a product through the admin API."""
        response = self.session.put(
            f"{self.web_url}/api/admin/products/{sku}",
            json={"name": sku, "description": "", "price": {"amount": 1500, "currency": "usd"},
                  "stockOnHand": stock},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )  # fmt: skip
        response.raise_for_status()

    def emulator(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the emulator's control API (GET without a body)."""
        url = f"{self.plan.emulator_url}/_emulator/{path}"
        response = (
            self.session.post(url, json=body, timeout=30)
            if body is not None
            else self.session.get(url, timeout=30)
        )
        response.raise_for_status()
        return response.json()

    def drain_queues(self) -> None:
        """Forget queued messages and pending submissions of an earlier run."""
        doomed = [*self.redis.scan_iter("dramatiq:*"), "{shop}:pending"]
        self.redis.delete(*doomed)

    def wait_until(self, ready: Any, what: str, timeout: float = 120) -> None:
        """Poll ``ready()`` until true."""
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def close(self) -> None:
        """Stop every process by pid; drop the run's database and Redis db."""
        self.sup.stop_all()
        self.redis.flushdb()
        self.admin.srem("checkout-tests:dbs", self.redis_db_key.rsplit(":", 1)[1])  # empty again
        self.admin.delete(self.redis_db_key)
        if self.pg_database and self.pg_admin_url:
            import psycopg2

            conn = psycopg2.connect(self.pg_admin_url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            conn.close()


def start(
    redis_url: str,
    database_url: str | None,
    log: Path,
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    worker_model: str | None = None,
) -> BenchStack:
    """Emulator, mail, migrations, our web and the bare baseline; no worker yet.
    ``extra_env`` goes to every app process (web, worker, clock, the setup steps);
    ``cwd``: the checkout the processes run from (default: this one); ``worker_model``:
    how the worker runs its threads (``demo.worker_model``)."""
    var = Path(tempfile.mkdtemp(prefix="checkout-bench-"))
    own_redis, admin = claim_redis_db(redis_url)
    db_url, pg_name = own_database(database_url, var)
    plan = demo.Plan(
        ports=demo.choose_ports({}, free=True),
        var_dir=var,
        redis_url=own_redis,
        database_url=db_url,
        real_stripe=False,
    )
    env = plan.app_env()
    env.update(JWT_SECRET=JWT_SECRET, HOLD_TTL_SECONDS="900", RATELIMIT_ENABLED="false")
    env.update(extra_env or {})
    client = redis_lib.Redis.from_url(own_redis, decode_responses=True)
    client.flushdb()
    sup = Supervisor(cwd=str(cwd or ROOT), out=log.open("w"))
    claims = {"sub": "bench-admin", "role": "admin", "exp": int(time.time()) + 3 * 3600}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    stack = BenchStack(
        plan=plan, env=env, sup=sup, redis=client, admin=admin,
        redis_db_key=f"checkout-tests:db:{urlparse(own_redis).path.strip('/')}",
        database_url=db_url, pg_admin_url=database_url if pg_name else None,
        pg_database=pg_name, bare_port=free_port(), admin_token=token,
        worker_model=worker_model,
    )  # fmt: skip
    try:
        demo.start_backing_services(sup, plan)
        demo.prepare_data(sup, env, seed=False)
        stack.start_web()
        bind = f"{demo.HOST}:{stack.bare_port}"
        argv = demo.web_command(bind)
        argv[argv.index("wsgi:app")] = "devstack.perf.bare:app"
        sup.start("bare", argv, {}, output=str(var / "bare.log"))
        stack.wait_until(lambda: demo.http_ok(f"{stack.bare_url}/healthz"), "the bare baseline")
    except BaseException:
        stack.close()
        raise
    return stack
