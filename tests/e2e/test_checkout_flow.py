"""Submit → poll → client secret → confirm (official SDK) → webhook → PAID, over real
processes; 3-D Secure, declines with retry, and concurrency through gunicorn."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import stripe

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]


def has_secret(status: dict[str, Any]) -> bool:
    return bool(status["payment"]["clientSecret"])


def is_state(state: str) -> Any:
    return lambda status: status["state"] == state


def subsequence(wanted: list[str], seen: list[str]) -> bool:
    """True when ``wanted`` occurs in ``seen`` in this order (other events may interleave)."""
    iterator = iter(seen)
    return all(any(item == event for event in iterator) for item in wanted)


def confirm(stack: Stack, intent_id: str, payment_method: str) -> Any:
    """Confirm server-side with a test payment method, as Stripe.js would for the page."""
    return stack.stripe.v1.payment_intents.confirm(
        intent_id, {"payment_method": payment_method, "return_url": f"{stack.web}/order/return"}
    )


def submit_and_get_intent(stack: Stack, sku: str, quantity: int = 1) -> tuple[dict, dict]:
    response = stack.submit([(sku, quantity)])
    assert response.status_code == 202, response.text
    submitted = response.json()
    status = stack.wait_for(submitted, has_secret)
    return submitted, status


class TestPaidFlow:
    def test_card_payment_ends_paid_with_stock_taken_and_events_in_order(
        self, stack: Stack, sku: str
    ) -> None:
        stack.put_product(sku, stock=5, price=1250)
        submitted, status = submit_and_get_intent(stack, sku, quantity=2)
        assert status["payment"]["status"] == "requires_payment_method"
        assert status["totals"]["subtotal"] == 2500
        assert stack.available(sku) == 3

        intent_id = status["payment"]["intentId"]
        intent = stack.stripe.v1.payment_intents.retrieve(intent_id)
        assert intent.metadata["orderId"] == submitted["orderId"]
        assert intent.amount == status["totals"]["total"]
        confirm(stack, intent_id, "pm_card_visa")

        paid = stack.wait_for(submitted, is_state("PAID"))
        assert paid["payment"]["status"] == "succeeded"
        order = stack.order(submitted)
        assert order["state"] == "PAID"
        assert order["paymentIntentId"] == intent_id
        types = [event["type"] for event in order["events"]]
        assert subsequence(
            ["ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED", "PAYMENT_SUCCEEDED",
             "STOCK_CONFIRMED"],
            types,
        ), types  # fmt: skip
        assert [e["ts"] for e in order["events"]] == sorted(e["ts"] for e in order["events"])
        assert stack.available(sku) == 3  # sold, not given back


class TestThreeDSecure:
    def test_authentication_complete_pays(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=2)
        submitted, status = submit_and_get_intent(stack, sku)
        intent_id = status["payment"]["intentId"]
        confirm(stack, intent_id, "pm_card_threeDSecure2Required")
        stack.wait_for(submitted, lambda s: s["payment"]["status"] == "requires_action")
        stack.emulator_control(f"payment_intents/{intent_id}/authenticate", {"outcome": "complete"})
        stack.wait_for(submitted, is_state("PAID"))
        assert stack.available(sku) == 1

    def test_authentication_failure_keeps_the_order_payable(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=2)
        submitted, status = submit_and_get_intent(stack, sku)
        intent_id = status["payment"]["intentId"]
        confirm(stack, intent_id, "pm_card_threeDSecure2Required")
        stack.wait_for(submitted, lambda s: s["payment"]["status"] == "requires_action")
        stack.emulator_control(f"payment_intents/{intent_id}/authenticate", {"outcome": "fail"})
        failed = stack.wait_for(
            submitted, lambda s: s["payment"]["status"] == "requires_payment_method" and s["error"]
        )
        assert failed["state"] == "PENDING"
        assert stack.available(sku) == 1  # the hold stays while the buyer may retry


class TestDeclineThenRetry:
    def test_decline_shows_the_error_then_a_retry_on_the_same_intent_pays(
        self, stack: Stack, sku: str
    ) -> None:
        stack.put_product(sku, stock=3)
        submitted, status = submit_and_get_intent(stack, sku)
        intent_id = status["payment"]["intentId"]
        with pytest.raises(stripe.CardError):
            confirm(stack, intent_id, "pm_card_chargeDeclined")
        declined = stack.wait_for(submitted, lambda s: bool(s["error"]))
        assert declined["error"]["code"] == "card_declined"
        assert declined["error"]["declineCode"] == "generic_decline"
        assert declined["payment"]["status"] == "requires_payment_method"
        assert declined["state"] == "PENDING"

        confirm(stack, intent_id, "pm_card_visa")
        paid = stack.wait_for(submitted, is_state("PAID"))
        assert paid["payment"]["intentId"] == intent_id
        types = [event["type"] for event in stack.order(submitted)["events"]]
        assert subsequence(["PAYMENT_FAILED", "PAYMENT_SUCCEEDED"], types), types


class TestConcurrency:
    def test_two_hundred_buyers_ten_units(self, stack: Stack, sku: str) -> None:
        stack.put_product(sku, stock=10)

        def attempt(_: int) -> int:
            with requests.Session() as session:
                return stack.submit([(sku, 1)], session=session).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            codes = list(pool.map(attempt, range(200)))
        assert codes.count(202) == 10
        assert codes.count(409) == 190
        assert int(stack.redis.hget("{shop}:avail", sku)) == 0
        assert stack.available(sku) == 0
        held = 0
        for reservation_id in stack.redis.zrange("{shop}:holds", 0, -1):
            record = stack.redis.hgetall(f"{{shop}}:res:{reservation_id}")
            held += sum(qty for s, qty in __import__("json").loads(record["items"]) if s == sku)
        assert held == 10

    def test_fifty_submits_with_one_key_make_one_order_and_one_intent(
        self, stack: Stack, sku: str
    ) -> None:
        stack.put_product(sku, stock=5)
        key = f"one-key-{uuid.uuid4()}"

        def attempt(_: int) -> requests.Response:
            with requests.Session() as session:
                return stack.submit([(sku, 1)], key=key, session=session)

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(attempt, range(50)))
        assert {r.status_code for r in responses} == {202}
        # One body; a guest's checkout token only in the first answer (a key is no credential).
        bodies = [r.json() for r in responses]
        assert len({json.dumps({**b, "checkoutToken": None}) for b in bodies}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 49
        assert sum(b["checkoutToken"] is not None for b in bodies) == 1
        assert stack.available(sku) == 4
        (submitted,) = [b for b in bodies if b["checkoutToken"]]
        status = stack.wait_for(submitted, has_secret)
        found = stack.stripe.v1.payment_intents.search(
            {"query": f"metadata['orderId']:'{submitted['orderId']}'"}
        )
        assert [intent.id for intent in found.data] == [status["payment"]["intentId"]]
