"""Stripe Tax end to end (``TAX_PROVIDER=stripe``) through the emulator: the quote's tax
is the emulator's (its rate table), the PaymentIntent charges that total, the paid order
has a tax transaction at the emulator, and a partial refund reverses its share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_checkout_flow import confirm, has_secret, is_state

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]

AUSTIN = {"name": "E2E", "line1": "1 Main St", "city": "Austin", "state": "TX",
          "postalCode": "73301", "country": "US"}  # fmt: skip


@pytest.fixture(scope="module")
def stack(launch_stack: Callable[..., Stack]) -> Stack:
    """A stack whose web and worker price tax with Stripe Tax (the emulator)."""
    return launch_stack(web_workers=1, env={"TAX_PROVIDER": "stripe"})


def tax_transactions(stack: Stack, reference: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The emulator's transactions with ``reference``, once there is one (the worker
    records them after the payment's and the refund's webhooks)."""
    deadline = time.monotonic() + timeout
    while True:
        response = stack.session.get(
            f"{stack.emulator}/_emulator/tax/transactions",
            params={"reference": reference},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["data"]
        if rows:
            return rows
        assert time.monotonic() < deadline, f"no tax transaction {reference}"
        time.sleep(0.2)


def test_quote_pay_record_and_reverse_part_of_the_tax(stack: Stack, sku: str) -> None:
    stack.put_product(sku, stock=5, price=1250)
    items = [{"sku": sku, "quantity": 2}]
    quote = stack.session.post(
        f"{stack.web}/api/checkout/quote",
        json={"items": items, "shippingAddress": AUSTIN},
        timeout=30,
    ).json()
    # The emulator's US-TX 6.25 %: 25.00 → 1.5625 → 1.56, and the shipping taxed too.
    shipping_tax = (quote["shipping"] * 625 * 2 + 10_000) // 20_000
    assert quote["tax"] == 156 + shipping_tax
    assert quote["total"] == 2500 + quote["shipping"] + quote["tax"]

    response = stack.submit([(sku, 2)])
    assert response.status_code == 202, response.text
    submitted = response.json()
    status = stack.wait_for(submitted, has_secret)
    assert status["totals"]["total"] == quote["total"]
    intent = stack.stripe.v1.payment_intents.retrieve(status["payment"]["intentId"])
    assert intent.amount == quote["total"]

    confirm(stack, intent.id, "pm_card_visa")
    stack.wait_for(submitted, is_state("PAID"))
    (transaction,) = tax_transactions(stack, submitted["orderId"])
    assert transaction["type"] == "transaction"
    recorded = sum(x["amount"] + x["amount_tax"] for x in transaction["line_items"]["data"])
    shipping = transaction["shipping_cost"]
    assert recorded + shipping["amount"] + shipping["amount_tax"] == quote["total"]

    refund = stack.session.post(
        f"{stack.web}/api/admin/orders/{submitted['orderId']}/refunds",
        json={"amount": 500, "reason": "requested_by_customer"},
        headers={"Authorization": f"Bearer {stack.admin_token}",
                 "Idempotency-Key": f"e2e-refund-{uuid.uuid4()}"},
        timeout=10,
    )  # fmt: skip
    assert refund.status_code == 202, refund.text
    (reversal,) = tax_transactions(stack, f"refund-{refund.json()['refundId']}")
    assert reversal["type"] == "reversal"
    assert reversal["reversal"]["original_transaction"] == transaction["id"]
    parts = [x["amount"] + x["amount_tax"] for x in reversal["line_items"]["data"]]
    parts.append(reversal["shipping_cost"]["amount"] + reversal["shipping_cost"]["amount_tax"])
    assert sum(parts) == -500
