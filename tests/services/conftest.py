"""Fixtures for the service tests: orders written from an admitted submission."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.services.checkout import create_order_from_submission
from app.services.confirmation import place_order
from models import Order
from tests.fakes import Receiver, admit_checkout, stock


@pytest.fixture
def order(runtime: Any, request: pytest.FixtureRequest) -> Order:
    """A PENDING order for 2 TEE with its intent; a module's ``ON_HAND`` sets the stock (5)."""
    stock(runtime.redis, "TEE", on_hand=getattr(request.module, "ON_HAND", 5), price=2000)
    submission = admit_checkout(runtime.redis, [("TEE", 2)])
    created = create_order_from_submission(submission.order_id, runtime)
    assert created is not None
    return created


@pytest.fixture
def authorized(runtime: Any, gateway: Any) -> Order:
    """An AUTHORIZED order (manual capture) for 2 TEE of 10 on hand: 8 left on sale."""
    stock(runtime.redis, "TEE", on_hand=10, price=2000)
    token = gateway.confirmation_token("pm_card_visa")
    submission = admit_checkout(
        runtime.redis, [("TEE", 2)], confirmation_token=token, capture_method="manual"
    )
    placed = place_order(submission.order_id, runtime)
    assert placed.order is not None
    order = Order.get_by_id(placed.order.id)
    assert order.state == "AUTHORIZED"
    return order


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Local shop backends a test appends (``Receiver`` on 127.0.0.1), closed afterwards."""
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()
