"""Admin refund over real processes: PAID order → refund (202) → worker calls the
emulator → the emulator's signed refund webhooks → REFUNDED."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_checkout_flow import confirm, is_state, submit_and_get_intent

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


def wait_for_order(stack: Stack, submitted: dict[str, Any], state: str) -> dict[str, Any]:
    """Poll the full order until it reaches ``state`` (webhooks are asynchronous)."""
    deadline = time.monotonic() + 30
    order = stack.order(submitted)
    while order["state"] != state:
        assert time.monotonic() < deadline, f"never {state}: {order}\n{stack.processes[0].tail()}"
        time.sleep(0.2)
        order = stack.order(submitted)
    return order


class TestAdminRefund:
    def test_full_refund_of_a_paid_order_ends_refunded(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=3, price=1500)
        submitted, status = submit_and_get_intent(stack, sku)
        confirm(stack, status["payment"]["intentId"], "pm_card_visa")
        stack.wait_for(submitted, is_state("PAID"))

        url = f"{stack.web}/api/admin/orders/{submitted['orderId']}/refunds"
        headers = {
            "Authorization": f"Bearer {stack.admin_token}",
            "Idempotency-Key": f"e2e-refund-{uuid.uuid4()}",
        }
        response = stack.session.post(url, json={"reason": "requested_by_customer"},
                                      headers=headers, timeout=10)  # fmt: skip
        assert response.status_code == 202, response.text
        refund_id = response.json()["refundId"]

        order = wait_for_order(stack, submitted, "REFUNDED")
        # The order follows charge.refunded, the refund row its own refund.* event: the
        # worker may apply them in either order.
        deadline = time.monotonic() + 30
        while order["refunds"][0]["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            order = stack.order(submitted)
        assert order["amountRefunded"] == order["totals"]["total"]
        assert [r["refundId"] for r in order["refunds"]] == [refund_id]
        assert order["refunds"][0]["status"] == "succeeded"
        types = [event["type"] for event in order["events"]]
        assert types.index("REFUND_REQUESTED") < types.index("REFUNDED")

        again = stack.session.post(url, json={"reason": "requested_by_customer"},
                                   headers=headers, timeout=10)  # fmt: skip
        assert (again.status_code, again.json()["refundId"]) == (202, refund_id)
        assert again.headers["Idempotent-Replayed"] == "true"

    def test_a_refund_that_fails_at_stripe_leaves_the_order_paid(
        self, stack: Stack, sku: str
    ) -> None:
        stack.put_product(sku, stock=3, price=1500)
        submitted, status = submit_and_get_intent(stack, sku)
        confirm(stack, status["payment"]["intentId"], "pm_card_refundFail")
        stack.wait_for(submitted, is_state("PAID"))

        url = f"{stack.web}/api/admin/orders/{submitted['orderId']}/refunds"

        def refund(body: dict[str, Any]) -> Any:
            headers = {
                "Authorization": f"Bearer {stack.admin_token}",
                "Idempotency-Key": f"e2e-refund-{uuid.uuid4()}",
            }
            return stack.session.post(url, json=body, headers=headers, timeout=10)

        assert refund({"restock": True}).status_code == 202
        # Stripe says succeeded, then (the emulator's async delay later) failed.
        deadline = time.monotonic() + 30
        order = stack.order(submitted)
        while not any(e["type"] == "REFUND_FAILED" for e in order["events"]):
            assert time.monotonic() < deadline, f"never REFUND_FAILED: {order['events']}"
            time.sleep(0.2)
            order = stack.order(submitted)
        assert (order["state"], order["amountRefunded"]) == ("PAID", 0)
        assert [r["status"] for r in order["refunds"]] == ["failed"]
        assert refund({}).status_code == 202  # the buyer can still get their money
