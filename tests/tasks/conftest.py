"""Fixtures for the actor tests: an admitted submission, its order, recorded expiries."""

from __future__ import annotations

from typing import Any

import pytest

from models import Order
from tasks import expiry as expiry_tasks
from tasks.checkout import create_payment_intent
from tests.fakes import admit_checkout, stock


@pytest.fixture
def submission(runtime: Any) -> Any:
    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    return admit_checkout(runtime.redis, [("TEE", 2)])


@pytest.fixture
def scheduled(monkeypatch: Any) -> list[tuple[str, Any]]:
    """Expiries the actors schedule, recorded instead of sitting 15 min in the delay queue."""
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(expiry_tasks, "schedule_expiry", lambda oid, at: calls.append((oid, at)))
    return calls


@pytest.fixture
def order(broker: Any, worker: Any, submission: Any, scheduled: list[tuple[str, Any]]) -> Order:
    """The submission's PENDING order with its intent, written by create_payment_intent."""
    create_payment_intent.send(submission.order_id)
    broker.join("default", timeout=20_000)
    return Order.get_by_id(submission.order_id)
