"""Redis failover mid-sale: the primary is SIGKILLed while buyers check out, a sentinel
promotes the replica, and every process follows it through ``REDIS_SENTINELS``.

Checked afterwards (``tests/chaos/checks.py``'s figures, all invariants at zero): every
submission answered 202 has its order and it ended PAID or in another expected state (a
202 is a promise: admission waits for the replica's acknowledgement), nothing is oversold,
and the service recovers without anyone acting: a buyer arriving after the failover
checks out and pays. Figures: docs/reliability.md, "Redis failover".
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from tests.chaos.checks import collect, settle
from tests.chaos.harness import ChaosStack, Progress
from tests.chaos.sale import Buyer, Forger, Shop, run_buyers
from tests.chaos.test_chaos import Faults
from tests.redis_topology import wait

pytestmark = [pytest.mark.failover, pytest.mark.timeout(300)]

BUYERS = 40
STOCK = 25  # fewer units than buyers: the sale sells out across the failover
KILL_AT = 3.0  # seconds into the sale
SPREAD = 8.0
PROMOTION_TIMEOUT = 30
SETTLE_SECONDS = 120  # the clock's sweeps: 60 s for a stale submission


def test_killing_the_primary_mid_sale_loses_no_admitted_submission(
    failover_stack: ChaosStack, progress: Progress
) -> None:
    stack, topology = failover_stack, failover_stack.redis_server
    sku = f"FO-{uuid.uuid4().hex[:6]}"
    stack.put_product(sku, STOCK)
    deliveries_before = len(stack.emulator_control("deliveries")["data"])
    old = topology.primary()
    promoted: dict[str, float] = {}

    def kill_primary() -> None:
        killed = time.monotonic()
        topology.crash()
        wait(lambda: topology.primary() not in (None, old), "a sentinel to promote the replica", 30)
        promoted["seconds"] = time.monotonic() - killed
        progress(
            f"  replica promoted {promoted['seconds']:.1f}s after the kill: {topology.primary()}"
        )

    buyers = [Buyer(n, sku, "pay", f"failover{n}@example.com") for n in range(BUYERS)]
    shop = Shop(stack, deadline=time.monotonic() + 150)
    faults = Faults(progress)
    faults.at(KILL_AT, f"SIGKILL the Redis primary {old[1]}", kill_primary)
    progress(f"sale: {BUYERS} buyers for {STOCK} units, primary killed at {KILL_AT:.0f}s")
    t0 = time.monotonic()
    with faults.running():
        run_buyers(shop, buyers, spread=SPREAD, threads=20, progress=progress)
    sale_seconds = time.monotonic() - t0

    admitted = {oid for b in buyers for oid in b.order_ids}
    settled = settle(stack, [sku], admitted, SETTLE_SECONDS, progress)

    # Recovery without an operator: a buyer arriving now checks out and pays.
    late_sku = f"FO-{uuid.uuid4().hex[:6]}"
    stack.put_product(late_sku, 1)
    late = Buyer(BUYERS, late_sku, "pay", "late@example.com")
    Shop(stack, deadline=time.monotonic() + 60).buy(late)
    assert late.outcome == "paid", late

    report = collect(
        stack,
        "redis failover",
        {sku: STOCK},
        buyers,
        Forger(stack),
        deliveries_before,
        extra={
            "sale seconds": round(sale_seconds, 1),
            "replica promoted after (s)": round(promoted.get("seconds", -1), 1),
            "settled after (s)": round(settled, 1),
        },
    )
    progress(report.table())
    assert promoted, "no promotion"
    assert report.violations() == {}, report.details
    # Not even explained losses: every 202 was on the replica before it was answered.
    assert not [b.n for b in buyers if b.lost_with_redis]
    outcomes = Counter(b.outcome.split(":")[0] for b in buyers)
    assert outcomes["paid"] == STOCK, outcomes  # sold out, every unit to a paying buyer
    assert set(outcomes) <= {"paid", "refused"}, outcomes
