"""Every process's Redis connections: to ``REDIS_URL``, or to the primary Sentinel names.

With ``REDIS_SENTINELS`` set, each new connection asks the sentinels for the current
primary of ``REDIS_SENTINEL_MASTER``. After a failover, a connection to the old primary
fails once (refused, or ``READONLY`` from a demoted one, which redis-py turns into a
ConnectionError and a disconnect) and the next one goes to the promoted replica: no
process restarts, no operator.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from app.config import Config

# How long a sentinel may take to answer "who is the primary?" before the next is asked.
SENTINEL_TIMEOUT_SECONDS = 0.5
# How long a caller waits for a free connection of a full pool before failing.
POOL_WAIT_SECONDS = 10


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool with the blocking pool's wait: a caller beyond ``max_connections``
    queues for a free connection instead of failing (a gevent web runs hundreds at once)."""


def connection_pool(
    config: Config, *, max_connections: int, **options: Any
) -> redis.ConnectionPool:
    """A bounded, blocking pool to the primary: REDIS_URL's, or the one Sentinel names."""
    if not config.redis_sentinels:
        return redis.BlockingConnectionPool.from_url(
            config.redis_url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, **options
        )
    # REDIS_URL still lends the database number and the password.
    url = redis.connection.parse_url(config.redis_url)
    sentinel = Sentinel(
        list(config.redis_sentinels),
        socket_timeout=SENTINEL_TIMEOUT_SECONDS,
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT_SECONDS},
    )
    return BlockingSentinelPool(
        config.redis_sentinel_master,
        sentinel,
        max_connections=max_connections,
        timeout=POOL_WAIT_SECONDS,
        db=url.get("db", 0),
        password=url.get("password"),
        username=url.get("username"),
        **options,
    )
