"""Server-side confirmation over real processes and the emulator, through the SDK: the
cart is submitted with a ConfirmationToken and the worker creates AND confirms the
intent; 3-D Secure, a decline then a retry via /confirm, and a bank debit that settles
later (hold kept past its TTL, both e-mails caught)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]

CART_ADDRESS = {
    "name": "E2E", "line1": "1 Main St", "city": "Austin", "state": "TX",
    "postalCode": "73301", "country": "US",
}  # fmt: skip


@pytest.fixture(scope="module")
def stack(launch_stack: Any) -> Stack:
    """Holds of 4 s: a bank debit stays processing past its hold's TTL."""
    return launch_stack(web_workers=2, hold_ttl=4)


def token(stack: Stack, payment_method: str) -> str:
    """A ConfirmationToken as Stripe.js would make it (the test helper, secret key)."""
    created = stack.stripe.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": payment_method, "return_url": f"{stack.web}/order/return"}
    )
    return str(created.id)


def submit(stack: Stack, sku: str, ctoken: str) -> dict[str, Any]:
    body = {
        "items": [{"sku": sku, "quantity": 1}],
        "email": "e2e@example.com",
        "shippingAddress": CART_ADDRESS,
        "confirmationTokenId": ctoken,
    }
    response = stack.session.post(
        f"{stack.web}/api/checkout/payment-intent",
        json=body,
        headers={"Idempotency-Key": f"e2e-{uuid.uuid4()}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def confirm(stack: Stack, submitted: dict[str, Any], ctoken: str) -> requests.Response:
    return stack.session.post(
        f"{stack.web}/api/checkout/{submitted['orderId']}/confirm",
        json={"confirmationTokenId": ctoken},
        headers={
            "X-Checkout-Token": submitted["checkoutToken"],
            "Idempotency-Key": f"e2e-confirm-{uuid.uuid4()}",
        },
        timeout=30,
    )


def payment(status: str) -> Any:
    return lambda s: s["payment"]["status"] == status


def types(stack: Stack, submitted: dict[str, Any]) -> list[str]:
    return [e["type"] for e in stack.order(submitted)["events"]]


def caught(stack: Stack, subject: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in requests.get(f"{stack.mail}/messages.json", timeout=5).json():
            if subject in str(message.get("subject")):
                return dict(message)
        time.sleep(0.2)
    raise AssertionError(f"no mail with {subject!r}")


class TestServerSideConfirmation:
    def test_visa_pays_without_the_browser_confirming(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=3, price=1500)
        submitted = submit(stack, sku, token(stack, "pm_card_visa"))
        paid = stack.wait_for(submitted, lambda s: s["state"] == "PAID")
        assert paid["payment"]["status"] == "succeeded"
        assert paid["payment"]["captureMethod"] == "automatic"
        intent = stack.stripe.v1.payment_intents.retrieve(paid["payment"]["intentId"])
        assert intent.metadata["orderId"] == submitted["orderId"]
        assert stack.available(sku) == 2

    @pytest.mark.parametrize("outcome", ["complete", "fail"])
    def test_three_d_secure(self, stack: Stack, sku: str, outcome: str) -> None:
        stack.put_product(sku, stock=3)
        submitted = submit(stack, sku, token(stack, "pm_card_threeDSecure2Required"))
        waiting = stack.wait_for(submitted, payment("requires_action"))
        assert waiting["payment"]["clientSecret"]  # for stripe.handleNextAction
        intent_id = waiting["payment"]["intentId"]
        stack.emulator_control(f"payment_intents/{intent_id}/authenticate", {"outcome": outcome})
        if outcome == "complete":
            stack.wait_for(submitted, lambda s: s["state"] == "PAID")
        else:
            failed = stack.wait_for(submitted, lambda s: s["error"] is not None)
            assert failed["state"] == "PENDING"
            assert failed["payment"]["status"] == "requires_payment_method"

    def test_decline_then_retry_on_the_same_order(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=3)
        submitted = submit(stack, sku, token(stack, "pm_card_chargeDeclined"))
        declined = stack.wait_for(submitted, lambda s: s["error"] is not None)
        assert declined["error"]["code"] == "card_declined"
        assert declined["error"]["declineCode"] == "generic_decline"
        intent_id = declined["payment"]["intentId"]

        response = confirm(stack, submitted, token(stack, "pm_card_visa"))
        assert response.status_code == 202, response.text
        assert response.json() == {
            "orderId": submitted["orderId"],
            "state": "PENDING",
            "statusUrl": submitted["statusUrl"],
        }
        paid = stack.wait_for(submitted, lambda s: s["state"] == "PAID")
        assert paid["payment"]["intentId"] == intent_id  # same intent, same hold
        assert stack.available(sku) == 2
        assert confirm(stack, submitted, token(stack, "pm_card_visa")).status_code == 409
        seen = types(stack, submitted)
        assert seen.index("PAYMENT_FAILED") < seen.index("PAYMENT_SUCCEEDED")


class TestBankDebit:
    def test_settles_later_and_the_buyer_hears_twice(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=3)
        submitted = submit(stack, sku, token(stack, "pm_emulator_bank_debit"))
        processing = stack.wait_for(submitted, payment("processing"))
        caught(stack, "is on its way")
        time.sleep(6)  # past the 4 s hold: the expiry extends it instead of releasing
        assert stack.status(submitted)["state"] == "PENDING"
        assert stack.available(sku) == 2
        intent_id = processing["payment"]["intentId"]
        stack.emulator_control(f"payment_intents/{intent_id}/settle", {"outcome": "succeeded"})
        stack.wait_for(submitted, lambda s: s["state"] == "PAID")
        caught(stack, f"Your receipt for order {submitted['orderNumber']}")
        assert "HOLD_EXTENDED" in types(stack, submitted)

    def test_a_late_failure_ends_failed_and_releases(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=3)
        submitted = submit(stack, sku, token(stack, "pm_emulator_bank_debit"))
        processing = stack.wait_for(submitted, payment("processing"))
        time.sleep(6)  # the failure comes after the hold's original expiry
        intent_id = processing["payment"]["intentId"]
        stack.emulator_control(f"payment_intents/{intent_id}/settle", {"outcome": "failed"})
        caught(stack, "did not go through")
        stack.wait_for(submitted, lambda s: s["state"] == "FAILED", timeout=60)
        assert stack.available(sku) == 3
