"""Authorise now, capture at shipping (CAPTURE_METHOD=manual) over real processes and
the emulator: fulfilment start captures, partial capture with restock, void on cancel,
an authorisation that lapses uncaptured — every step audited."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Stack
from tests.e2e.test_server_confirmation import submit, token, types

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


@pytest.fixture(scope="module")
def stack(launch_stack: Any) -> Stack:
    return launch_stack(web_workers=2, env={"CAPTURE_METHOD": "manual"})


def admin(stack: Stack, order_id: str, action: str, body: dict[str, Any]) -> requests.Response:
    return stack.session.post(
        f"{stack.web}/api/admin/orders/{order_id}/{action}",
        json=body,
        headers={
            "Authorization": f"Bearer {stack.admin_token}",
            "Idempotency-Key": f"e2e-{uuid.uuid4()}",
        },
        timeout=30,
    )


def authorized(stack: Stack, sku: str) -> dict[str, Any]:
    """One unit of ``sku`` (5 in stock) paid by card: AUTHORIZED, not captured."""
    stack.put_product(sku, stock=5, price=1000)
    submitted = submit(stack, sku, token(stack, "pm_card_visa"))
    status = stack.wait_for(submitted, lambda s: s["state"] == "AUTHORIZED")
    assert status["payment"]["captureMethod"] == "manual"
    assert status["payment"]["status"] == "requires_capture"
    assert stack.available(sku) == 4  # confirmed at authorisation
    return submitted


class TestManualCapture:
    def test_fulfilment_start_captures_then_fulfils(self, stack: Stack, sku: str) -> None:
        submitted = authorized(stack, sku)
        response = admin(stack, submitted["orderId"], "fulfillment", {"action": "start"})
        assert response.status_code == 202, response.text
        stack.wait_for(submitted, lambda s: stack.order(submitted)["state"] == "FULFILLING")
        order = stack.order(submitted)
        assert order["amountCaptured"] == order["totals"]["total"]
        seen = types(stack, submitted)
        for earlier, later in [
            ("PAYMENT_AUTHORIZED", "CAPTURE_REQUESTED"),
            ("CAPTURE_REQUESTED", "PAYMENT_CAPTURED"),
            ("PAYMENT_CAPTURED", "FULFILLMENT_STARTED"),
        ]:
            assert seen.index(earlier) < seen.index(later), seen
        intent = stack.stripe.v1.payment_intents.retrieve(order["paymentIntentId"])
        assert intent.status == "succeeded"

    def test_partial_capture_with_restock(self, stack: Stack, sku: str) -> None:
        submitted = authorized(stack, sku)
        body = {"amount": 500, "restock": [{"sku": sku, "quantity": 1}]}
        response = admin(stack, submitted["orderId"], "capture", body)
        assert response.status_code == 202, response.text
        stack.wait_for(submitted, lambda s: stack.order(submitted)["state"] == "PAID")
        order = stack.order(submitted)
        assert order["amountCaptured"] == 500
        intent = stack.stripe.v1.payment_intents.retrieve(order["paymentIntentId"])
        assert intent.amount_received == 500
        assert stack.available(sku) == 5
        assert "STOCK_RESTOCKED" in types(stack, submitted)
        again = admin(stack, submitted["orderId"], "capture", {})
        assert again.status_code == 409

    def test_cancel_voids_the_authorisation(self, stack: Stack, sku: str) -> None:
        submitted = authorized(stack, sku)
        response = admin(stack, submitted["orderId"], "cancel", {})
        assert response.status_code == 202, response.text
        stack.wait_for(submitted, lambda s: s["state"] == "CANCELED")
        assert stack.available(sku) == 5
        assert "AUTHORIZATION_VOIDED" in types(stack, submitted)

    def test_lapsed_authorisation_cancels_and_releases(self, stack: Stack, sku: str) -> None:
        submitted = authorized(stack, sku)
        intent_id = stack.status(submitted)["payment"]["intentId"]
        stack.emulator_control(f"payment_intents/{intent_id}/expire_authorization", {})
        stack.wait_for(submitted, lambda s: s["state"] == "CANCELED")
        assert stack.available(sku) == 5
        assert "AUTHORIZATION_EXPIRED" in types(stack, submitted)
