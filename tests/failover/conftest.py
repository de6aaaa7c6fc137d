"""The failover suite's stack: the chaos harness's processes (web, worker, clock, the
emulator, the mail catcher, a private PostgreSQL) on a replicated Redis of its own — a
primary, two replicas and three sentinels on loopback ports — which every process reaches
through ``REDIS_SENTINELS``."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from devstack.serving import free_port
from tests.chaos.conftest import progress  # noqa: F401 -- the same terminal progress lines
from tests.chaos.harness import ChaosStack, Progress, missing_binaries, start_chaos_stack
from tests.redis_topology import MASTER, RedisTopology, sentinel_list

# Longer than the clock's 60 s repair of a submission whose enqueue was lost with the
# primary (the admission itself is on the replica): that buyer still pays.
HOLD_TTL = 120
SEARCH_DELAY = 10


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_binaries()
    if reason:
        for item in items:
            if "failover" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"failover suite: {reason}"))


@pytest.fixture(scope="module")
def failover_stack(
    tmp_path_factory: pytest.TempPathFactory,
    progress: Progress,  # noqa: F811
) -> Iterator[ChaosStack]:
    """One web, one worker and the clock on a primary, two replicas and three sentinels.

    Two replicas, because a submit waits for one (REDIS_MIN_REPLICAS_ACK=1): after the
    primary's loss the promoted replica still has one to acknowledge its writes. With a
    single replica, submits answer 503 until the lost server is back (docs/reliability.md).
    """
    sentinels = [free_port() for _ in range(3)]
    stack = start_chaos_stack(
        tmp_path_factory.mktemp("failover"),
        progress,
        hold_ttl=HOLD_TTL,
        search_delay=SEARCH_DELAY,
        redis_server=partial(RedisTopology, replicas=2, sentinel_ports=sentinels),
        env={"REDIS_SENTINELS": sentinel_list(sentinels), "REDIS_SENTINEL_MASTER": MASTER},
        dynos=1,
    )
    topology = stack.redis_server
    progress(f"redis servers {topology.ports}, sentinels {topology.sentinels}")
    try:
        yield stack
    finally:
        progress("stopping the stack")
        stack.stop()
