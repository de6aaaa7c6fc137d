"""Buyer retries after a decline: one attempt in flight per order, given back by its outcome."""

from __future__ import annotations

from typing import Any

import pytest

from app import keys
from app.errors import InvalidState
from app.services import confirmation
from app.services.order_views import locate_checkout
from models import Order
from tests.fakes import admit_checkout, stock


def retry(runtime: Any, order_id: str, key: str, token: str) -> confirmation.ConfirmRequest:
    """``POST /api/checkout/<id>/confirm`` as the view admits it."""
    located = locate_checkout(runtime.redis, order_id)
    return confirmation.request_confirmation(
        runtime.redis, located, idempotency_key=key, confirmation_token=token
    )


def attempts(order_id: str) -> int:
    """The audit rows of payment attempts the worker made."""
    types = [e.type for e in Order.get_by_id(order_id).events]
    return types.count("PAYMENT_CONFIRMATION_REQUESTED")


@pytest.fixture
def declined(runtime: Any, gateway: Any) -> str:
    """A PENDING order whose first payment was declined: the buyer may retry."""
    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    token = gateway.confirmation_token("pm_card_chargeDeclined")
    submission = admit_checkout(runtime.redis, [("TEE", 2)], confirmation_token=token)
    placed = confirmation.place_order(submission.order_id, runtime)
    assert placed.order is not None and placed.order.state == "PENDING"
    return str(placed.order.id)


class TestOneAttemptInFlight:
    def test_a_second_attempt_waits_for_the_first_outcome(
        self, runtime: Any, gateway: Any, declined: str
    ) -> None:
        first = gateway.confirmation_token("pm_card_chargeDeclined")
        retry(runtime, declined, "retry-key-0001", first)
        with pytest.raises(InvalidState, match="in flight"):
            retry(runtime, declined, "retry-key-0002", gateway.confirmation_token())
        # The first one still replays; the refused key was not used up.
        assert retry(runtime, declined, "retry-key-0001", first).replayed
        confirmation.confirm_payment(declined, first, runtime)  # declined again
        second = gateway.confirmation_token()
        assert not retry(runtime, declined, "retry-key-0002", second).replayed
        confirmation.confirm_payment(declined, second, runtime)
        assert Order.get_by_id(declined).state == "PAID"
        assert attempts(declined) == 2

    def test_the_claim_lapses_if_the_attempt_is_lost(
        self, runtime: Any, gateway: Any, declined: str
    ) -> None:
        retry(runtime, declined, "retry-key-0001", gateway.confirmation_token())
        ttl = runtime.redis.ttl(keys.confirming(declined))
        assert 0 < ttl <= keys.CONFIRMING_TTL_SECONDS

    def test_a_late_outcome_does_not_free_a_newer_attempt(
        self, runtime: Any, gateway: Any, declined: str
    ) -> None:
        stale = gateway.confirmation_token("pm_card_chargeDeclined")
        retry(runtime, declined, "retry-key-0001", stale)
        runtime.redis.delete(keys.confirming(declined))  # as if its TTL had lapsed
        retry(runtime, declined, "retry-key-0002", gateway.confirmation_token())
        confirmation.confirm_payment(declined, stale, runtime)  # the stale one finishes
        with pytest.raises(InvalidState, match="in flight"):
            retry(runtime, declined, "retry-key-0003", gateway.confirmation_token())

    def test_an_order_that_cannot_be_paid_gives_the_claim_back(
        self, runtime: Any, gateway: Any, declined: str
    ) -> None:
        token = gateway.confirmation_token()
        retry(runtime, declined, "retry-key-0001", token)
        Order.update(state="CANCELED").where(Order.id == declined).execute()
        assert confirmation.confirm_payment(declined, token, runtime) == []
        assert runtime.redis.get(keys.confirming(declined)) is None
