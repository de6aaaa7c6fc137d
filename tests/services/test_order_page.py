"""app/services/order_page.py: the actions each state allows, and the live version."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import NotFound
from app.services import order_page
from app.services.order_page import (
    CANCEL,
    CAPTURE,
    MARK_FULFILLED,
    REFUND,
    START_FULFILMENT,
    allowed_actions,
)
from app.services.state_machine import record_event
from tests.models.test_constraints import make_order


class TestAllowedActions:
    @pytest.mark.parametrize(
        ("state", "refundable", "expected"),
        [
            ("PENDING", 0, {CANCEL}),
            ("AUTHORIZED", 0, {CAPTURE, CANCEL, START_FULFILMENT}),
            ("PAID", 100, {REFUND, START_FULFILMENT}),
            ("PAID", 0, {START_FULFILMENT}),  # refunds in flight cover it all
            ("FULFILLING", 100, {REFUND, MARK_FULFILLED}),
            ("FULFILLED", 100, {REFUND}),
            ("REFUNDED", 0, set()),
            ("CANCELED", 0, set()),
            ("FAILED", 0, set()),
        ],
    )
    def test_by_state(self, state: str, refundable: int, expected: set[str]) -> None:
        assert allowed_actions(state, refundable) == expected


@pytest.mark.usefixtures("db")
class TestVersion:
    def test_changes_with_a_new_event_only(self) -> None:
        order = make_order()
        first = order_page.order_version(order.id)
        assert order_page.order_version(order.id) == first
        record_event(order, "MAIL_QUEUED", {})
        assert order_page.order_version(order.id) != first

    def test_unknown_order(self, runtime: Any) -> None:
        with pytest.raises(NotFound):
            order_page.order_page("x" * 100)
        with pytest.raises(NotFound):
            order_page.order_version("nope")
