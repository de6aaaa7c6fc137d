"""Restocks of sold units: never more than the order bought, per SKU, whoever asks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.services import authorizations, refunds
from app.services.expiry import cancel_order
from app.services.holds import rehold_hold, restock_lines
from app.services.inventory import Inventory
from app.services.records import lock_order
from app.services.webhooks import handle_event
from models import Order, Product
from models.db import database
from tests.fakes import stock
from tests.services.test_authorizations import (
    TEE,
    available,
    capture,
    on_hand,
)


def restock(runtime: Any, order_id: str, lines: list[tuple[str, int]], reason: str) -> None:
    """What every caller does: the order row locked, then the restock, then commit."""
    with database().atomic():
        restock_lines(lock_order(order_id), runtime, lines, reason=reason, actor="admin")


class TestRestockCap:
    def test_a_second_restock_of_every_unit_adds_nothing(
        self, runtime: Any, authorized: Order
    ) -> None:
        restock(runtime, authorized.id, [("TEE", 2)], "first")
        restock(runtime, authorized.id, [("TEE", 1)], "second")
        assert on_hand() == 10 and available(runtime) == 10

    def test_duplicate_lines_count_together(self, runtime: Any, authorized: Order) -> None:
        restock(runtime, authorized.id, [("TEE", 1), ("TEE", 1), ("TEE", 1)], "dupes")
        assert on_hand() == 10 and available(runtime) == 10

    def test_a_sku_not_on_the_order_is_not_restocked(self, runtime: Any, authorized: Order) -> None:
        stock(runtime.redis, "MUG", on_hand=5, price=1000)
        restock(runtime, authorized.id, [("MUG", 1), ("TEE", 1)], "stray")
        assert on_hand() == 9 and available(runtime) == 9
        assert Product.get_by_id("MUG").stock_on_hand == 5
        assert Inventory(runtime.redis).available(["MUG"]) == {"MUG": 5}

    def test_capture_restock_then_void_gives_back_only_the_rest(
        self, runtime: Any, authorized: Order
    ) -> None:
        restock(runtime, authorized.id, [("TEE", 1)], "capture:cap_1")  # as a capture would
        cancel_order(authorized.id, runtime)
        assert Order.get_by_id(authorized.id).state == "CANCELED"
        assert on_hand() == 10 and available(runtime) == 10

    def test_capture_restock_then_full_refund_restocks_the_rest_once(
        self, runtime: Any, gateway: Any, authorized: Order
    ) -> None:
        asked = capture(runtime, authorized.id, "capture-key-01", amount=2000, restock=TEE)
        authorizations.capture_payment(authorized.id, asked.request_id, runtime)
        assert on_hand() == 9
        refund, _ = refunds.request_refund(authorized.id, idempotency_key="rf-01", restock=True)
        refunds.submit_refund(refund.id, runtime)
        (stripe_refund,) = gateway.refunds.values()
        charge = {
            "id": stripe_refund["charge"],
            "object": "charge",
            "payment_intent": authorized.payment_intent_id,
            "amount": authorized.total,
            "currency": authorized.currency,
            "amount_refunded": 2000,
            "refunds": {"data": [stripe_refund]},
        }
        for _ in range(2):  # a second delivery (new event id) changes nothing
            event = gateway.event("charge.refunded", charge)
            handle_event(event["id"], event, runtime)
        assert Order.get_by_id(authorized.id).state == "REFUNDED"
        assert on_hand() == 10 and available(runtime) == 10


class TestReturnedReservationRecord:
    """A voided or lapsed authorisation returns the confirmed units: the reservation row
    goes RELEASED and its Redis record follows in the script that restocks."""

    def status(self, runtime: Any, order: Order) -> str | None:
        return Inventory(runtime.redis).status(order.reservation_id)

    def test_a_void_releases_the_record(self, runtime: Any, authorized: Order) -> None:
        assert self.status(runtime, authorized) == "CONFIRMED"
        cancel_order(authorized.id, runtime)
        assert Order.get_by_id(authorized.id).state == "CANCELED"
        assert self.status(runtime, authorized) == "RELEASED"
        assert on_hand() == 10 and available(runtime) == 10

    def test_a_lapsed_authorisation_releases_the_record(
        self, runtime: Any, authorized: Order
    ) -> None:
        late = authorized.capture_before + timedelta(minutes=1)
        authorizations.check_authorization(authorized.id, runtime, now=late)
        assert Order.get_by_id(authorized.id).state == "CANCELED"
        assert self.status(runtime, authorized) == "RELEASED"
        assert on_hand() == 10 and available(runtime) == 10

    def test_released_even_when_every_unit_was_restocked_before(
        self, runtime: Any, authorized: Order
    ) -> None:
        restock(runtime, authorized.id, [("TEE", 2)], "capture:cap_1")  # nothing left after
        assert self.status(runtime, authorized) == "CONFIRMED"  # a restock alone: still sold
        cancel_order(authorized.id, runtime)
        assert self.status(runtime, authorized) == "RELEASED"
        assert on_hand() == 10 and available(runtime) == 10

    def test_a_late_payment_after_the_void_takes_the_units_again(
        self, runtime: Any, authorized: Order
    ) -> None:
        # Was: the record still CONFIRMED, rehold.lua answered "already sold" and took
        # nothing while the database sold the units again: Redis offered 2 units too many.
        cancel_order(authorized.id, runtime)
        assert rehold_hold(Order.get_by_id(authorized.id), runtime, actor="worker") is True
        assert on_hand() == 8 and available(runtime) == 8
