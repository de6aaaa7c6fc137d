"""The whole order lifecycle as one stateful property test (issue 15).

Every operation a buyer, an operator, Stripe and the clock can do, in any order, with
the invariants I1-I11 checked after each step (``lifecycle_model.LifecycleMachine``).
Two profiles: fakeredis + SQLite (``make test``: :data:`DEFAULT` examples x steps), and
the real Redis + PostgreSQL (markers ``realredis``, ``postgres``; fewer examples).
The rules that reached the probe's defects run too (``KNOWN_DEFECTS``, all fixed), and
each defect's shortest run is a regression test of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.services import lifecycle_model
from tests.services.lifecycle_model import LifecycleMachine, World, check_settled

# Reproducible (derandomize: the same examples on every run and machine).
DEFAULT = settings(
    max_examples=25,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
REAL_SERVERS = settings(DEFAULT, max_examples=12, stateful_step_count=40)


def run(make_world: Callable[[], World], profile: settings) -> None:
    """Run the machine under ``profile``; print how many examples and steps ran."""
    machine = type("Lifecycle", (LifecycleMachine,), {"make_world": staticmethod(make_world)})
    run_state_machine_as_test(machine, settings=profile)
    print(f"lifecycle model: {machine.examples_run} examples, {machine.steps_run} steps")


class TestLifecycleModel:
    def test_fakeredis_and_sqlite(self, lifecycle_worlds: Any) -> None:
        run(lifecycle_worlds.fake, DEFAULT)

    @pytest.mark.realredis
    @pytest.mark.postgres
    def test_real_redis_and_postgresql(self, lifecycle_worlds: Any) -> None:
        run(lifecycle_worlds.real, REAL_SERVERS)


def visa_order(machine: LifecycleMachine, *, manual: bool) -> None:
    """One TEE paid (or authorised) with a visa ConfirmationToken, the worker run at once."""
    machine.submit(tee=1, mug=0, manual=manual, token="pm_card_visa", worker_now=True)


def known_defect(machine: LifecycleMachine, defect: str) -> None:
    """The shortest run of the machine's own rules that reaches ``defect``."""
    if defect == "refund_fails":
        visa_order(machine, manual=False)
        machine.refund(index=0, part=None, restock=True, worker_now=True)
        machine.refund_fails(index=0)
    elif defect == "foreign_refund":
        visa_order(machine, manual=False)
        visa_order(machine, manual=False)
        machine.refund(index=0, part=500, restock=False, worker_now=True)
        machine.drain()
        machine.foreign_refund_event(index=0, other=1)
    elif defect == "capture_restock":
        visa_order(machine, manual=True)
        machine.capture(index=0, partial=False, restock=True, requests=2, worker_now=True)
    elif defect == "catalog_replay":
        machine.catalog_sync(sku="TEE", on_hand=2)
        visa_order(machine, manual=False)
        machine.catalog_replay(sku="TEE")
    machine.drain()
    machine.contract_holds()
    check_settled(machine)


@pytest.mark.parametrize("defect", sorted(lifecycle_model.KNOWN_DEFECTS))
def test_known_defect_shortest_run(defect: str, lifecycle_worlds: Any) -> None:
    """Each probe defect's shortest run of the machine's rules keeps every invariant (each
    broke one before its fix: the failed refund, the foreign refund event, the repeated
    capture restock, the replayed catalog sync)."""
    machine = type("Lifecycle", (LifecycleMachine,), {"make_world": lifecycle_worlds.fake})()
    try:
        machine.catalog(tee=5, mug=1)
        known_defect(machine, defect)
    finally:
        machine.world.close()
