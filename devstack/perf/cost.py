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

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from devstack import demo
from devstack.perf import cpu, profile, stack
from devstack.perf.cost_account import Ours, OwnRedis, Reading, read, say, start_redis, wait_quiet
from devstack.perf.cost_buyers import Tally, buy

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "probe"
# The local server of every helper and test when DATABASE_URL is unset.
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
WARM_UP_ORDERS = 10
# A PostgreSQL backend reports its counts to pg_stat_database when it goes idle, but at
# most once a second; what it could not report then waits for its idle timer
# (PGSTAT_IDLE_INTERVAL, 10 s). PostgreSQL's transaction count is read this long after the
# stack went quiet, before and after the run (the other counters at once, so that the
# CPU window does not take in 11 s of the clock's and Dramatiq's idle polling).
STATS_LAG_SECONDS = 11.0
# Roles whose CPU is the service's (the goal's sum); the others are the bench's stand-ins.
SERVICE_ROLES = ("web", "worker", "clock", "Redis", "PostgreSQL")
# What production runs elsewhere: Stripe, the buyers' browsers, the shop's mail server.
STAND_INS = ("emulator", "buyers", "mail catcher")


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
    orders: int,
    buyers: int,
    out: Path,
    *,
    profiled: bool = False,
    database_url: str | None = None,
    app_root: Path | None = None,
    worker_model: str | None = None,
) -> dict[str, Any]:
    """Start the stack, warm it up, measure ``orders`` paid orders, stop it; the figures.
    ``app_root``: run the stack from that checkout (another branch, for a before/after
    comparison in the same conditions); the buyers, probe and account stay this one's.
    ``worker_model``: threads or gevent (``devstack.demo.worker_model``)."""
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
            "PYTHONPATH": os.pathsep.join([str(PROBE), str(app_root or ROOT)]),
            **stack.POLL_CAPS,
        }
        log = out / "cost-stack.log"
        bench = stack.start(
            redis.url, pg_url, log, extra_env=probe_env, cwd=app_root, worker_model=worker_model
        )
        try:
            result = _measure(bench, redis, orders, buyers, out, metrics_dir, profiled)
            result["worker_model"] = demo.worker_model(worker_model)
            return result
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
    window = time.monotonic() - window  # the CPU snapshot is the reading's first counter
    after = read(bench, ours, metrics_dir)
    time.sleep(STATS_LAG_SECONDS)
    after.pg_transactions = ours.transactions()
    result = figures(before, after, tally, elapsed, orders, buyers, out, written)
    result["window_seconds"] = window
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
        "cpu_ms_system": {role: 1000 * s / paid for role, s in _system_of(before, after).items()},
        "cpu_ms_machine_gap": 1000 * (spent.get("machine busy", 0.0) - counted) / paid,
        # Issue 20's own count, right on a quiet machine only: all but the stand-ins.
        "cpu_ms_machine_less_standins": 1000
        * (spent.get("machine busy", 0.0) - sum(spent.get(r, 0.0) for r in STAND_INS))
        / paid,
        "sql_statements": {role: n / paid for role, n in statements.items()},
        "sql_transactions": {role: n / paid for role, n in transactions.items()},
        "pg_transactions": (after.pg_transactions - before.pg_transactions) / paid,
        "redis_round_trips": {role: n / paid for role, n in round_trips.items()},
        "stripe_calls": stripe / paid,
        "stripe_webhooks": {kind: n / paid for kind, n in sorted(webhooks.items())},
        "shop_events": (after.shop[0] - before.shop[0]) / paid,
        "shop_webhooks": (after.shop[1] - before.shop[1]) / paid,
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
    spent = _by_role(before, after, lambda snapshot: snapshot.per_pid)
    spent["machine busy"] = after.cpu.busy - before.cpu.busy
    return spent


def _system_of(before: Reading, after: Reading) -> dict[str, float]:
    """The kernel's part (system time) of :func:`_cpu_of`'s seconds, by role."""
    return _by_role(before, after, lambda snapshot: snapshot.system)


def _by_role(
    before: Reading, after: Reading, seconds_of: Callable[[cpu.Snapshot], dict[int, float]]
) -> dict[str, float]:
    """The growth of ``seconds_of`` each snapshot, summed by role over the run's pids."""
    spent: dict[str, float] = {}
    old, new = seconds_of(before.cpu), seconds_of(after.cpu)
    for pid in before.pids | after.pids:
        if pid not in new:
            continue  # ended in between: only in the machine's total
        seconds = new[pid] - old.get(pid, 0.0)
        role = "buyers" if pid == os.getpid() else after.cpu.roles[pid]
        if seconds > 0:
            spent[role] = spent.get(role, 0.0) + seconds
    return spent


def table(result: dict[str, Any]) -> str:
    """The figures as printed by the bench."""
    per = result["per_order"]
    paid, seconds = result["paid"], result["seconds"]
    window = result.get("window_seconds", seconds)
    lines = [
        f"The cost of one paid order: {paid} paid of {result['orders']} "
        f"({result['failed']} failed{': ' + str(result['failures']) if result['failed'] else ''})"
        f" in {seconds:.1f} s, {paid / seconds:.1f}/s, {result['buyers']} buyers"
        f" (worker: {result.get('worker_model', 'threads')})",
        f"CPU from the first submit until the stack was quiet again ({window:.1f} s):",
        f"{'CPU per paid order, ms':<44}{'ms':>8}{'cores':>8}",
    ]
    cpu_ms = per["cpu_ms"]
    for role in SERVICE_ROLES:
        lines.append(_cpu_row(role, cpu_ms.get(role, 0.0), paid, window))
    lines.append(_cpu_row("the service (sum of the above)", per["cpu_ms_service"], paid, window))
    kernel = {role: per.get("cpu_ms_system", {}).get(role, 0.0) for role in SERVICE_ROLES}
    parts = ", ".join(f"{role} {ms:.1f}" for role, ms in kernel.items() if ms)
    lines.append(
        f"{'  of it in the kernel (system time)':<44}{sum(kernel.values()):>8.1f}   {parts}"
    )
    for role in sorted(set(cpu_ms) - {*SERVICE_ROLES, "machine busy"}):
        lines.append(_cpu_row(f"  beside it: {role}", cpu_ms[role], paid, window))
    lines.append(_cpu_row("the machine, busy", cpu_ms.get("machine busy", 0.0), paid, window))
    lines.append(_cpu_row("  ... not ours (gap)", per["cpu_ms_machine_gap"], paid, window))
    lines.append(
        _cpu_row(
            "  ... less the stand-ins (quiet box only)",
            per["cpu_ms_machine_less_standins"],
            paid,
            window,
        )
    )
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
        f"{'shop events recorded':<44}{per['shop_events']:>8.2f}",
        f"{'shop webhook deliveries (attempts)':<44}{per['shop_webhooks']:>8.2f}",
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


def main(
    orders: int,
    buyers: int,
    out: Path,
    *,
    profiled: bool = False,
    app_root: Path | None = None,
    worker_model: str | None = None,
) -> dict[str, Any]:
    """Run, print the table, write var/perf/cost.json and cost.txt; the figures."""
    if app_root is not None:
        say(f"the stack runs from {app_root}")
    result = run(
        orders, buyers, out, profiled=profiled, app_root=app_root, worker_model=worker_model
    )
    result["app_root"] = str(app_root or ROOT)
    report = table(result)
    print(report)
    (out / "cost.txt").write_text(report + "\n")
    (out / "cost.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def compare(
    other: Path,
    rounds: int,
    orders: int,
    buyers: int,
    out: Path,
    worker_model: str | None = None,
) -> list[dict[str, Any]]:
    """This checkout's stack and ``other``'s, alternately, ``rounds`` times each: on a
    machine whose load drifts, only runs taken side by side compare. Prints one line a
    run and writes var/perf/cost-compare.json; the runs' figures. ``worker_model`` is
    this checkout's worker's (``other``'s runs as DEVSTACK_WORKER_MODEL says, else threads):
    ``other`` may be a copy of this checkout, to compare the models alone."""
    results = []
    for n in range(rounds):
        for root in (ROOT, other):
            say(f"round {n + 1} of {rounds}: the stack of {root}")
            model = worker_model if root == ROOT else None
            result = run(orders, buyers, out, app_root=root, worker_model=model)
            result["app_root"] = str(root)
            results.append(result)
            print(comparison([result], header=not n and root == ROOT), flush=True)
    (out / "cost-compare.json").write_text(json.dumps(results, indent=2, default=str))
    return results


def comparison(results: list[dict[str, Any]], *, header: bool = True) -> str:
    """One line a run: the CPU per paid order by role and the counts."""
    lines = (
        [f"{'checkout/worker':<28}{'service':>8}{'web':>7}{'worker':>7}{'PG':>6}{'Redis':>6}"
         f"{'gap':>7}{'SQL':>7}{'xact':>6}{'Redis rt':>9}{'paid/s':>7}"]
        if header else []
    )  # fmt: skip
    for result in results:
        per = result["per_order"]
        cpu_ms = per["cpu_ms"]
        lines.append(
            f"{_label(result)[:27]:<28}{per['cpu_ms_service']:>8.1f}"
            f"{cpu_ms.get('web', 0):>7.1f}{cpu_ms.get('worker', 0):>7.1f}"
            f"{cpu_ms.get('PostgreSQL', 0):>6.1f}{cpu_ms.get('Redis', 0):>6.1f}"
            f"{per['cpu_ms_machine_gap']:>7.0f}{sum(per['sql_statements'].values()):>7.1f}"
            f"{per['pg_transactions']:>6.1f}{sum(per['redis_round_trips'].values()):>9.1f}"
            f"{result['paid'] / result['seconds']:>7.1f}"
        )
    return "\n".join(lines)


def _label(result: dict[str, Any]) -> str:
    """A run's checkout by its folder's name, and its worker's model."""
    return f"{Path(result['app_root']).name}/{result.get('worker_model', 'threads')}"
