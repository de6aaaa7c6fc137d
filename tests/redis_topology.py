"""A replicated Redis of the tests' own: a primary, a replica and (optionally) three
sentinels, each a ``redis-server`` on a free loopback port in a temp dir, started and
stopped by pid under a :class:`devstack.supervisor.Supervisor`.

Used by the admission's acknowledgement tests (primary + replica) and the failover suite
(the primary SIGKILLed mid-sale, a sentinel promoting the replica).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import redis as redis_lib
from redis.sentinel import MasterNotFoundError, Sentinel

from devstack.serving import free_port
from devstack.supervisor import Child, Supervisor

HOST = "127.0.0.1"
MASTER = "checkout"
# Sentinel's failover clock, shortened for a test (production keeps the defaults: 30 s
# down-after, 3 min failover timeout): the primary is declared down after 1 s unanswered.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def wait(ready: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``ready`` until it holds; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def pingable(port: int) -> bool:
    """Whether a Redis answers PING on ``port``."""
    try:
        with redis_lib.Redis(host=HOST, port=port, socket_timeout=1) as client:
            return bool(client.ping())
    except redis_lib.RedisError:
        return False


def sentinel_list(ports: list[int]) -> str:
    """``REDIS_SENTINELS`` for sentinels on ``ports``: ``host:port,…``."""
    return ",".join(f"{HOST}:{port}" for port in ports)


class RedisTopology:
    """Data servers (``a`` starts as the primary, ``replicas`` more — ``b``, ``c`` —
    replicate it) and a sentinel on each of ``sentinel_ports`` watching them under the name
    :data:`MASTER`."""

    def __init__(
        self,
        sup: Supervisor,
        workdir: Path,
        *,
        replicas: int = 1,
        sentinel_ports: list[int] | None = None,
    ) -> None:
        self.sup = sup
        self.dir = workdir
        self.ports = {name: free_port() for name in "abcdefgh"[: 1 + replicas]}
        self.sentinel_ports = sentinel_ports or []
        self.children: dict[str, Child] = {}

    # servers ---------------------------------------------------------------------------

    def _server(self, name: str, *extra: str) -> None:
        folder = self.dir / f"redis-{name}"
        folder.mkdir(exist_ok=True)
        # The port was free when chosen; on a shared box another process may bind it
        # before this server does, which then exits: it starts again on another port.
        for _ in range(3):
            argv = ["redis-server", "--bind", HOST, "--port", str(self.ports[name])]
            argv += ["--dir", str(folder), "--appendonly", "yes", "--appendfsync", "everysec"]
            argv += ["--save", "", "--loglevel", "warning", "--maxclients", "2000"]
            # A replica's first sync starts at once (Redis 7 waits 5 s for others to join).
            argv += ["--repl-diskless-sync-delay", "0", *extra]
            child = self.sup.start(f"redis-{name}", argv, {})
            self.children[name] = child
            assert child.process is not None
            process = child.process
            wait(
                lambda process=process: process.poll() is not None or pingable(self.ports[name]),
                f"redis-{name}",
                60,
            )
            if process.poll() is None:
                return
            self.sup.children = [c for c in self.sup.children if c is not child]
            del self.children[name]
            self.ports[name] = free_port()
        raise RuntimeError(f"redis-{name} exited three times: {child.tail()}")

    def start(self) -> RedisTopology:
        """The primary, its replicas (in sync before returning), then the sentinels."""
        self._server("a")
        for name in list(self.ports)[1:]:
            self._server(name, "--replicaof", HOST, str(self.ports["a"]))
        replicas = len(self.ports) - 1
        wait(lambda: self.replicas_in_sync("a") >= replicas, "the replicas' first sync", 30)
        for index, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{index}.conf"
            conf.write_text(
                f"bind {HOST}\nport {port}\ndir {self.dir}\n"
                f"sentinel monitor {MASTER} {HOST} {self.ports['a']} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            name = f"sentinel-{index}"
            self.children[name] = self.sup.start(
                name, ["redis-server", str(conf), "--sentinel", "--loglevel", "warning"], {}
            )
        for port in self.sentinel_ports:
            wait(lambda port=port: pingable(port), f"sentinel :{port}", 30)
        if self.sentinel_ports:
            wait(self.sentinels_see_replica, "the sentinels to find the replicas", 30)
        return self

    def replicas_in_sync(self, name: str) -> int:
        """How many replicas ``name`` reports online (their first sync done)."""
        try:
            with redis_lib.Redis(host=HOST, port=self.ports[name], socket_timeout=1) as client:
                info = client.info("replication")
        except redis_lib.RedisError:
            return 0
        count = int(info.get("connected_slaves", 0))
        return sum(1 for i in range(count) if info[f"slave{i}"].get("state") == "online")

    def sentinels_see_replica(self) -> bool:
        """Whether every sentinel knows every replica (it can promote one)."""
        for port in self.sentinel_ports:
            try:
                with redis_lib.Redis(host=HOST, port=port, socket_timeout=1) as client:
                    if len(client.sentinel_slaves(MASTER)) < len(self.ports) - 1:
                        return False
            except redis_lib.RedisError:
                return False
        return True

    # what the suites read ----------------------------------------------------------------

    @property
    def sentinels(self) -> str:
        """``REDIS_SENTINELS``: the sentinels as ``host:port,…``."""
        return sentinel_list(self.sentinel_ports)

    @property
    def url(self) -> str:
        """``REDIS_URL`` of the server that started as the primary."""
        return f"redis://{HOST}:{self.ports['a']}/0"

    @property
    def port(self) -> int:
        return self.ports["a"]

    def primary(self) -> tuple[str, int] | None:
        """The primary the sentinels name now (None while they hold it down, unreplaced)."""
        sentinel = Sentinel([(HOST, p) for p in self.sentinel_ports], socket_timeout=1)
        try:
            host, port = sentinel.discover_master(MASTER)
        except MasterNotFoundError:
            return None
        return str(host), int(port)

    def client(self) -> redis_lib.Redis:
        """A client on the current primary (through the sentinels when there are any)."""
        if not self.sentinel_ports:
            return redis_lib.Redis.from_url(self.url, decode_responses=True)
        sentinel = Sentinel([(HOST, p) for p in self.sentinel_ports], socket_timeout=1)
        return sentinel.master_for(MASTER, decode_responses=True, socket_timeout=5)

    # faults ------------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL one server the topology started (by its pid) and reap it."""
        child = self.children.pop(name)
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait(timeout=30)
        if child.pump is not None:
            child.pump.join(timeout=5)
        self.sup.children = [c for c in self.sup.children if c is not child]

    def crash(self) -> None:
        """SIGKILL whichever data server is the primary now."""
        primary = self.primary() if self.sentinel_ports else (HOST, self.ports["a"])
        assert primary is not None, "no primary to kill"
        self.kill(next(name for name, p in self.ports.items() if p == primary[1]))

    def restart_replica(self) -> None:
        """Start ``b`` again as ``a``'s replica (after :meth:`kill` of ``b``)."""
        self._server("b", "--replicaof", HOST, str(self.ports["a"]))
        wait(lambda: self.replicas_in_sync("a") >= 1, "the replica's resync", 30)

    def stop(self) -> None:
        """Stop every server this topology started."""
        for name in list(self.children):
            self.kill(name)
