"""Fixtures for the service tests: orders written from an admitted submission."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.runtime import Runtime, install, uninstall
from app.services.checkout import create_order_from_submission
from app.services.confirmation import place_order
from models import Order
from models.db import bind_database, close_database
from models.migrate import apply_migrations, drop_all
from tests.fakes import FakeGateway, ListMailer, Receiver, RecordingJobs, admit_checkout, stock
from tests.services.lifecycle_model import World


@pytest.fixture
def order(runtime: Any, request: pytest.FixtureRequest) -> Order:
    """A PENDING order for 2 TEE with its intent; a module's ``ON_HAND`` sets the stock (5)."""
    stock(runtime.redis, "TEE", on_hand=getattr(request.module, "ON_HAND", 5), price=2000)
    submission = admit_checkout(runtime.redis, [("TEE", 2)])
    created = create_order_from_submission(submission.order_id, runtime)
    assert created is not None
    return created


@pytest.fixture
def authorized(runtime: Any, gateway: Any) -> Order:
    """An AUTHORIZED order (manual capture) for 2 TEE of 10 on hand: 8 left on sale."""
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


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Local shop backends a test appends (``Receiver`` on 127.0.0.1), closed afterwards."""
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


class LifecycleWorlds:
    """Fresh worlds for the lifecycle model: one database and Redis per example."""

    def __init__(self, config: Any, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.config, self.tmp_path, self.request = config, tmp_path, request
        self.made = itertools.count(1)

    def fake(self) -> World:
        """SQLite (a new file) and fakeredis."""
        import fakeredis

        url = f"sqlite:///{self.tmp_path / f'lifecycle-{next(self.made)}.db'}"
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        return self._world(url, client, fresh_schema=False)

    def real(self) -> World:
        """This session's PostgreSQL database (tables recreated) and Redis db (flushed)."""
        import redis as redis_lib

        url = self.request.getfixturevalue("postgres_url")
        client = redis_lib.Redis.from_url(
            self.request.getfixturevalue("real_redis_url"), decode_responses=True
        )
        client.flushdb()
        return self._world(url, client, fresh_schema=True)

    def _world(self, url: str, client: Any, *, fresh_schema: bool) -> World:
        database = bind_database(url)
        if fresh_schema:
            drop_all(database)
        apply_migrations(database)
        config = replace(self.config, database_url=url)
        runtime = install(
            Runtime(
                config=config,
                redis=client,
                gateway=FakeGateway(webhook_secret="whsec_test_secret"),
                mailer=ListMailer(),
                jobs=RecordingJobs(),
            )
        )

        def close() -> None:
            uninstall()
            if fresh_schema:  # the session's PostgreSQL database: leave it empty, as `db` does
                drop_all(database)
            close_database()
            client.close()

        return World(runtime=runtime, close=close)


@pytest.fixture
def lifecycle_worlds(config: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """A factory of fresh worlds (database, Redis, runtime) for ``LifecycleMachine``."""
    return LifecycleWorlds(config, tmp_path, request)
