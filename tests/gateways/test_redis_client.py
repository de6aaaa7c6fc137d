"""Redis connections: REDIS_URL's server, or the primary the sentinels name."""

from __future__ import annotations

import redis

from app.config import Config
from app.gateways.jobs import redis_broker
from app.gateways.redis_client import BlockingSentinelPool, connection_pool


class TestConnectionPool:
    def test_without_sentinels_a_blocking_pool_on_redis_url(self) -> None:
        pool = connection_pool(Config(redis_url="redis://cache:6380/3"), max_connections=7)
        assert isinstance(pool, redis.BlockingConnectionPool)
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
        assert pool.service_name == "shop"
        assert pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["password"] == "s3cret"
        assert pool.max_connections == 5

    def test_the_broker_follows_the_sentinels_too(self) -> None:
        config = Config(redis_sentinels=(("127.0.0.1", 26379),), redis_sentinel_master="shop")
        broker = redis_broker(config)
        assert isinstance(broker.client.connection_pool, BlockingSentinelPool)
