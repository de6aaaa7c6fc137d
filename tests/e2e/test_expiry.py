"""An abandoned checkout: the hold expires, the intent is canceled, stock comes back."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


@pytest.fixture(scope="module")
def short_hold_stack(launch_stack: Callable[..., Stack]) -> Stack:
    """A stack whose holds last 3 seconds."""
    return launch_stack(hold_ttl=3)


class TestHoldExpiry:
    def test_unpaid_hold_expires_to_canceled(self, short_hold_stack: Stack, sku: str) -> None:
        stack = short_hold_stack
        stack.put_product(sku, stock=4)
        response = stack.submit([(sku, 3)])
        assert response.status_code == 202
        submitted = response.json()
        status = stack.wait_for(submitted, lambda s: bool(s["payment"]["clientSecret"]))
        assert stack.available(sku) == 1

        ended = stack.wait_for(submitted, lambda s: s["state"] == "CANCELED", timeout=40)
        assert ended["state"] == "CANCELED"
        intent = stack.stripe.v1.payment_intents.retrieve(status["payment"]["intentId"])
        assert intent.status == "canceled"
        assert intent.cancellation_reason == "abandoned"
        assert stack.available(sku) == 4
        types = [event["type"] for event in stack.order(submitted)["events"]]
        for wanted in ("HOLD_EXPIRED", "PAYMENT_INTENT_CANCELED", "STOCK_RELEASED"):
            assert wanted in types, types
