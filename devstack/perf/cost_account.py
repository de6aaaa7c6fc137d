"""The cost bench's account: which processes are the run's own, and every counter read at
one moment (CPU per process, the probe's counts, the emulator's logs, PostgreSQL's
transactions).

The machine is shared, so nothing is read server- or machine-wide: the run has a Redis
server of its own and a PostgreSQL database of its own (its backends found by the
database's name), and its processes are the trees the bench started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.perf import cpu, stack
from devstack.serving import free_port


def say(text: str) -> None:
    """Progress, on stderr."""
    print(f"bench: cost: {text}", file=sys.stderr, flush=True)


@dataclass
class OwnRedis:
    """A ``redis-server`` of the run's own: its CPU and commands are ours alone."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop it by pid."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_redis(var: Path) -> OwnRedis:
    """A persistence-less Redis on a free port of 127.0.0.1."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("the cost bench needs redis-server (its own, on a free port)")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(var), "--daemonize", "no"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis as redis_lib

    deadline = time.monotonic() + 15
    while True:
        try:
            redis_lib.Redis.from_url(url).ping()
            return OwnRedis(url, process)
        except redis_lib.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.1)


def descendants(roots: list[int]) -> set[int]:
    """``roots`` and every process below them (``/proc/<pid>/task/*/children``)."""
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


class Ours:
    """Which pids are the run's: the stack's process trees, its Redis, its PostgreSQL
    backends and this process (the buyers)."""

    def __init__(self, bench: stack.BenchStack, redis_pid: int, pg_admin_url: str) -> None:
        self.bench = bench
        self.redis_pid = redis_pid
        self.pg_admin_url = pg_admin_url

    def pids(self) -> set[int]:
        """The run's pids now."""
        roots = [
            c.process.pid
            for c in self.bench.sup.children
            if c.process is not None and c.name != "bare"  # the idle baseline of the wrk runs
        ]
        return descendants([*roots, self.redis_pid]) | self.backends() | {os.getpid()}

    def backends(self) -> set[int]:
        """PostgreSQL backends connected to the run's database."""
        rows = self._query(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.bench.pg_database,)
        )
        return {int(pid) for (pid,) in rows}

    def transactions(self) -> int:
        """PostgreSQL's committed + rolled back transactions in the run's database."""
        rows = self._query(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.bench.pg_database,),
        )
        return int(rows[0][0]) if rows else 0

    def shop(self) -> tuple[int, int]:
        """(shop events recorded, shop webhook delivery attempts) in the run's database."""
        rows = self._query(
            "SELECT (SELECT count(*) FROM shop_events),"
            " (SELECT COALESCE(sum(attempts), 0) FROM shop_webhook_deliveries)",
            (),
            url=self.bench.database_url,
        )
        return int(rows[0][0]), int(rows[0][1])

    def _query(
        self, sql: str, params: tuple[Any, ...], url: str | None = None
    ) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(url or self.pg_admin_url)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()


@dataclass
class Reading:
    """Every counter at one moment."""

    cpu: cpu.Snapshot
    pids: set[int]
    probe: dict[str, dict[str, float]]
    stripe_calls: int
    deliveries: Counter[str]
    pg_transactions: int
    shop: tuple[int, int]  # shop events recorded, shop webhook delivery attempts


def read(bench: stack.BenchStack, ours: Ours, metrics_dir: Path) -> Reading:
    """Take every counter now."""
    return Reading(
        cpu=cpu.snapshot(),
        pids=ours.pids(),
        probe=probe_counts(metrics_dir),
        stripe_calls=stripe_calls(bench),
        deliveries=deliveries(bench),
        pg_transactions=ours.transactions(),
        shop=ours.shop(),
    )


def probe_counts(metrics_dir: Path) -> dict[str, dict[str, float]]:
    """The probe's counters, ``{metric: {role: value}}``, merged over every process."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    counts: dict[str, dict[str, float]] = {}
    for metric in registry.collect():
        if not metric.name.startswith("cost_"):
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                # "worker", or "worker broker" for a round trip of Dramatiq's client
                role = " ".join(
                    v
                    for v in (sample.labels.get("role", "other"), sample.labels.get("client"))
                    if v and v != "app"
                )
                counts.setdefault(metric.name, {})[role] = sample.value
    return counts


def stripe_calls(bench: stack.BenchStack) -> int:
    """Every /v1 request the emulator has answered (or refused) since its last reset."""
    log = bench.emulator("requests")["seconds"]
    return sum(int(s["answered"]) + int(s["rateLimited"]) for s in log)


def deliveries(bench: stack.BenchStack) -> Counter[str]:
    """The emulator's webhook delivery attempts by event type."""
    return Counter(str(row["type"]) for row in bench.emulator("deliveries")["data"])


def wait_quiet(bench: stack.BenchStack, timeout: float = 60) -> None:
    """Until every queued message is done and no webhook delivery came for a second: the
    work the orders caused after PAID (the last webhooks, receipts) belongs to them."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        # Delayed messages (a hold's expiry, minutes away) and dead letters are not work
        # in progress: .DQ and .XQ are left out.
        pending = sum(
            bench.redis.hlen(key)
            for key in bench.redis.scan_iter("dramatiq:*.msgs")
            if not key.endswith((".DQ.msgs", ".XQ.msgs"))
        )
        delivered = len(bench.emulator("deliveries")["data"])
        if delivered != last:
            last, stable_since = delivered, time.monotonic()
        if pending == 0 and time.monotonic() - stable_since >= 1.0:
            return
        time.sleep(0.25)
    say("the stack was still busy after the run (counted as it was)")
