"""A promotion code end to end: the worker, the emulator's PaymentIntent, the webhook."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_checkout_flow import confirm, has_secret, is_state

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


def put_promotion(stack: Stack, code: str, **terms: Any) -> dict[str, Any]:
    response = stack.session.put(
        f"{stack.web}/api/admin/promotions/{code}",
        json={"active": True, **terms},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_ten_percent_code_discounts_the_payment_intent(stack: Stack, sku: str) -> None:
    stack.put_product(sku, stock=5, price=1250)
    code = f"E2E{uuid.uuid4().hex[:8]}".upper()
    put_promotion(stack, code, percentOff=10, maxRedemptions=3)
    body = {
        "items": [{"sku": sku, "quantity": 2}],
        "email": "e2e@example.com",
        "shippingAddress": {"name": "E2E", "line1": "1 Main St", "city": "Austin",
                            "state": "TX", "postalCode": "73301", "country": "US"},
        "promotionCode": code,
        "shippingOptionId": "express",
    }  # fmt: skip
    response = stack.session.post(
        f"{stack.web}/api/checkout/payment-intent",
        json=body,
        headers={"Idempotency-Key": f"e2e-{uuid.uuid4()}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    submitted = response.json()
    status = stack.wait_for(submitted, has_secret)
    totals = status["totals"]
    # 25.00 less 2.50; TX 6.25 % on 22.50 = 1.40625 → 1.41; express 15.00
    assert (totals["discount"], totals["tax"], totals["shipping"]) == (250, 141, 1500)
    assert totals["total"] == 2500 - 250 + 1500 + 141
    assert status["totalsDecimal"]["total"] == "38.91"
    intent = stack.stripe.v1.payment_intents.retrieve(status["payment"]["intentId"])
    assert intent.amount == totals["total"]
    confirm(stack, intent.id, "pm_card_visa")
    stack.wait_for(submitted, is_state("PAID"))
    order = stack.order(submitted)
    assert order["promotion"]["code"] == code
    listed = stack.session.get(
        f"{stack.web}/api/admin/promotions",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=10,
    ).json()
    mine = next(p for p in listed if p["code"] == code)
    assert (mine["used"], mine["left"]) == (1, 2)
