"""Every process's Redis connections: to ``REDIS_URL``, or to the primary Sentinel names.

With ``REDIS_SENTINELS`` set, each new connection asks the sentinels for the current
primary of ``REDIS_SENTINEL_MASTER``. After a failover, a connection to the old primary
fails once (refused, or ``READONLY`` from a demoted one, which redis-py turns into a
ConnectionError and a disconnect) and the next one goes to the promoted replica: no
process restarts, no operator.
"""

from __future__ import annotations

import select
from typing import Any

import redis
from gevent import monkey
from redis.maint_notifications import MaintNotificationsConfig
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from app.config import Config

# How long a sentinel may take to answer "who is the primary?" before the next is asked.
SENTINEL_TIMEOUT_SECONDS = 0.5
# How long a caller waits for a free connection of a full pool before failing.
POOL_WAIT_SECONDS = 10


# The operating system's poll, also under gevent's monkey-patching: a zero-timeout poll
# never blocks, and gevent's own (what ``select.poll`` is in the web) parks the greenlet,
# arms a timer and switches to the hub and back — 29 µs per pool checkout against 1.6.
_os_poll = monkey.get_original("select", "poll")


class IdleCheck:
    """A pooled connection's "has it data?" check (redis-py's ``can_read``, asked on every
    checkout from the pool) answered by one non-blocking OS poll when nothing is buffered.

    Only the common answer takes the short way: no data in the hiredis reader and none on
    the socket. Anything else (data, a closed socket, another parser, TLS, a timeout)
    goes to redis-py's own check, which decides as before.
    """

    _sock: Any
    _parser: Any

    def can_read(self, timeout: float = 0) -> bool:
        """Whether data waits (see the class); redis-py's answer whenever any might."""
        if timeout == 0 and self._idle():
            return False
        return super().can_read(timeout)  # type: ignore[misc]

    def _idle(self) -> bool:
        sock = self._sock
        reader = getattr(self._parser, "_reader", None)  # hiredis's; the Python parser has none
        if sock is None or reader is None or hasattr(sock, "pending") or reader.has_data():
            return False
        poller = _os_poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)  # POLLHUP and POLLERR are reported too: not idle


class Connection(IdleCheck, redis.Connection):
    """REDIS_URL's connections (``redis://``) with the cheap idle check."""


class SentinelConnection(IdleCheck, SentinelManagedConnection):
    """The sentinels' primary's connections with the cheap idle check."""


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool with the blocking pool's wait: a caller beyond ``max_connections``
    queues for a free connection instead of failing (a gevent web runs hundreds at once)."""


def connection_pool(
    config: Config, *, max_connections: int, **options: Any
) -> redis.ConnectionPool:
    """A bounded, blocking pool to the primary: REDIS_URL's, or the one Sentinel names."""
    # Maintenance notifications are Redis Cloud's and Enterprise's pushes (RESP3, redis-py's
    # default "auto"): ours sends none, and while they are on, the pool hands out a connection
    # holding unread data as it is ("Connection has data" is not checked) and each new
    # connection asks for them, one more round trip.
    options.setdefault("maint_notifications_config", MaintNotificationsConfig(enabled=False))
    if not config.redis_sentinels:
        if "connection_class" not in redis.connection.parse_url(config.redis_url):
            options.setdefault("connection_class", Connection)  # TCP; TLS, a unix socket: theirs
        return redis.BlockingConnectionPool.from_url(
            config.redis_url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, **options
        )
    # REDIS_URL still lends the database number and the password.
    url = redis.connection.parse_url(config.redis_url)
    if not options.get("ssl"):
        options.setdefault("connection_class", SentinelConnection)
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
