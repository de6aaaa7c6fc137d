"""Fixtures for the HTTP tests: a seeded catalog, valid bodies, and JWTs."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import redis as redis_lib

from app import create_app
from app.gateways.jobs import DramatiqJobs, redis_broker
from app.runtime import Runtime, install
from app.services.catalog import ProductInput, upsert_product

CATALOG = (
    ProductInput("TEE-M", "Tee (M)", "Cotton.", 2500, "usd", 10),
    ProductInput("MUG", "Mug", "Stoneware.", 1400, "usd", 5),
    ProductInput("GONE", "Sold out", "Nothing left.", 900, "usd", 0),
)

VALID_SUBMIT: dict[str, Any] = {
    "items": [{"sku": "TEE-M", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
    "email": "buyer@example.com",
    "shippingAddress": {
        "name": "Ada Lovelace",
        "line1": "1 Analytical Way",
        "city": "San Francisco",
        "state": "CA",
        "postalCode": "94107",
        "country": "US",
    },
}


@pytest.fixture
def catalog(runtime: Any) -> list[dict[str, Any]]:
    """Three products in the database and Redis (one sold out)."""
    return [upsert_product(runtime.redis, item) for item in CATALOG]


@pytest.fixture
def submit_body() -> Callable[..., dict[str, Any]]:
    """A valid submit body, deep-copied, with top-level overrides."""

    def make(**overrides: Any) -> dict[str, Any]:
        body = copy.deepcopy(VALID_SUBMIT)
        body.update(overrides)
        return body

    return make


@pytest.fixture
def make_token(config: Any) -> Callable[..., str]:
    """Sign a JWT with the test secret."""

    def make(claims: dict[str, Any], secret: str | None = None) -> str:
        # `exp` is required (a token without one would never expire): a default hour.
        claims = {"exp": int(time.time()) + 3600, **claims}
        return jwt.encode(claims, secret or config.jwt_secret, algorithm="HS256")

    return make


@pytest.fixture
def admin_headers(make_token: Callable[..., str]) -> dict[str, str]:
    """Authorization for an admin."""
    return {"Authorization": f"Bearer {make_token({'sub': 'admin-1', 'role': 'admin'})}"}


@pytest.fixture
def pending_order(runtime: Any) -> Any:
    """A written PENDING order for 2 TEE (2000 each) with its intent at the fake gateway."""
    from app.services.checkout import create_order_from_submission
    from tests.fakes import admit_checkout, stock

    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    submission = admit_checkout(runtime.redis, [("TEE", 2)])
    order = create_order_from_submission(submission.order_id, runtime)
    assert order is not None
    return order


@pytest.fixture
def paid_order(runtime: Any, gateway: Any, pending_order: Any) -> Any:
    """``pending_order`` paid: the succeeded webhook applied."""
    from app.services.webhooks import handle_event
    from models import Order

    event = gateway.event(
        "payment_intent.succeeded", gateway.confirm(pending_order.payment_intent_id)
    )
    handle_event(event["id"], event, runtime)
    order = Order.get_by_id(pending_order.id)
    assert order.state == "PAID"
    return order


@pytest.fixture
def authorized_order(runtime: Any, gateway: Any) -> Any:
    """An AUTHORIZED order (manual capture) for 2 TEE of 10 on hand: 8 left on sale."""
    from app.services.confirmation import place_order
    from models import Order
    from tests.fakes import admit_checkout, stock

    stock(runtime.redis, "TEE", on_hand=10, price=2000)
    token = gateway.confirmation_token("pm_card_visa")
    submission = admit_checkout(
        runtime.redis, [("TEE", 2)], confirmation_token=token, capture_method="manual"
    )
    placed = place_order(submission.order_id, runtime)
    assert placed.order is not None
    order = Order.get_by_id(placed.order.id)
    assert order.state == "AUTHORIZED"
    return order


def counting_runtime(runtime: Any, url: str, **overrides: Any) -> Runtime:
    """A runtime (installed) on the Redis at ``url`` and a real Dramatiq broker there, both
    counting their round trips (``devstack.perf.roundtrips.sends``); the catalog in stock."""
    from devstack.perf.roundtrips import CountingConnection

    pool = redis_lib.ConnectionPool.from_url(
        url, decode_responses=True, connection_class=CountingConnection
    )
    client = redis_lib.Redis(connection_pool=pool)
    broker = redis_broker(url)
    broker.client.connection_pool.connection_class = CountingConnection
    real = Runtime(
        config=runtime.config.with_overrides(**overrides),
        redis=client,
        gateway=runtime.gateway,
        mailer=runtime.mailer,
        jobs=DramatiqJobs(broker),
    )
    install(real)
    for product in CATALOG:
        upsert_product(client, product)
    return real


@pytest.fixture
def counted_app(runtime: Any, real_redis_url: str) -> Iterator[Any]:
    """A test client of the app on :func:`counting_runtime` over the real Redis (emptied)."""
    redis_lib.Redis.from_url(real_redis_url).flushdb()
    real = counting_runtime(
        runtime, real_redis_url, ratelimit_enabled=True, ratelimit_checkout="1000/minute"
    )
    yield create_app(real.config, runtime=real).test_client()
    real.redis.flushdb()
    real.jobs.broker.close()  # type: ignore[attr-defined]
    install(runtime)


def run_queued(broker: Any) -> None:
    """Run the default queue's messages on a real Dramatiq worker until none is left."""
    import dramatiq

    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        broker.join("default", timeout=20_000)
        worker.join()
    finally:
        worker.stop()
