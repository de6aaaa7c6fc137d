"""The end-to-end stack: web (gunicorn), worker (dramatiq) and the Stripe emulator as
separate processes on free 127.0.0.1 ports, the real Redis, and a SQLite file (or the
run's PostgreSQL database when DATABASE_URL is PostgreSQL).

Every process is started here and stopped here by its process id, within bounded time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import jwt
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-jwt-secret-at-least-32-bytes-long!"
WEBHOOK_SECRET = "whsec_e2e_secret"
START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """One child process, its log file, and how to stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM its process group (gunicorn/dramatiq fork workers), then SIGKILL."""
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        """The last lines of its log (for failure messages)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """A running web + worker + emulator, and helpers to drive them over HTTP."""

    web: str
    emulator: str
    redis: Any
    processes: list[Process]
    admin_token: str
    env: dict[str, str] = field(default_factory=dict)
    logs: Path = ROOT
    session: requests.Session = field(default_factory=requests.Session)

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


def _wait_http(url: str, process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not start:\n{process.tail()}")


def _wait_log(process: Process, needle: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        if process.log.exists() and needle in process.log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not get ready:\n{process.tail()}")


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Process(name, popen, log)


def start_stack(
    *,
    redis_url: str,
    database_url: str,
    logs: Path,
    hold_ttl: int = 120,
    web_workers: int = 2,
    worker_processes: int = 1,
    with_worker: bool = True,
) -> Stack:
    """Migrate, then start emulator, web and worker; return once all answer."""
    import redis as redis_lib

    web_port, emulator_port = free_port(), free_port()
    web, emulator = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{emulator_port}"
    env = {key: value for key, value in os.environ.items() if key != "DRAMATIQ_BROKER"}
    env.update(
        PYTHONPATH=str(ROOT),
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        STRIPE_API_BASE=emulator,
        STRIPE_SECRET_KEY="sk_test_e2e",
        STRIPE_PUBLISHABLE_KEY="pk_test_e2e",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        JWT_SECRET=JWT_SECRET,
        HOLD_TTL_SECONDS=str(hold_ttl),
        RATELIMIT_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    subprocess.run(
        [sys.executable, "-m", "models.migrate"], cwd=ROOT, env=env, check=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    processes: list[Process] = []
    try:
        emu = _spawn(
            "emulator",
            [sys.executable, "-m", "devstack.stripe_emulator", "--port", str(emulator_port),
             "--webhook-url", f"{web}/api/webhooks/stripe", "--webhook-secret", WEBHOOK_SECRET],
            env, logs,
        )  # fmt: skip
        processes.append(emu)
        gunicorn = _spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{web_port}",
             "--worker-class", "gthread", "--threads", "8", "--workers", str(web_workers),
             "--log-level", "warning"],
            env, logs,
        )  # fmt: skip
        processes.append(gunicorn)
        _wait_http(f"{emulator}/_emulator/health", emu)
        _wait_http(f"{web}/readyz", gunicorn)
        if with_worker:
            processes.append(start_worker(env, logs, worker_processes))
    except BaseException:
        for process in reversed(processes):
            process.stop()
        raise
    admin = jwt.encode({"sub": "e2e-admin", "role": "admin"}, JWT_SECRET, algorithm="HS256")
    return Stack(
        web=web, emulator=emulator, redis=client, processes=processes, admin_token=admin,
        env=env, logs=logs,
    )  # fmt: skip


def start_worker(env: dict[str, str], logs: Path, processes: int = 1) -> Process:
    """Start ``dramatiq tasks`` and wait until it is ready for messages."""
    worker = _spawn(
        "worker",
        [sys.executable, "-m", "dramatiq", "tasks", "--processes", str(processes),
         "--threads", "8"],
        env, logs,
    )  # fmt: skip
    try:
        _wait_log(worker, "ready for action")
    except BaseException:
        worker.stop()
        raise
    return worker


def stop_stack(stack: Stack) -> None:
    """Stop every process (by pid) and close the Redis client."""
    for process in reversed(stack.processes):
        process.stop()
    stack.redis.close()


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
        stop_stack(stack)


@pytest.fixture(scope="module")
def stack(launch_stack: Callable[..., Stack]) -> Stack:
    """The running stack for one test module (holds last 120 s)."""
    return launch_stack(web_workers=3)


@pytest.fixture
def sku() -> str:
    """A fresh SKU per test so tests on one stack never share stock."""
    return f"E2E-{uuid.uuid4().hex[:10].upper()}"
