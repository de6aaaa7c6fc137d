"""Fixtures for the actor tests: an admitted submission, its order, recorded expiries."""

from __future__ import annotations

from typing import Any

import pytest

from models import Order
from tests.fakes import admit_checkout, stock


@pytest.fixture
def submission(runtime: Any) -> Any:
    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    return admit_checkout(runtime.redis, [("TEE", 2)])


@pytest.fixture
def scheduled(runtime: Any, broker: Any, monkeypatch: Any) -> list[tuple[str, Any]]:
    """Expiries the actors schedule, recorded instead of sitting 15 min in the delay queue.

    An expiry asked for now (no ``at``) is still sent.
    """
    calls: list[tuple[str, Any]] = []
    send_now = runtime.jobs.expire_hold

    def expire_hold(order_id: str, at: Any = None) -> None:
        if at is None:
            send_now(order_id)
        else:
            calls.append((order_id, at))

    monkeypatch.setattr(runtime.jobs, "expire_hold", expire_hold)
    return calls


@pytest.fixture
def order(
    runtime: Any, broker: Any, worker: Any, submission: Any, scheduled: list[tuple[str, Any]]
) -> Order:
    """The submission's PENDING order with its intent, written by create_payment_intent."""
    runtime.jobs.create_payment_intent(submission.order_id)
    broker.join("default", timeout=20_000)
    return Order.get_by_id(submission.order_id)
