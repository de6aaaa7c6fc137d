"""Returning buyers over real processes (web, worker, Stripe emulator, real Redis), through
the official SDK: a JWT buyer saves a card, lists it, pays a second order with it, cannot
delete another buyer's card, deletes their own; guests cannot save; an expired JWT is 401;
the erasure command deletes the Stripe Customer and redacts the orders."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import jwt
import pytest

from tests.e2e.conftest import JWT_SECRET, ROOT, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


def bearer(user_id: str, *, expires_in: int = 3600) -> dict[str, str]:
    token = jwt.encode(
        {"sub": user_id, "exp": int(time.time()) + expires_in}, JWT_SECRET, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


def body(sku: str, **extra: Any) -> dict[str, Any]:
    return {
        "items": [{"sku": sku, "quantity": 1}],
        "email": "returning@example.com",
        "shippingAddress": {"name": "Ada Returning", "line1": "9 Saved Card Rd",
                            "city": "Austin", "state": "TX", "postalCode": "73301",
                            "country": "US"},
        **extra,
    }  # fmt: skip


def submit(stack: Stack, payload: dict[str, Any], headers: dict[str, str]) -> Any:
    return stack.session.post(
        f"{stack.web}/api/checkout/payment-intent",
        json=payload,
        headers={"Idempotency-Key": f"e2e-{uuid.uuid4()}", **headers},
        timeout=30,
    )


def pay(stack: Stack, submitted: dict[str, Any], payment_method: str) -> dict[str, Any]:
    """Wait for the secrets, confirm as Stripe.js would, wait for PAID; the last status."""
    status = stack.wait_for(
        submitted,
        lambda s: (
            bool(s["payment"]["clientSecret"])
            and bool(s["payment"].get("customerSessionClientSecret"))
        ),
    )
    stack.stripe.v1.payment_intents.confirm(
        status["payment"]["intentId"],
        {"payment_method": payment_method, "return_url": f"{stack.web}/order/return"},
    )
    return stack.wait_for(submitted, lambda s: s["state"] == "PAID")


def me(stack: Stack, method: str, path: str, headers: dict[str, str]) -> Any:
    return stack.session.request(method, f"{stack.web}/api/me/{path}", headers=headers, timeout=30)


def test_a_returning_buyer_end_to_end(stack: Stack, sku: str) -> None:
    stack.put_product(sku, stock=10, price=1500)
    ada, bob = f"ada-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"

    # Guests cannot save; an expired token is refused, never a guest checkout.
    refused = submit(stack, body(sku, savePaymentMethod=True), {})
    assert refused.status_code == 400
    assert "savePaymentMethod" in refused.json()["error"]["fields"]
    expired = submit(stack, body(sku), bearer(ada, expires_in=-60))
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "unauthorized"

    # First order: a new card, saved on Ada's Customer.
    first = submit(stack, body(sku, savePaymentMethod=True), bearer(ada))
    assert first.status_code == 202, first.text
    status = pay(stack, first.json(), "pm_card_visa")
    intent = stack.stripe.v1.payment_intents.retrieve(status["payment"]["intentId"])
    assert intent.customer and intent.setup_future_usage == "on_session"
    [card] = me(stack, "GET", "payment-methods", bearer(ada)).json()
    assert (card["brand"], card["last4"]) == ("visa", "4242")

    # Second order: paid with the saved card, for the same Customer.
    second = submit(stack, body(sku), bearer(ada))
    assert second.status_code == 202, second.text
    status = pay(stack, second.json(), card["id"])
    again = stack.stripe.v1.payment_intents.retrieve(status["payment"]["intentId"])
    assert (again.customer, again.payment_method) == (intent.customer, card["id"])
    listed = me(stack, "GET", "orders?limit=10", bearer(ada)).json()
    assert [o["orderId"] for o in listed["data"]] == [
        second.json()["orderId"],
        first.json()["orderId"],
    ]

    # Bob cannot delete Ada's card; Ada can.
    assert me(stack, "DELETE", f"payment-methods/{card['id']}", bearer(bob)).status_code == 404
    assert me(stack, "DELETE", f"payment-methods/{card['id']}", bearer(ada)).status_code == 204
    assert me(stack, "GET", "payment-methods", bearer(ada)).json() == []
    assert stack.stripe.v1.payment_methods.retrieve(card["id"]).customer is None

    # Erasure: the Customer is deleted at Stripe and the orders lose the personal data.
    erased = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "buyers", "erase", ada],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert "2 order(s) redacted; Stripe customer deleted" in erased.stdout
    gone = stack.stripe.v1.customers.retrieve(str(intent.customer)).to_dict()
    assert gone.get("deleted") is True
    order = stack.order(first.json())
    assert order["email"].endswith("@redacted.invalid")
    assert order["state"] == "PAID"
