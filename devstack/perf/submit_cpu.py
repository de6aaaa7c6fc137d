"""The submit's CPU in-process: ``python -m devstack.perf.submit_cpu --redis-db N``.

Calls the WSGI app directly (no server, no client library): N submits, each with its own
Idempotency-Key and e-mail, against a real Redis db index that must be empty (it is
flushed afterwards), then N x 5 ``/healthz``; the CPU of this process per request
(user + system, ``getrusage``), the best of ``--rounds``. ``--profile out.prof`` writes a
cProfile of one loop of submits instead (``python -m pstats out.prof``).

The request log goes to stdout (send it to /dev/null); the figures to stderr. On a shared
box they drift by tens of per cent between runs: compare two checkouts by running this
from each in turn, interleaved (another checkout: ``cd it && PYTHONPATH=. python
/path/to/submit_cpu.py ...``; docs/performance.md, "The submit").
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import resource
import sys
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import redis as redis_lib

from app import create_app
from app.config import Config
from app.runtime import build_runtime
from app.services.catalog import ProductInput, upsert_product
from models.db import bind_database
from models.migrate import apply_migrations

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Analytical Way",
    "city": "San Francisco",
    "state": "CA",
    "postalCode": "94107",
    "country": "US",
}
SKUS = ("CPU-0", "CPU-1")


def _environ(path: str, body: bytes | None, key: str | None) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds one for a JSON POST (or a GET without body)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET" if body is None else "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.input": io.BytesIO(body or b""),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body is not None:
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    if key is not None:
        environ["HTTP_IDEMPOTENCY_KEY"] = key
    return environ


class Loop:
    """Requests through one app, counting the answers' status lines."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.statuses: dict[str, int] = {}
        self.sent = 0

    def call(self, path: str, body: bytes | None = None, key: str | None = None) -> None:
        """One request; the body is read to the end, as a server would."""
        seen: list[str] = []
        answer = self.app(_environ(path, body, key), lambda status, *_: seen.append(status))
        b"".join(answer)
        close = getattr(answer, "close", None)
        if close is not None:
            close()
        self.statuses[seen[0]] = self.statuses.get(seen[0], 0) + 1

    def submits(self, n: int) -> list[tuple[bytes, str]]:
        """``n`` distinct carts (other e-mail, other key): each one is admitted."""
        bodies = []
        for _ in range(n):
            self.sent += 1
            body = {
                "items": [{"sku": SKUS[0], "quantity": 2}, {"sku": SKUS[1], "quantity": 1}],
                "email": f"buyer{self.sent}@example.com",
                "shippingAddress": ADDRESS,
            }
            bodies.append((json.dumps(body).encode(), f"cpu-{os.getpid()}-{self.sent}"))
        return bodies


def cpu_per_call(run: Callable[[], None], n: int) -> tuple[float, float]:
    """µs of this process's CPU per call over ``n`` calls of ``run``: user + system, and
    user alone (the Python; the system part is mostly the Redis sockets' syscalls, whose
    price swings with the box's load)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        run()
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = after.ru_utime - before.ru_utime
    return (user + after.ru_stime - before.ru_stime) / n * 1e6, user / n * 1e6


def build(redis_url: str, database_dir: str) -> Loop:
    """Our app on ``redis_url`` (rate limits off, as the bench's stack) and a SQLite file,
    with the two products in stock."""
    config = Config(
        database_url=f"sqlite:///{database_dir}/cpu.db",
        redis_url=redis_url,
        stripe_webhook_secrets=("whsec_cpu",),
        jwt_secret="cpu-bench-jwt-secret-of-at-least-32-bytes",
        hold_ttl_seconds=900,
        ratelimit_enabled=False,
        database_pool_size=0,
    )
    apply_migrations(bind_database(config.database_url))
    runtime = build_runtime(config)
    for index, sku in enumerate(SKUS):
        upsert_product(runtime.redis, ProductInput(sku, sku, "-", 1500 + index, "usd", 10**8))
    return Loop(create_app(config, runtime=runtime))


def _submitter(loop: Loop, n: int) -> Callable[[], None]:
    """One call per submit of ``n`` fresh carts (built before the clock starts)."""
    bodies = iter(loop.submits(n))
    return lambda: loop.call("/api/checkout/payment-intent", *next(bodies))


def measure(loop: Loop, n: int, rounds: int) -> tuple[float, float, float, float]:
    """Best of ``rounds``: µs per submit, per ``/healthz``, and each in user time alone."""
    submit: list[tuple[float, float]] = []
    health: list[tuple[float, float]] = []
    for _ in range(rounds):
        submit.append(cpu_per_call(_submitter(loop, n), n))
        health.append(cpu_per_call(lambda: loop.call("/healthz"), n * 5))
    return (
        min(s for s, _ in submit),
        min(h for h, _ in health),
        min(u for _, u in submit),
        min(u for _, u in health),
    )


def main(argv: list[str] | None = None) -> None:
    """Measure (or profile) and print one line to stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-db", type=int, required=True, help="an EMPTY db index")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="")
    args = parser.parse_args(argv)
    url = f"{args.redis}/{args.redis_db}"
    client = redis_lib.Redis.from_url(url)
    if client.dbsize():
        sys.exit(f"{url} holds keys: give an empty db index")
    try:
        with tempfile.TemporaryDirectory() as database_dir:
            loop = build(url, database_dir)
            measure(loop, 50, 1)  # warm-up: scripts loaded, connections open
            if args.profile:
                bodies = loop.submits(args.n)
                cProfile.runctx(
                    "for body in bodies: loop.call('/api/checkout/payment-intent', *body)",
                    {},
                    {"bodies": bodies, "loop": loop},
                    args.profile,
                )
                return
            submit, health, submit_user, health_user = measure(loop, args.n, args.rounds)
    finally:
        client.flushdb()
    print(
        f"submit {submit:.0f} µs  /healthz {health:.0f} µs  "
        f"(/healthz / submit {health / submit:.3f}); user time alone: submit "
        f"{submit_user:.0f} µs  /healthz {health_user:.0f} µs  answers {loop.statuses}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
