"""Redis connections: REDIS_URL's server, or the primary the sentinels name."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from app.config import Config
from app.gateways import redis_client
from app.gateways.jobs import redis_broker
from app.gateways.redis_client import BlockingSentinelPool, connection_pool


class TestConnectionPool:
    def test_without_sentinels_a_blocking_pool_on_redis_url(self) -> None:
        pool = connection_pool(Config(redis_url="redis://cache:6380/3"), max_connections=7)
        assert isinstance(pool, redis.BlockingConnectionPool)
        assert pool.connection_class is redis_client.Connection
        assert pool.connection_kwargs["host"] == "cache"
        assert pool.connection_kwargs["db"] == 3
        assert pool.max_connections == 7

    def test_with_sentinels_a_blocking_pool_on_the_named_primary(self) -> None:
        config = Config(
            redis_url="redis://:s3cret@ignored:6379/2",
            redis_sentinels=(("127.0.0.1", 26379),),
            redis_sentinel_master="shop",
        )
        pool = connection_pool(config, max_connections=5, decode_responses=True)
        assert isinstance(pool, BlockingSentinelPool)
        assert isinstance(pool, redis.BlockingConnectionPool)  # callers queue, never fail
        assert pool.connection_class is redis_client.SentinelConnection
        assert pool.service_name == "shop"
        assert pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["password"] == "s3cret"
        assert pool.max_connections == 5

    def test_the_broker_follows_the_sentinels_too(self) -> None:
        config = Config(redis_sentinels=(("127.0.0.1", 26379),), redis_sentinel_master="shop")
        broker = redis_broker(config)
        assert isinstance(broker.client.connection_pool, BlockingSentinelPool)

    def test_tls_and_unix_sockets_keep_their_own_connections(self) -> None:
        tls = connection_pool(Config(redis_url="rediss://cache:6380/0"), max_connections=2)
        unix = connection_pool(Config(redis_url="unix:///run/redis.sock"), max_connections=2)
        assert tls.connection_class is redis.SSLConnection
        assert unix.connection_class is redis.UnixDomainSocketConnection


@pytest.mark.realredis
class TestIdleCheck:
    """The pool's per-checkout check: answered by one OS poll when nothing waits, by
    redis-py's own check otherwise (so a connection with data is still replaced)."""

    @pytest.fixture
    def pool(self, real_redis_url: str) -> Any:
        pool = connection_pool(Config(redis_url=real_redis_url), max_connections=2)
        yield pool
        pool.disconnect()

    def test_an_idle_connection_is_answered_without_redis_pys_check(
        self, pool: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        connection = pool.get_connection()
        connection.send_command("PING")
        assert connection.read_response() == b"PONG"
        checked: list[float] = []
        monkeypatch.setattr(
            redis.Connection, "can_read", lambda self, timeout=0: checked.append(timeout)
        )
        assert connection.can_read() is False
        assert checked == []
        pool.release(connection)

    def test_unread_data_is_seen(self, pool: Any) -> None:
        connection = pool.get_connection()
        connection.send_command("PING")
        assert _eventually(connection.can_read)
        pool.release(connection)

    def test_a_connection_returned_with_unread_data_is_replaced(self, pool: Any) -> None:
        client = redis.Redis(connection_pool=pool)
        connection = pool.get_connection()
        connection.send_command("ECHO", "stale")
        assert _eventually(connection.can_read)
        pool.release(connection)
        assert client.echo("fresh") == b"fresh"  # not the stale answer

    def test_a_connection_the_server_closed_is_replaced(self, pool: Any, real_redis: Any) -> None:
        client = redis.Redis(connection_pool=pool)
        connection = pool.get_connection()
        connection.send_command("CLIENT", "ID")
        real_redis.client_kill_filter(_id=connection.read_response())
        assert _eventually(lambda: not connection._idle())
        pool.release(connection)
        assert client.ping() is True


def _eventually(check: Any) -> bool:
    """``check()`` true within a second (the answer may still be on its way)."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return False
