"""devstack/perf/cpu.py: the bench's account of where a run's CPU went."""

from __future__ import annotations

import os
import sys

import pytest

from devstack.perf import cpu

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def snap(per_pid: dict[int, float], roles: dict[int, str], busy: float) -> cpu.Snapshot:
    return cpu.Snapshot(per_pid=per_pid, roles=roles, busy=busy)


class TestUsed:
    def test_sums_each_roles_growth_and_the_machines(self) -> None:
        before = snap({1: 1.0, 2: 5.0, 3: 2.0}, {1: "web", 2: "web", 3: "worker"}, busy=100.0)
        after = snap(
            {1: 1.5, 2: 6.0, 3: 2.0, 4: 0.25},
            {1: "web", 2: "web", 3: "worker", 4: "PostgreSQL"},
            busy=104.0,
        )
        assert cpu.used(before, after) == {"web": 1.5, "PostgreSQL": 0.25, "machine busy": 4.0}

    def test_describe_gives_cores_and_cost_per_unit(self) -> None:
        lines = cpu.describe({"web": 2.0, "machine busy": 4.0, "worker": 3.0}, 2.0, 100, "intent")
        assert [line.split()[0] for line in lines] == ["worker", "web", "machine"]
        assert "1.50 cores" in lines[0] and "30.0 ms/intent" in lines[0]


@linux
class TestSnapshot:
    def test_this_process_is_the_load_generator_and_its_work_shows(self) -> None:
        before = cpu.snapshot()
        total = 0
        for n in range(2_000_000):  # some CPU of our own
            total += n * n
        after = cpu.snapshot()
        spent = cpu.used(before, after)
        assert after.roles[os.getpid()] == "load generator"
        assert spent["load generator"] > 0
        assert spent["machine busy"] >= spent["load generator"] * 0.5


@linux
@pytest.mark.realredis
class TestRoundTripPrice:
    def test_a_local_servers_pid_and_both_ends_cpu_are_found(self, real_redis_url: str) -> None:
        import redis

        from devstack.perf import roundtrips

        client = redis.Redis.from_url(real_redis_url)
        pid = roundtrips.server_pid(client)
        assert pid is not None and cpu.snapshot().roles[pid] == "Redis"
        cost = roundtrips.ping_cost(real_redis_url, count=200)
        assert cost.wall_us > 0 and cost.client_cpu_us > 0 and cost.redis_cpu_us >= 0
