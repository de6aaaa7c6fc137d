"""devstack/perf/cost.py and its counters: what the cost bench counts, and how it divides."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import fakeredis
import peewee
import pytest

from devstack.perf import cost, cost_account, cost_buyers, counting, cpu

ROOT = Path(__file__).resolve().parents[2]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class TestCounting:
    def test_statements_transactions_and_round_trips_are_counted_until_uninstalled(
        self,
    ) -> None:
        seen: Counter[str] = Counter()
        client = fakeredis.FakeRedis()
        client.ping()  # connected first: the handshake's commands are not counted below
        uninstall = counting.install(
            statement=lambda: seen.update(["statement"]),
            transaction=lambda: seen.update(["transaction"]),
            round_trip=lambda: seen.update(["round trip"]),
        )
        try:
            db = peewee.SqliteDatabase(":memory:")
            db.connect()
            with db.atomic():  # BEGIN, the statement, COMMIT
                db.execute_sql("SELECT 1")
            client.set("a", 1)
            with client.pipeline() as pipe:  # one round trip for both
                pipe.incr("a").incr("a").execute()
        finally:
            uninstall()
        assert seen == {"statement": 3, "transaction": 1, "round trip": 2}
        db.execute_sql("SELECT 1")
        client.get("a")
        assert seen == {"statement": 3, "transaction": 1, "round trip": 2}

    def test_the_brokers_round_trips_are_counted_apart_from_the_apps(self) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        seen: Counter[str] = Counter()
        uninstall = counting.install(
            statement=lambda: None,
            transaction=lambda: None,
            round_trip=lambda: seen.update(["app"]),
            broker_round_trip=lambda: seen.update(["broker"]),
        )
        try:
            server = fakeredis.FakeServer()
            broker = RedisBroker(client=fakeredis.FakeRedis(server=server))
            app = fakeredis.FakeRedis(server=server)
            app.ping()
            seen.clear()  # the app client's handshake
            broker.declare_queue("default")
            broker.enqueue(dramatiq.Message("default", "actor", (), {}, {}))
            app.get("x")
        finally:
            uninstall()
        assert seen["app"] == 1 and seen["broker"] >= 1


def _probe_env(metrics: Path) -> dict[str, str]:
    """A child's environment with the probe on its path and switched on."""
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "COST_PROBE": "1",
            "PYTHONPATH": os.pathsep.join([str(cost.PROBE), str(ROOT)])}  # fmt: skip


class TestProbe:
    def test_a_process_started_with_the_probe_counts_into_the_shared_directory(
        self, tmp_path: Path
    ) -> None:
        script = (
            "import peewee\n"
            "db = peewee.SqliteDatabase(':memory:'); db.connect()\n"
            "with db.atomic():\n"
            "    db.execute_sql('SELECT 1'); db.execute_sql('SELECT 2')\n"
        )
        env = _probe_env(tmp_path)
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
        counts = cost_account.probe_counts(tmp_path)
        assert counts["cost_sql_statements"] == {"other": 4.0}
        assert counts["cost_sql_transactions"] == {"other": 1.0}

    @pytest.mark.parametrize(("argv", "green"), [("dramatiq-gevent", True), ("dramatiq", False)])
    def test_a_gevent_worker_is_patched_before_the_probe_imports_peewee(
        self, tmp_path: Path, argv: str, green: bool
    ) -> None:
        # Imported first, peewee's per-thread connection state would be one for every
        # greenlet of the process.
        script = (
            "import sys, gevent, peewee\n"
            "state = peewee._ConnectionLocal()\n"
            "def mine(n):\n"
            "    state.n = n; gevent.sleep(0.01); return state.n\n"
            "seen = [g.get() for g in [gevent.spawn(mine, n) for n in range(3)]]\n"
            "sys.exit(0 if seen == [0, 1, 2] else 3)\n"
        )
        env = _probe_env(tmp_path)
        done = subprocess.run([sys.executable, "-c", script, argv], env=env, timeout=60)
        assert done.returncode == (0 if green else 3)

    def test_without_the_switch_the_probe_does_nothing(self, tmp_path: Path) -> None:
        env = _probe_env(tmp_path)
        env.pop("COST_PROBE")
        script = "import peewee; peewee.SqliteDatabase(':memory:').execute_sql('SELECT 1')"
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
        assert cost_account.probe_counts(tmp_path) == {}


@linux
class TestOurProcesses:
    def test_a_child_and_its_child_are_found_under_their_root(self) -> None:
        parent = subprocess.Popen(
            [sys.executable, "-c", "import subprocess, sys, time; "
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
             "time.sleep(30)"]
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while len(cost_account.descendants([parent.pid])) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            found = cost_account.descendants([parent.pid])
            assert parent.pid in found and len(found) == 2
        finally:
            for pid in cost_account.descendants([parent.pid]) - {parent.pid}:
                os.kill(pid, 9)
            parent.kill()
            parent.wait()

    def test_the_clock_has_a_role_of_its_own(self) -> None:
        assert cpu._role(-1, "python -m tasks.clock") == "clock"
        assert cpu._role(-1, "python -m dramatiq tasks.worker") == "worker"


def reading(
    per_pid: dict[int, float],
    roles: dict[int, str],
    busy: float,
    *,
    statements: float,
    stripe: int,
    webhooks: int,
) -> cost_account.Reading:
    return cost_account.Reading(
        cpu=cpu.Snapshot(per_pid, roles, busy),
        pids=set(per_pid),
        probe={"cost_sql_statements": {"worker": statements}},
        stripe_calls=stripe,
        deliveries=Counter({"payment_intent.succeeded": webhooks}),
        pg_transactions=0,
        shop=(0, 0),
    )


class TestFigures:
    def test_per_paid_order_with_the_buyers_confirms_left_out_of_stripes_calls(
        self, tmp_path: Path
    ) -> None:
        roles = {1: "web", 2: "worker", 3: "PostgreSQL", 4: "emulator"}
        before = reading({1: 1, 2: 2, 3: 1, 4: 1}, roles, 100, statements=50, stripe=7, webhooks=1)
        after = reading(
            {1: 2, 2: 5, 3: 1.5, 4: 1.5}, roles, 108, statements=450, stripe=37, webhooks=11
        )
        tally = cost_buyers.Tally(paid=10, confirms=10, answers=30)
        result = cost.figures(before, after, tally, 4.0, 10, 2, tmp_path, {})
        per = result["per_order"]
        assert per["cpu_ms"]["worker"] == pytest.approx(300)
        assert per["cpu_ms_service"] == pytest.approx(100 + 300 + 50)  # not the emulator
        assert per["cpu_ms_machine_gap"] == pytest.approx(800 - 100 - 300 - 50 - 50)
        assert per["cpu_ms_machine_less_standins"] == pytest.approx(800 - 50)
        assert per["sql_statements"] == {"worker": 40}
        assert per["stripe_calls"] == 2  # 30 requests, 10 of them the buyers' confirms
        assert per["stripe_webhooks"] == {"payment_intent.succeeded": 1}
        assert per["long_poll_answers"] == 3
        table = cost.table({**result, "window_seconds": 5.0})
        assert "the service (sum of the above)" in table and "450.0" in table
        runs = [{**result, "app_root": "/tmp/before"},
                {**result, "app_root": "/tmp/after", "worker_model": "gevent"}]  # fmt: skip
        header, line, green = cost.comparison(runs).splitlines()
        assert header.split()[:2] == ["checkout/worker", "service"]
        assert line.split()[:3] == ["before/threads", "450.0", "100.0"]
        assert green.split()[0] == "after/gevent"


class TestKernelTime:
    def test_each_roles_system_seconds_per_paid_order_and_in_the_table(
        self, tmp_path: Path
    ) -> None:
        roles = {1: "web", 2: "worker", 3: "emulator"}
        before = reading({1: 1, 2: 2, 3: 1}, roles, 100, statements=0, stripe=0, webhooks=0)
        after = reading({1: 2, 2: 5, 3: 2}, roles, 108, statements=0, stripe=0, webhooks=0)
        before.cpu.system.update({1: 0.5, 2: 1.0, 3: 0.5})
        after.cpu.system.update({1: 0.75, 2: 1.5, 3: 1.0})
        tally = cost_buyers.Tally(paid=10, confirms=10, answers=30)
        result = cost.figures(before, after, tally, 4.0, 10, 2, tmp_path, {})
        assert result["per_order"]["cpu_ms_system"] == {
            "web": pytest.approx(25),
            "worker": pytest.approx(50),
            "emulator": pytest.approx(50),
        }
        line = next(row for row in cost.table(result).splitlines() if "in the kernel" in row)
        assert "75.0   web 25.0, worker 50.0" in line and "emulator" not in line
