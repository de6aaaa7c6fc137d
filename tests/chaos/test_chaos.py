"""The chaos suite: buyers check out through the real processes while faults are injected;
then the invariants are read from the database, Redis, the emulator and the mail catcher.

Every scenario runs with the emulator's chaos on (10 % 500s, 300 ms latency, its 25/s
limit, 30 % duplicated and 30 % reordered webhooks) and the forger's deliveries (5 %, all
unsigned or badly signed). ``CHAOS_SCALE=long`` (``make chaos``) runs the issue's sizes;
the default is the short version run by ``make test``. Figures: docs/reliability.md.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from tests.chaos.checks import Report, collect, settle
from tests.chaos.conftest import HOLD_TTL, LONG, REPORTS
from tests.chaos.harness import ChaosStack, Progress
from tests.chaos.sale import Buyer, Forger, Shop, run_buyers

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900 if LONG else 600)]

EMULATOR_CHAOS = {
    "failureRate": 0.10,
    "latencyMs": 300,
    "rateLimitPerSecond": 25,
    "duplicateRate": 0.30,
    "reorderRate": 0.30,
}
CALM = {
    "failureRate": 0,
    "latencyMs": 0,
    "rateLimitPerSecond": 0,
    "duplicateRate": 0,
    "reorderRate": 0,
}
# After the faults: the clock's sweeps (60 s for stale submissions), a dead worker's
# messages (redelivered within 90 s) and the last holds (HOLD_TTL) must have run.
SETTLE_SECONDS = HOLD_TTL + 150


@dataclass
class Faults:
    """Faults at chosen moments of a sale, on a thread; each one logged."""

    progress: Progress
    plan: list[tuple[float, str, Callable[[], None]]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def at(self, seconds: float, what: str, action: Callable[[], None]) -> None:
        self.plan.append((seconds, what, action))

    def _run(self, t0: float) -> None:
        for seconds, what, action in sorted(self.plan, key=lambda p: p[0]):
            time.sleep(max(0.0, t0 + seconds - time.monotonic()))
            started = time.monotonic()
            self.progress(f"  FAULT at {started - t0:5.1f}s: {what}")
            try:
                action()
            except BaseException as exc:  # reported by the test, not lost on a thread
                self.errors.append(exc)
            self.log.append(f"{started - t0:.1f}s {what} ({time.monotonic() - started:.1f}s)")

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._run, args=(time.monotonic(),), daemon=True)
        thread.start()
        yield
        thread.join(timeout=300)
        assert not self.errors, self.errors


def sale(
    stack: ChaosStack,
    progress: Progress,
    scenario: str,
    *,
    stock: int,
    buyers: int,
    spread: float,
    threads: int,
    behaviours: tuple[tuple[str, float], ...] = (("pay", 1.0),),
    faults: Faults | None = None,
) -> Report:
    """One bounded sale: buyers (and faults) under the emulator's chaos, then the sweeps,
    then the figures."""
    progress(f"{scenario}: {buyers} buyers for {stock} units over {spread:.0f}s")
    sku = f"CHAOS-{uuid.uuid4().hex[:8].upper()}"
    stack.put_product(sku, stock)
    deliveries_before = len(stack.emulator_control("deliveries")["data"])
    rng = random.Random(sku)
    names, weights = zip(*behaviours, strict=True)
    crowd = [
        Buyer(n, sku, rng.choices(names, weights)[0], f"buyer-{sku.lower()}-{n}@chaos.test")
        for n in range(buyers)
    ]
    forger = Forger(stack).start()
    stack.emulator_control("chaos", EMULATOR_CHAOS)
    first_second = int(time.time())
    t0 = time.monotonic()
    shop = Shop(stack, deadline=t0 + spread + HOLD_TTL + 120)
    try:
        with (faults or Faults(progress)).running():
            done = run_buyers(shop, crowd, spread=spread, threads=threads, progress=progress)
    finally:
        stack.emulator_control("chaos", CALM)
        forger.stop()
    sale_seconds = time.monotonic() - t0
    progress(f"  sale over in {sale_seconds:.0f}s; faults off; waiting for the sweeps")
    admitted = {oid for b in done for oid in b.order_ids}
    waited = settle(stack, [sku], admitted, SETTLE_SECONDS, progress)
    seconds = stack.emulator_control("requests")["seconds"]
    window = [s for s in seconds if s["second"] >= first_second]
    extra = {
        "faults": (faults.log if faults else []) or "emulator chaos and forgeries only",
        "Stripe API requests (emulator, 10 % answered 500)": sum(
            s["answered"] + s["rateLimited"] for s in window
        ),
        "  answered 429 (over 25/s)": sum(s["rateLimited"] for s in window),
        "  busiest second (answered + 429)": max(
            (s["answered"] + s["rateLimited"] for s in window), default=0
        ),
        "sale (s)": round(sale_seconds),
        "settled after (s)": round(waited),
    }
    report = collect(stack, scenario, {sku: stock}, done, forger, deliveries_before, extra)
    REPORTS.append(report)
    violations = report.violations()
    progress(f"  {scenario}: {'VIOLATED ' + str(violations) if violations else 'invariants hold'}")
    return report


def assert_invariants(report: Report) -> None:
    assert not report.violations(), (report.violations(), report.details)


# --- scenarios ----------------------------------------------------------------------


def test_flash_sale_500_buyers_10_units(chaos_stack: ChaosStack, progress: Progress) -> None:
    buyers = 500 if LONG else 150
    report = sale(
        chaos_stack,
        progress,
        f"{buyers} buyers / 10 units, 2 web + 2 workers",
        stock=10,
        buyers=buyers,
        spread=15 if LONG else 8,
        threads=60,
    )
    assert_invariants(report)
    f = report.figures
    assert f["orders by state"].get("PAID", 0) == 10
    assert f["units sold (CONFIRMED)"] == 10
    assert f["refused out_of_stock (409)"] == buyers - 10


def test_kill9_worker_web_clock_during_checkouts(
    chaos_stack: ChaosStack, progress: Progress
) -> None:
    stack = chaos_stack
    checkouts, spread = (200, 100.0) if LONG else (40, 25.0)
    rng = random.Random()
    faults = Faults(progress)
    rounds = 2 if LONG else 1
    for name in ("worker1", "web1", "clock", "worker2", "web2")[: 5 if LONG else 3]:
        for _ in range(rounds):
            moment = rng.uniform(0.1, 0.8) * spread

            def kill(name: str = name) -> None:
                stack.crash(name)
                time.sleep(rng.uniform(0.5, 3))
                stack.revive(name)

            faults.at(moment, f"kill -9 {name}, restarted", kill)
    report = sale(
        stack,
        progress,
        f"kill -9 worker/web/clock during {checkouts} checkouts",
        stock=checkouts,
        buyers=checkouts,
        spread=spread,
        threads=30,
        faults=faults,
        behaviours=(("pay", 0.8), ("abandon", 0.12), ("decline", 0.08)),
    )
    assert_invariants(report)
    assert report.figures["orders by state"].get("PENDING", 0) == 0  # all terminal


def test_redis_restart_with_aof_and_flush_then_rebuild(
    chaos_stack: ChaosStack, progress: Progress
) -> None:
    stack = chaos_stack
    checkouts, spread = (150, 60.0) if LONG else (40, 20.0)
    faults = Faults(progress)

    def restart() -> None:
        stack.redis_server.crash()
        time.sleep(2)
        stack.redis_server.start()

    def flush_and_rebuild() -> None:
        client = stack.redis()
        client.flushdb()
        client.close()
        progress(f"    rebuild: {stack.rebuild_inventory()}")

    faults.at(0.3 * spread, "kill -9 redis-server, restarted from its AOF", restart)
    faults.at(0.65 * spread, "FLUSHDB, then flask --app wsgi inventory rebuild", flush_and_rebuild)
    report = sale(
        stack,
        progress,
        "Redis restart (AOF) and flush + rebuild mid-sale",
        stock=checkouts * 3 // 4,
        buyers=checkouts,
        spread=spread,
        threads=30,
        faults=faults,
        behaviours=(("pay", 0.85), ("abandon", 0.15)),
    )
    assert_invariants(report)


def test_postgres_restart_mid_sale(chaos_stack: ChaosStack, progress: Progress) -> None:
    stack = chaos_stack
    checkouts, spread = (150, 60.0) if LONG else (40, 20.0)
    faults = Faults(progress)

    def restart() -> None:
        stack.postgres.stop("immediate")  # a crash: WAL recovery at the next start
        time.sleep(3)
        stack.postgres.start()

    for share in (0.3, 0.7) if LONG else (0.4,):
        faults.at(share * spread, "PostgreSQL stopped -m immediate, restarted 3 s later", restart)
    report = sale(
        stack,
        progress,
        "PostgreSQL restart mid-sale",
        stock=checkouts,
        buyers=checkouts,
        spread=spread,
        threads=30,
        faults=faults,
        behaviours=(("pay", 0.85), ("abandon", 0.15)),
    )
    assert_invariants(report)
