"""Redis round trips of one admitted submit, counted on the connections themselves."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from devstack.perf import cpu


class CountingConnection(redis_lib.Connection):
    """A connection that counts what it sends: one packed send is one round trip."""

    sent = itertools.count()

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Count, then send."""
        next(CountingConnection.sent)
        super().send_packed_command(command, check_health)


def sends() -> int:
    """How many round trips every counting connection has started so far (this call
    counts as one: subtract it)."""
    return next(CountingConnection.sent)


def submit_round_trips(redis_url: str, database_url: str) -> int:
    """Build the app on ``redis_url`` with counting connections (its own client and its
    broker's) and count the round trips of the second admitted submit (the first loads
    the scripts)."""
    from app import create_app
    from app.config import Config
    from app.gateways.jobs import DramatiqJobs, redis_broker
    from app.runtime import build_runtime
    from app.services.catalog import ProductInput, upsert_product

    config = Config(
        redis_url=redis_url,
        database_url=database_url,
        ratelimit_enabled=True,
        ratelimit_checkout="100000/minute",
        jwt_secret="bench-jwt-secret-of-at-least-32-bytes!",
    )
    broker = redis_broker(redis_url)
    broker.client.connection_pool.connection_class = CountingConnection
    runtime = build_runtime(config, jobs=DramatiqJobs(broker))
    runtime.redis.connection_pool.connection_class = CountingConnection
    client = create_app(config, runtime=runtime).test_client()
    with client.application.app_context():
        product = ProductInput(
            sku="RT", name="Round trips", description="", price_amount=1000, currency="usd",
            stock_on_hand=1000,
        )  # fmt: skip
        upsert_product(runtime.redis, product)
    body = {
        "items": [{"sku": "RT", "quantity": 1}],
        "email": "bench@example.com",
        "shippingAddress": {"name": "Bench", "line1": "1 Main St", "city": "Austin",
                            "state": "TX", "postalCode": "73301", "country": "US"},
    }  # fmt: skip
    client.post(
        "/api/checkout/payment-intent", json=body, headers={"Idempotency-Key": "round-trip-1"}
    )
    before = sends()
    response = client.post(
        "/api/checkout/payment-intent", json=body, headers={"Idempotency-Key": "round-trip-2"}
    )
    trips = sends() - before - 1
    broker.close()
    if response.status_code != 202:
        raise RuntimeError(f"the counted submit was refused: {response.get_data(as_text=True)}")
    return trips


def server_pid(client: redis_lib.Redis) -> int | None:
    """The Redis server's pid as it reports it (``INFO server``); meaningful when the
    server runs on this machine, as the bench's does."""
    try:
        return int(client.info("server")["process_id"])
    except (redis_lib.RedisError, KeyError, ValueError):  # no INFO (a managed Redis)
        return None


@dataclass(frozen=True)
class PingCost:
    """What one Redis round trip costs on this machine, in microseconds."""

    wall_us: float
    client_cpu_us: float
    redis_cpu_us: float


def ping_cost(redis_url: str, count: int = 5000) -> PingCost:
    """``count`` PINGs on one connection: the wall time and the CPU of both ends per round
    trip (the server's from /proc, when its pid is known and local; all it did in the
    meantime, for any client). A figure of the machine, not of the service: it prices
    every round trip the other figures make."""
    client = redis_lib.Redis.from_url(redis_url)
    client.ping()
    server = server_pid(client)
    before = cpu.snapshot()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count):
        client.ping()
    wall, own = time.perf_counter() - started, time.process_time() - cpu_started
    after = cpu.snapshot()
    served = after.per_pid.get(server, 0.0) - before.per_pid.get(server, 0.0) if server else 0.0
    client.close()
    return PingCost(1e6 * wall / count, 1e6 * own / count, 1e6 * served / count)
