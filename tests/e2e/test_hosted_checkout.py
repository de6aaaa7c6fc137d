"""Hosted Checkout over real processes: submit ``"ui": "hosted"`` → the session's URL on
the emulator's origin → paid there (control endpoint, or the page's own form) → webhook →
PAID, found by ``session_id``; a foreign return URL is 400; an expired session releases."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


def submit_hosted(stack: Stack, sku: str, **urls: str) -> requests.Response:
    body = {
        "items": [{"sku": sku, "quantity": 2}],
        "email": "e2e@example.com",
        "shippingAddress": {"name": "E2E", "line1": "1 Main St", "city": "Austin",
                            "state": "TX", "postalCode": "73301", "country": "US"},
        "ui": "hosted",
        "successUrl": f"{stack.web}/checkout/done?session_id={{CHECKOUT_SESSION_ID}}",
        "cancelUrl": f"{stack.web}/cart",
        **urls,
    }  # fmt: skip
    return stack.session.post(
        f"{stack.web}/api/checkout/payment-intent",
        json=body,
        headers={"Idempotency-Key": f"e2e-hosted-{uuid.uuid4()}"},
        timeout=30,
    )


def open_session(stack: Stack, sku: str) -> tuple[dict[str, Any], dict[str, Any]]:
    response = submit_hosted(stack, sku)
    assert response.status_code == 202, response.text
    submitted = response.json()
    status = stack.wait_for(submitted, lambda s: bool(s.get("checkout")))
    return submitted, status


def is_state(state: str) -> Any:
    return lambda status: status["state"] == state


class TestHostedCheckout:
    def test_paying_the_session_makes_the_order_paid_and_the_lookup_finds_it(
        self, stack: Stack, sku: str
    ) -> None:
        stack.put_product(sku, stock=5, price=1250)
        submitted, status = open_session(stack, sku)
        checkout = status["checkout"]
        assert urlsplit(checkout["url"]).netloc == urlsplit(stack.emulator).netloc
        session = stack.stripe.v1.checkout.sessions.retrieve(checkout["sessionId"])
        assert session.amount_total == status["totals"]["total"]
        assert session.metadata["orderId"] == submitted["orderId"]
        assert stack.available(sku) == 3

        stack.emulator_control(
            f"checkout_sessions/{checkout['sessionId']}/pay", {"paymentMethod": "pm_card_visa"}
        )
        paid = stack.wait_for(submitted, is_state("PAID"))
        found = stack.session.get(
            f"{stack.web}/api/checkout/lookup",
            params={"session_id": checkout["sessionId"]},
            timeout=10,
        )

        assert paid["payment"]["status"] == "succeeded"
        assert found.status_code == 200, found.text
        assert found.json()["orderId"] == submitted["orderId"]
        assert found.json()["checkoutToken"] == submitted["checkoutToken"]
        assert stack.order(submitted)["paymentIntentId"] == session_intent(stack, checkout)
        assert stack.available(sku) == 3

    def test_the_hosted_page_takes_a_card_and_sends_the_buyer_back(
        self, stack: Stack, sku: str
    ) -> None:
        stack.put_product(sku, stock=5, price=1250)
        submitted, status = open_session(stack, sku)
        url = status["checkout"]["url"]

        declined = requests.post(url, data=card("4000000000000002"), timeout=10)
        paid = requests.post(url, data=card("4242424242424242"), allow_redirects=False, timeout=10)

        assert declined.status_code == 402 and "declined" in declined.text
        assert paid.status_code == 303
        session_id = status["checkout"]["sessionId"]
        assert paid.headers["Location"] == f"{stack.web}/checkout/done?session_id={session_id}"
        stack.wait_for(submitted, is_state("PAID"))

    def test_a_foreign_success_url_is_400(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=5)
        response = submit_hosted(stack, sku, successUrl="https://evil.example/done")
        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]) == ["successUrl"]
        assert stack.available(sku) == 5

    def test_an_expired_session_releases_the_hold_and_cancels(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=5)
        submitted, status = open_session(stack, sku)

        stack.stripe.v1.checkout.sessions.expire(status["checkout"]["sessionId"])
        canceled = stack.wait_for(submitted, is_state("CANCELED"))

        assert canceled["state"] == "CANCELED"
        assert stack.available(sku) == 5


def session_intent(stack: Stack, checkout: dict[str, Any]) -> str:
    return str(stack.stripe.v1.checkout.sessions.retrieve(checkout["sessionId"]).payment_intent)


def card(number: str) -> dict[str, str]:
    return {"method": "card", "number": number, "expiry": "12 / 34", "cvc": "123", "name": "E"}
