"""The end-to-end stack: web (gunicorn), worker (dramatiq), the Stripe emulator and the
mail catcher as separate processes on free 127.0.0.1 ports, the real Redis, and a SQLite
file (or the run's PostgreSQL database when DATABASE_URL is PostgreSQL).

The processes are started by ``devstack.demo``'s steps (the launcher behind ``make demo``
and the browser tests) under a :class:`Supervisor`, and stopped by it by process id,
within bounded time.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import jwt
import pytest
import redis as redis_lib
import requests

from devstack import demo
from devstack.supervisor import Child, Supervisor

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-jwt-secret-at-least-32-bytes-long!"


@dataclass
class Stack:
    """A running web + worker + emulator, and helpers to drive them over HTTP."""

    web: str
    emulator: str
    redis: Any
    supervisor: Supervisor
    env: dict[str, str]
    admin_token: str
    mail: str = ""  # the mail catcher's web page (``/messages.json`` lists caught mail)
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def processes(self) -> list[Child]:
        """Its running processes, oldest first (``tail()`` shows one's recent output)."""
        return self.supervisor.children

    def start_worker(self, processes: int = 1) -> Child:
        """Start a worker (say, after a run without one); it stops with the stack."""
        return demo.start_worker(self.supervisor, self.env, processes=processes)

    def stop(self) -> None:
        """Stop every process (by pid), close the log and the Redis client."""
        self.supervisor.stop_all()
        self.supervisor.out.close()
        self.redis.close()

    @property
    def stripe(self) -> Any:
        """The official SDK pointed at the emulator (what a browser's Stripe.js would do)."""
        import stripe

        return stripe.StripeClient(
            "sk_test_e2e", base_addresses={"api": self.emulator}, max_network_retries=0
        )

    def put_product(self, sku: str, stock: int, price: int = 1000) -> dict[str, Any]:
        """Create a product through the admin API."""
        response = self.session.put(
            f"{self.web}/api/admin/products/{sku}",
            json={"name": sku, "description": "", "price": {"amount": price, "currency": "usd"},
                  "stockOnHand": stock},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return dict(response.json())

    def available(self, sku: str) -> int:
        """The listed availability of ``sku``."""
        products = self.session.get(f"{self.web}/api/products", timeout=10).json()
        return int(next(p["available"] for p in products if p["sku"] == sku))

    def submit(
        self, items: list[tuple[str, int]], key: str | None = None, session: Any = None
    ) -> requests.Response:
        """POST a valid checkout for ``items``."""
        body = {
            "items": [{"sku": sku, "quantity": qty} for sku, qty in items],
            "email": "e2e@example.com",
            "shippingAddress": {"name": "E2E", "line1": "1 Main St", "city": "Austin",
                                "state": "TX", "postalCode": "73301", "country": "US"},
        }  # fmt: skip
        return (session or self.session).post(
            f"{self.web}/api/checkout/payment-intent",
            json=body,
            headers={"Idempotency-Key": key or f"e2e-{uuid.uuid4()}"},
            timeout=30,
        )

    def status(self, submitted: dict[str, Any], wait: int = 0, since: int = 0) -> dict[str, Any]:
        """GET the checkout status (long-polling when ``wait``)."""
        response = self.session.get(
            f"{self.web}{submitted['statusUrl']}",
            params={"wait": wait, "since": since} if wait else {},
            headers={"X-Checkout-Token": submitted["checkoutToken"]},
            timeout=wait + 10,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for(
        self,
        submitted: dict[str, Any],
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Long-poll until ``predicate(status)`` holds; fail with the last status."""
        deadline = time.monotonic() + timeout
        current = self.status(submitted)
        while not predicate(current):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met; last status {json.dumps(current)}")
            current = self.status(
                submitted, wait=max(1, min(5, int(remaining))), since=current["version"]
            )
        return current

    def order(self, submitted: dict[str, Any]) -> dict[str, Any]:
        """GET the full order."""
        response = self.session.get(
            f"{self.web}/api/orders/{submitted['orderId']}",
            headers={"X-Checkout-Token": submitted["checkoutToken"]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def emulator_control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the emulator's test-only control API."""
        response = self.session.post(f"{self.emulator}/_emulator/{path}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())


def start_stack(
    *,
    redis_url: str,
    database_url: str,
    logs: Path,
    hold_ttl: int = 120,
    web_workers: int = 2,
    worker_processes: int = 1,
    with_worker: bool = True,
    env: Mapping[str, str] | None = None,
) -> Stack:
    """Flush Redis, migrate, then start mail, emulator, web and worker; return once ready.

    ``env`` adds to (or overrides) the processes' environment, e.g. caps or budgets.

    Their output goes, prefixed by name, to ``logs/stack.log``.
    """
    plan = demo.Plan(
        ports=demo.choose_ports({}, free=True),
        var_dir=logs,
        redis_url=redis_url,
        database_url=database_url,
        real_stripe=False,
    )
    extra = dict(env or {})
    env = plan.app_env()
    env.update(JWT_SECRET=JWT_SECRET, HOLD_TTL_SECONDS=str(hold_ttl), RATELIMIT_ENABLED="false")
    env.update(extra)
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    admin = jwt.encode(
        {"sub": "e2e-admin", "role": "admin", "exp": int(time.time()) + 3600},
        JWT_SECRET,
        algorithm="HS256",
    )
    sup = Supervisor(cwd=str(ROOT), out=(logs / "stack.log").open("w"))
    stack = Stack(
        web=plan.web_url.rstrip("/"), emulator=plan.emulator_url, redis=client, supervisor=sup,
        env=env, admin_token=admin, mail=plan.mail_web_url.rstrip("/"),
    )  # fmt: skip
    try:
        demo.start_backing_services(sup, plan)
        demo.prepare_data(sup, env, seed=False)
        demo.start_web(sup, plan, env, workers=web_workers)
        if with_worker:
            stack.start_worker(worker_processes)
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="module")
def e2e_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database of this module's own when the run has PostgreSQL (never the
    shared ``postgres_url``, whose tests expect it fresh), else a SQLite file."""
    from tests.conftest import REAL_DATABASE_URL, _is_postgres

    if not _is_postgres(REAL_DATABASE_URL):
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'checkout.db'}"
        return
    import psycopg2

    assert REAL_DATABASE_URL
    name = f"checkout_e2e_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(REAL_DATABASE_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(REAL_DATABASE_URL)._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def launch_stack(
    real_redis_url: str, e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Start stacks on the real Redis and this run's database; all stop with the module.

    ``launch_stack(hold_ttl=3, web_workers=2, with_worker=False)`` takes the options of
    :func:`start_stack`; the environment at call time is what the processes inherit.
    """
    running: list[Stack] = []

    def launch(**options: Any) -> Stack:
        stack = start_stack(
            redis_url=real_redis_url,
            database_url=e2e_database_url,
            logs=tmp_path_factory.mktemp("e2e-logs"),
            **options,
        )
        running.append(stack)
        return stack

    yield launch
    for stack in running:
        stack.stop()


@pytest.fixture(scope="module")
def stack(launch_stack: Callable[..., Stack]) -> Stack:
    """The running stack for one test module (holds last 120 s)."""
    return launch_stack(web_workers=3)


@pytest.fixture
def sku() -> str:
    """A fresh SKU per test so tests on one stack never share stock."""
    return f"E2E-{uuid.uuid4().hex[:10].upper()}"
