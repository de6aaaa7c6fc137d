"""The cost of one paid order (issue 20's acceptance measurement).

``python -m devstack.perf --only cost`` (and a step of ``make bench``): ``--orders`` orders
(default 200), each submitted (``POST /api/checkout/payment-intent``), confirmed with a
test card at the emulator as Stripe.js does (``POST /v1/payment_intents/{id}/confirm``
with the publishable key and the client secret), and waited on until PAID through the
checkout status long-poll, as a shop's page does. The buyers are ``--buyers`` threads
(default 20), each on keep-alive ``http.client`` connections (``flash_sale``'s reasons).

The stack is the Procfile's (gunicorn gevent x 2, Dramatiq 2 processes x 16 threads, the
clock), on a PostgreSQL database of its own (``DATABASE_URL``'s server, else the local
one) and a Redis server of its own (``redis-server`` on a free port): the machine is
shared, so every figure is taken from our processes only, never server-wide.

Per paid order it reports:

- CPU by role, from ``/proc`` (``perf.cpu``): web, worker, clock, Redis (its own
  server), PostgreSQL (the backends connected to the run's database), their sum — the
  service — and beside it the emulator, the mail catcher and the buyers, and the gap to
  the machine's busy time (other processes: on a shared box, other people's work);
- SQL statements and transactions, counted in our processes by a probe
  (``devstack/perf/probe/sitecustomize.py``: peewee's ``execute_sql`` and every BEGIN,
  COMMIT, ROLLBACK), with PostgreSQL's own transaction count (``pg_stat_database``) beside;
- Redis round trips our processes sent (the probe: one ``send_packed_command`` each);
- Stripe calls (the emulator's request log, the buyers' confirms left out), Stripe
  webhook deliveries by type (the emulator's delivery log), shop webhook deliveries (none
  unless ``SHOP_WEBHOOK_URLS`` is configured), long-poll answers (the buyers' count).

Progress goes to stderr, the table to stdout and ``var/perf/cost.txt``, the figures to
``var/perf/cost.json``, and py-spy's samples of one worker process and one gunicorn
worker to ``var/perf/cost-{worker,web}.collapsed``.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse, urlsplit

from devstack.perf import cpu, profile, stack
from devstack.perf.flash_sale import BODY_ADDRESS
from devstack.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "probe"
# The local server of every helper and test when DATABASE_URL is unset.
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
PUBLISHABLE_KEY = "pk_test_emulator"
ORDER_TIMEOUT_SECONDS = 120
WARM_UP_ORDERS = 10
# A PostgreSQL backend reports its counts to pg_stat_database at most once a second
# (PGSTAT_MIN_INTERVAL), when it next goes idle: both readings wait this long after the
# stack went quiet.
STATS_LAG_SECONDS = 2.0
# Roles whose CPU is the service's (the goal's sum); the others are the bench's stand-ins.
SERVICE_ROLES = ("web", "worker", "clock", "Redis", "PostgreSQL")


def say(text: str) -> None:
    """Progress, on stderr."""
    print(f"bench: cost: {text}", file=sys.stderr, flush=True)


@dataclass
class Tally:
    """What the buyers saw, shared by their threads."""

    paid: int = 0
    failed: int = 0
    confirms: int = 0
    answers: int = 0  # long-poll answers (200s of the status URL)
    failures: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        """Add to the counters, under the lock."""
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def fail(self, why: str) -> None:
        """One order that did not reach PAID, and why."""
        with self.lock:
            self.failed += 1
            self.failures[why] += 1


class Buyer:
    """One buyer thread's keep-alive connections: the shop's web and Stripe (emulator)."""

    def __init__(self, web_url: str, stripe_url: str) -> None:
        web, api = urlsplit(web_url), urlsplit(stripe_url)
        self.web = http.client.HTTPConnection(web.hostname or "127.0.0.1", web.port, timeout=60)
        self.stripe = http.client.HTTPConnection(api.hostname or "127.0.0.1", api.port, timeout=60)

    def close(self) -> None:
        """Close both connections."""
        self.web.close()
        self.stripe.close()

    def order(self, sku: str, tally: Tally) -> None:
        """Submit, wait for the client secret, confirm with a test card, wait for PAID."""
        started = time.monotonic()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"cost-{uuid.uuid4()}"}
        body = {"items": [{"sku": sku, "quantity": 1}], "email": "cost@example.com",
                "shippingAddress": BODY_ADDRESS}  # fmt: skip
        status, submitted = _call(self.web, "POST", "/api/checkout/payment-intent", headers,
                                  json.dumps(body))  # fmt: skip
        if status != 202:
            return tally.fail(f"submit {status}")
        token = {"X-Checkout-Token": submitted["checkoutToken"]}
        waiting = self._wait(submitted["statusUrl"], token, started, tally, _has_secret)
        if waiting is None:
            return tally.fail("no client secret")
        secret = waiting["payment"]["clientSecret"]
        intent = secret.split("_secret_")[0]
        form = urlencode({"payment_method": "pm_card_visa", "client_secret": secret,
                          "use_stripe_sdk": "true"})  # fmt: skip
        status, _ = _call(
            self.stripe, "POST", f"/v1/payment_intents/{intent}/confirm",
            {"Authorization": f"Bearer {PUBLISHABLE_KEY}",
             "Content-Type": "application/x-www-form-urlencoded"}, form,
        )  # fmt: skip
        tally.add(confirms=1)
        if status != 200:
            return tally.fail(f"confirm {status}")
        paid = self._wait(
            submitted["statusUrl"], token, started, tally, lambda s: s["state"] == "PAID",
            since=waiting["version"],
        )  # fmt: skip
        if paid is None:
            return tally.fail("not PAID")
        tally.add(paid=1)
        return None

    def _wait(
        self,
        status_url: str,
        token: dict[str, str],
        started: float,
        tally: Tally,
        done: Any,
        since: int = 0,
    ) -> dict[str, Any] | None:
        """Long-poll until ``done(status)``; None on an error or a timeout."""
        while time.monotonic() - started < ORDER_TIMEOUT_SECONDS:
            query = urlencode({"wait": 20, "since": since})
            status, body = _call(self.web, "GET", f"{status_url}?{query}", token)
            if status != 200:
                return None
            tally.add(answers=1)
            if done(body):
                return dict(body)
            if body.get("error") or body["state"] in ("FAILED", "CANCELLED", "EXPIRED"):
                return None
            since = body["version"]
        return None


def _has_secret(status: dict[str, Any]) -> bool:
    return bool(status["payment"].get("clientSecret"))


def _call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
) -> tuple[int, Any]:
    """One request on a keep-alive connection: (status, the JSON body)."""
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def buy(bench: stack.BenchStack, sku: str, orders: int, buyers: int) -> Tally:
    """``orders`` orders by ``buyers`` threads, each order from submit to PAID."""
    tally = Tally()
    queue = iter(range(orders))
    lock = threading.Lock()

    def one_buyer() -> None:
        buyer = Buyer(bench.web_url, bench.plan.emulator_url)
        try:
            while True:
                with lock:
                    if next(queue, None) is None:
                        return
                try:
                    buyer.order(sku, tally)
                except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                    tally.fail(exc.__class__.__name__)
                    buyer.close()
                    buyer = Buyer(bench.web_url, bench.plan.emulator_url)
        finally:
            buyer.close()

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        for running in [pool.submit(one_buyer) for _ in range(buyers)]:
            running.result()
    return tally


# --- the stack's own Redis server and the processes that are ours ----------------------


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

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(self.pg_admin_url)
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


def read(bench: stack.BenchStack, ours: Ours, metrics_dir: Path) -> Reading:
    """Take every counter now."""
    return Reading(
        cpu=cpu.snapshot(),
        pids=ours.pids(),
        probe=probe_counts(metrics_dir),
        stripe_calls=stripe_calls(bench),
        deliveries=deliveries(bench),
        pg_transactions=ours.transactions(),
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
                role = sample.labels.get("role", "other")
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


# --- py-spy ----------------------------------------------------------------------------


class Profiler:
    """py-spy on one process until stopped; collapsed stacks into ``output``.

    Only samples of the thread holding the GIL (``--gil``): a worker process has 16
    threads mostly waiting (on a socket, a lock, ``time.sleep`` in the consumer), and on a
    loaded machine py-spy counts a waiting thread as active more often than not; the
    thread that holds the GIL is the one spending the process's Python CPU. py-spy pauses
    the process for each sample (100 a second), which costs it a little CPU: a profiled
    run's CPU figures are not the acceptance figures (``--profile`` is off by default).
    """

    def __init__(self, pid: int, output: Path) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        if Path(spy).exists():
            argv = [spy, "record", "--pid", str(pid), "--duration", "3600", "--rate", "100",
                    "--format", "raw", "--gil", "--output", str(output)]  # fmt: skip
            self.process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    def stop(self) -> bool:
        """Stop sampling (SIGINT: py-spy writes what it has); True when written."""
        if self.process is None:
            return False
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.output.exists() and self.output.stat().st_size > 0


# --- the run ---------------------------------------------------------------------------


def run(
    orders: int, buyers: int, out: Path, *, profiled: bool = False, database_url: str | None = None
) -> dict[str, Any]:
    """Start the stack, warm it up, measure ``orders`` paid orders, stop it; the figures."""
    pg_url = database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not urlparse(pg_url).scheme.startswith("postgres"):
        raise SystemExit("the cost bench runs on PostgreSQL: set DATABASE_URL to a server")
    var = Path(tempfile.mkdtemp(prefix="checkout-cost-"))
    metrics_dir = var / "metrics"
    metrics_dir.mkdir()
    say(f"starting a Redis server of the run's own and the stack (log: {out / 'cost-stack.log'})")
    redis = start_redis(var)
    try:
        probe_env = {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "COST_PROBE": "1",
            "PYTHONPATH": os.pathsep.join([str(PROBE), str(ROOT)]),
            **stack.POLL_CAPS,
        }
        bench = stack.start(redis.url, pg_url, out / "cost-stack.log", extra_env=probe_env)
        try:
            return _measure(bench, redis, orders, buyers, out, metrics_dir, profiled)
        finally:
            bench.close()
    finally:
        redis.stop()
        shutil.rmtree(var, ignore_errors=True)


def _measure(
    bench: stack.BenchStack,
    redis: OwnRedis,
    orders: int,
    buyers: int,
    out: Path,
    metrics_dir: Path,
    profiled: bool,
) -> dict[str, Any]:
    if bench.pg_database is None or bench.pg_admin_url is None:
        raise SystemExit("the cost bench needs PostgreSQL (DATABASE_URL)")
    bench.start_worker()
    bench.sup.start("clock", [sys.executable, "-m", "tasks.clock"], bench.env)
    sku = f"COST-{uuid.uuid4().hex[:8].upper()}"
    bench.put_product(sku, orders + WARM_UP_ORDERS + 10)
    say(f"warming up: {WARM_UP_ORDERS} orders")
    warm = buy(bench, sku, WARM_UP_ORDERS, min(buyers, WARM_UP_ORDERS))
    if warm.paid != WARM_UP_ORDERS:
        raise SystemExit(f"warm-up orders failed: {dict(warm.failures)}")
    wait_quiet(bench)
    time.sleep(STATS_LAG_SECONDS)
    ours = Ours(bench, redis.process.pid, bench.pg_admin_url)
    before = read(bench, ours, metrics_dir)
    window = time.monotonic()
    profilers = _start_profilers(bench, out) if profiled else {}
    say(f"{orders} orders, {buyers} buyers: submit, confirm at the emulator, wait for PAID")
    started = time.monotonic()
    tally = buy(bench, sku, orders, buyers)
    elapsed = time.monotonic() - started
    say(f"{tally.paid} paid in {elapsed:.1f} s ({tally.paid / elapsed:.1f}/s); settling")
    wait_quiet(bench)
    written = {name: spy.stop() for name, spy in profilers.items()}
    time.sleep(STATS_LAG_SECONDS)
    after = read(bench, ours, metrics_dir)
    result = figures(before, after, tally, elapsed, orders, buyers, out, written)
    result["window_seconds"] = time.monotonic() - window
    return result


def _start_profilers(bench: stack.BenchStack, out: Path) -> dict[str, Profiler]:
    """py-spy on the first worker process and the first gunicorn worker."""
    spies = {}
    for name, child in (("worker", bench.worker), ("web", bench.web)):
        if child is not None and child.process is not None:
            kids = profile.workers_of(child.process.pid)
            if kids:
                spies[name] = Profiler(kids[0], out / f"cost-{name}.collapsed")
    return spies


def figures(
    before: Reading,
    after: Reading,
    tally: Tally,
    elapsed: float,
    orders: int,
    buyers: int,
    out: Path,
    profiled: dict[str, bool],
) -> dict[str, Any]:
    """Per paid order: CPU by role, counts; and the run's totals."""
    paid = max(tally.paid, 1)
    spent = _cpu_of(before, after)
    service = sum(spent.get(role, 0.0) for role in SERVICE_ROLES)
    counted = sum(seconds for role, seconds in spent.items() if role != "machine busy")

    def delta(metric: str) -> dict[str, float]:
        new, old = after.probe.get(metric, {}), before.probe.get(metric, {})
        return {
            role: new[role] - old.get(role, 0.0) for role in new if new[role] > old.get(role, 0)
        }

    statements, transactions = delta("cost_sql_statements"), delta("cost_sql_transactions")
    round_trips = delta("cost_redis_round_trips")
    webhooks = after.deliveries - before.deliveries
    stripe = after.stripe_calls - before.stripe_calls - tally.confirms
    per = {
        "cpu_ms": {role: 1000 * s / paid for role, s in spent.items()},
        "cpu_ms_service": 1000 * service / paid,
        "cpu_ms_machine_gap": 1000 * (spent.get("machine busy", 0.0) - counted) / paid,
        "sql_statements": {role: n / paid for role, n in statements.items()},
        "sql_transactions": {role: n / paid for role, n in transactions.items()},
        "pg_transactions": (after.pg_transactions - before.pg_transactions) / paid,
        "redis_round_trips": {role: n / paid for role, n in round_trips.items()},
        "stripe_calls": stripe / paid,
        "stripe_webhooks": {kind: n / paid for kind, n in sorted(webhooks.items())},
        "shop_webhooks": 0.0,
        "long_poll_answers": tally.answers / paid,
    }
    result: dict[str, Any] = {
        "orders": orders,
        "buyers": buyers,
        "paid": tally.paid,
        "failed": tally.failed,
        "failures": dict(tally.failures),
        "seconds": elapsed,
        "cores": cpu.cores(),
        "cpu_seconds": spent,
        "per_order": per,
        "profiles": {},
    }
    for name, ok in profiled.items():
        if ok:
            collapsed = out / f"cost-{name}.collapsed"
            result["profiles"][name] = profile.summarize(collapsed, top=10)
    return result


def _cpu_of(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds by role of the run's own processes, and the machine's busy seconds."""
    pids = before.pids | after.pids
    spent: dict[str, float] = {}
    for pid in pids:
        if pid not in after.cpu.per_pid:
            continue  # ended in between: only in the machine's total
        seconds = after.cpu.per_pid[pid] - before.cpu.per_pid.get(pid, 0.0)
        role = "buyers" if pid == os.getpid() else after.cpu.roles[pid]
        if seconds > 0:
            spent[role] = spent.get(role, 0.0) + seconds
    spent["machine busy"] = after.cpu.busy - before.cpu.busy
    return spent


def table(result: dict[str, Any]) -> str:
    """The figures as printed by the bench."""
    per = result["per_order"]
    paid, seconds = result["paid"], result["seconds"]
    window = result.get("window_seconds", seconds)
    lines = [
        f"The cost of one paid order: {paid} paid of {result['orders']} "
        f"({result['failed']} failed{': ' + str(result['failures']) if result['failed'] else ''})"
        f" in {seconds:.1f} s, {paid / seconds:.1f}/s, {result['buyers']} buyers",
        f"CPU from the first submit until the stack was quiet again ({window:.1f} s):",
        f"{'CPU per paid order, ms':<44}{'ms':>8}{'cores':>8}",
    ]
    cpu_ms = per["cpu_ms"]
    for role in SERVICE_ROLES:
        lines.append(_cpu_row(role, cpu_ms.get(role, 0.0), paid, window))
    lines.append(_cpu_row("the service (sum of the above)", per["cpu_ms_service"], paid, window))
    for role in sorted(set(cpu_ms) - {*SERVICE_ROLES, "machine busy"}):
        lines.append(_cpu_row(f"  beside it: {role}", cpu_ms[role], paid, window))
    lines.append(_cpu_row("the machine, busy", cpu_ms.get("machine busy", 0.0), paid, window))
    lines.append(_cpu_row("  ... not ours (gap)", per["cpu_ms_machine_gap"], paid, window))
    lines += ["", f"{'per paid order':<44}{'count':>8}   by role / type"]
    for label, key in (
        ("SQL statements (incl. BEGIN/COMMIT)", "sql_statements"),
        ("transactions begun (peewee)", "sql_transactions"),
        ("Redis round trips", "redis_round_trips"),
        ("Stripe webhook deliveries", "stripe_webhooks"),
    ):
        split = per[key]
        parts = ", ".join(f"{name} {value:.2f}" for name, value in split.items())
        lines.append(f"{label:<44}{sum(split.values()):>8.2f}   {parts}")
    lines += [
        f"{'transactions (PostgreSQL, pg_stat_database)':<44}{per['pg_transactions']:>8.2f}",
        f"{'Stripe calls (the buyers confirms left out)':<44}{per['stripe_calls']:>8.2f}",
        f"{'shop webhook deliveries (no endpoint set)':<44}{per['shop_webhooks']:>8.2f}",
        f"{'long-poll answers':<44}{per['long_poll_answers']:>8.2f}",
    ]
    for name, rows in result["profiles"].items():
        lines += ["", f"py-spy, one {name} process during the run (self time, busy samples):",
                  f"{'function':<78}{'self %':>8}{'incl %':>8}"]  # fmt: skip
        lines += [f"{fn[:78]:<78}{own:>8.1f}{incl:>8.1f}" for fn, own, incl in rows]
    return "\n".join(lines)


def _cpu_row(label: str, ms: float, paid: int, seconds: float) -> str:
    cores = ms * paid / 1000 / seconds if seconds else 0.0
    return f"{label:<44}{ms:>8.1f}{cores:>8.2f}"


def main(orders: int, buyers: int, out: Path, *, profiled: bool = False) -> dict[str, Any]:
    """Run, print the table, write var/perf/cost.json and cost.txt; the figures."""
    result = run(orders, buyers, out, profiled=profiled)
    report = table(result)
    print(report)
    (out / "cost.txt").write_text(report + "\n")
    (out / "cost.json").write_text(json.dumps(result, indent=2, default=str))
    return result
