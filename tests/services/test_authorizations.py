"""Manual capture requests: one in flight per order, and restocks capped by what was ordered."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.errors import InvalidState, PaymentProviderError
from app.services import admin, authorizations
from app.services.inventory import Inventory
from models import Order, OrderEvent, Product

TEE = [{"sku": "TEE", "quantity": 1}]


def on_hand() -> int:
    return int(Product.get_by_id("TEE").stock_on_hand)


def available(runtime: Any) -> int:
    return int(Inventory(runtime.redis).available(["TEE"])["TEE"])


def capture(runtime: Any, order_id: str, key: str, **body: Any) -> admin.CaptureRequest:
    """``POST /api/admin/orders/<id>/capture`` as the view records it."""
    return admin.capture_order(runtime.redis, order_id, idempotency_key=key, **body)


class TestOneCaptureInFlight:
    def test_a_second_request_is_refused_while_the_first_runs(
        self, runtime: Any, authorized: Order
    ) -> None:
        assert on_hand() == 8 and available(runtime) == 8
        first = capture(runtime, authorized.id, "capture-key-01", restock=TEE)
        with pytest.raises(InvalidState, match="in flight"):
            capture(runtime, authorized.id, "capture-key-02", restock=TEE)
        # The first one still replays.
        assert capture(runtime, authorized.id, "capture-key-01", restock=TEE).replayed
        authorizations.capture_payment(authorized.id, first.request_id, runtime)
        with pytest.raises(InvalidState):
            capture(runtime, authorized.id, "capture-key-02", restock=TEE)
        assert on_hand() == 9 and available(runtime) == 9

    def test_a_fulfilment_start_waits_for_the_admins_capture(
        self, runtime: Any, authorized: Order
    ) -> None:
        capture(runtime, authorized.id, "capture-key-01")
        with pytest.raises(InvalidState, match="in flight"):
            admin.fulfil(
                authorized.id, "start", runtime=runtime, carrier=None, tracking_number=None
            )

    def test_a_refused_capture_lets_another_be_asked(
        self, runtime: Any, gateway: Any, authorized: Order
    ) -> None:
        refused = PaymentProviderError("card issuer said no", retryable=False)
        gateway.fail_next("capture_intent", refused)
        first = capture(runtime, authorized.id, "capture-key-01", restock=TEE)
        authorizations.capture_payment(authorized.id, first.request_id, runtime)
        assert Order.get_by_id(authorized.id).state == "AUTHORIZED" and on_hand() == 8
        assert "CAPTURE_FAILED" in [e.type for e in Order.get_by_id(authorized.id).events]
        second = capture(runtime, authorized.id, "capture-key-02", restock=TEE)
        authorizations.capture_payment(authorized.id, second.request_id, runtime)
        assert Order.get_by_id(authorized.id).state == "PAID"
        assert on_hand() == 9 and available(runtime) == 9

    def test_five_concurrent_captures_restock_once(
        self, runtime: Any, gateway: Any, authorized: Order
    ) -> None:
        start = threading.Barrier(5)
        accepted: list[str] = []
        refused: list[str] = []

        def ask(n: int) -> None:
            start.wait()
            try:
                result = capture(runtime, authorized.id, f"capture-key-{n:02d}", restock=TEE)
            except InvalidState:
                refused.append(str(n))
            else:
                accepted.append(result.request_id)

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(accepted) == 1 and len(refused) == 4
        # Every message that ever got queued runs (even a redelivered one twice).
        for request_id in accepted * 2:
            authorizations.capture_payment(authorized.id, request_id, runtime)
        assert [c[0] for c in gateway.calls].count("capture_intent") == 1
        assert on_hand() == 9 and available(runtime) == 9
        restocks = OrderEvent.select().where(
            (OrderEvent.order == authorized.id) & (OrderEvent.type == "STOCK_RESTOCKED")
        )
        assert restocks.count() == 1
