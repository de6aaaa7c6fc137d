"""The order state machine: every legal transition, every illegal one refused (I4)."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest

from app.errors import InvalidState
from app.services.state_machine import (
    STATES,
    TERMINAL,
    TRANSITIONS,
    can_transition,
    record_event,
    transition,
)
from models import Order, OrderEvent, ShopEvent
from tests.models.test_constraints import make_order

LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
ILLEGAL = [(a, b) for a, b in product(STATES, STATES) if b not in TRANSITIONS[a]]


def order_in(state: str) -> Order:
    order = make_order()
    Order.update(state=state).where(Order.id == order.id).execute()
    return Order.get_by_id(order.id)


class TestTable:
    def test_matches_the_design(self) -> None:
        assert set(LEGAL) == {
            ("PENDING", "PAID"),
            ("PENDING", "AUTHORIZED"),
            ("AUTHORIZED", "PAID"),
            ("AUTHORIZED", "CANCELED"),
            ("PENDING", "FAILED"),
            ("PENDING", "CANCELED"),
            ("PAID", "FULFILLING"),
            ("PAID", "REFUNDED"),
            ("FULFILLING", "FULFILLED"),
            ("FULFILLING", "REFUNDED"),
            ("FULFILLED", "REFUNDED"),
        }
        assert {"FAILED", "CANCELED", "REFUNDED"} == TERMINAL


@pytest.mark.usefixtures("db")
class TestTransition:
    @pytest.mark.parametrize(("source", "target"), LEGAL)
    def test_legal_transition_changes_state_and_appends_event(
        self, source: str, target: str
    ) -> None:
        order = order_in(source)
        transition(order, target, "because", actor="tester")
        stored = Order.get_by_id(order.id)
        assert stored.state == target
        events = list(stored.events)
        assert [e.type for e in events] == ["STATE_CHANGED"]
        assert events[0].payload == {"from": source, "to": target, "reason": "because"}
        assert events[0].actor == "tester"

    @pytest.mark.parametrize(("source", "target"), ILLEGAL)
    def test_illegal_transition_is_refused_and_changes_nothing(
        self, source: str, target: str
    ) -> None:
        order = order_in(source)
        assert not can_transition(source, target)
        with pytest.raises(InvalidState) as info:
            transition(order, target, "nope")
        assert info.value.code == "invalid_state"
        stored = Order.get_by_id(order.id)
        assert stored.state == source
        assert list(stored.events) == []

    def test_stale_copy_is_refused(self) -> None:
        order = order_in("PENDING")
        stale = Order.get_by_id(order.id)
        transition(order, "PAID", "paid")
        with pytest.raises(InvalidState):
            transition(stale, "CANCELED", "late cancel")
        assert Order.get_by_id(order.id).state == "PAID"

    def test_columns_and_events_go_with_the_change(self) -> None:
        """``changes``: written with the state (and kept on the instance); ``events``:
        recorded just before STATE_CHANGED; the shop's event sees both."""
        order = order_in("PENDING")
        transition(
            order,
            "PAID",
            "paid",
            changes={Order.payment_status: "succeeded", Order.amount_captured: 1234},
            events=[("PAYMENT_SUCCEEDED", {"intentId": "pi_1"})],
        )
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.payment_status, stored.amount_captured) == (
            "PAID",
            "succeeded",
            1234,
        )
        assert (order.payment_status, order.amount_captured) == ("succeeded", 1234)
        assert [e.type for e in stored.events.order_by(OrderEvent.id)] == [
            "PAYMENT_SUCCEEDED",
            "STATE_CHANGED",
        ]
        body = ShopEvent.get(ShopEvent.order == order.id).body["data"]["order"]
        assert body["paymentStatus"] == "succeeded"
        assert [e["type"] for e in body["events"]] == ["PAYMENT_SUCCEEDED", "STATE_CHANGED"]

    def test_a_stale_copy_writes_none_of_its_columns(self) -> None:
        order = order_in("PENDING")
        stale = Order.get_by_id(order.id)
        transition(order, "CANCELED", "canceled")
        with pytest.raises(InvalidState):
            transition(stale, "PAID", "paid", changes={Order.amount_captured: 1234})
        assert Order.get_by_id(order.id).amount_captured is None

    def test_a_chain_leaves_one_event_per_step_in_order(self) -> None:
        order = order_in("PENDING")
        for target in ("PAID", "FULFILLING", "FULFILLED", "REFUNDED"):
            transition(order, target, "step")
        trail = [(e.payload["from"], e.payload["to"]) for e in order.events]
        assert trail == [
            ("PENDING", "PAID"),
            ("PAID", "FULFILLING"),
            ("FULFILLING", "FULFILLED"),
            ("FULFILLED", "REFUNDED"),
        ]


@pytest.mark.usefixtures("db")
class TestRecordEvent:
    def test_appends_typed_events(self, db: Any) -> None:
        order = order_in("PENDING")
        record_event(order, "ORDER_CREATED", {"total": 1000})
        record_event(order, "STOCK_HELD", {"reservationId": "r"})
        assert [(e.type, e.payload) for e in order.events] == [
            ("ORDER_CREATED", {"total": 1000}),
            ("STOCK_HELD", {"reservationId": "r"}),
        ]

    def test_unknown_type_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError):
            record_event(order_in("PENDING"), "SOMETHING_ELSE", {})

    def test_a_persons_action_names_them_in_the_payload(self) -> None:
        order = order_in("PENDING")
        record_event(order, "REFUND_REQUESTED", {"amount": 5}, "operator:ops@shop.example")
        record_event(order, "STOCK_HELD", {"reservationId": "r"}, "worker")
        long_name = "operator:" + "x" * 80 + "@shop.example"
        record_event(order, "MAIL_QUEUED", None, long_name)
        first, second, third = order.events
        assert first.payload == {"amount": 5, "actor": "operator:ops@shop.example"}
        assert second.payload == {"reservationId": "r"}  # a process is not named there
        assert third.payload == {"actor": long_name} and third.actor == long_name[:64]
