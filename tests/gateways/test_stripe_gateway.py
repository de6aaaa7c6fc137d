"""StripeGateway through the official SDK against the local Stripe emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app.errors import PaymentProviderError, SignatureInvalid
from app.gateways.payments import StripeGateway
from app.gateways.rate_limit import TokenBucket
from app.gateways.signatures import sign_payload

emulator = pytest.importorskip("devstack.stripe_emulator", reason="Stripe emulator not present")

SECRET = "whsec_gateway_suite"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with emulator.EmulatorServer(async_delay=0.05) as srv:
        yield srv


@pytest.fixture
def stripe_gateway(server: Any) -> StripeGateway:
    server.reset()
    return StripeGateway(
        api_key="sk_test_gateway_suite",
        api_base=server.url,
        webhook_secrets=(SECRET, "whsec_old"),
        max_network_retries=0,
        timeout=10,
    )


def create(gw: StripeGateway, key: str = "pi-create-o1", amount: int = 4599) -> Any:
    return gw.create_intent(
        amount=amount,
        currency="usd",
        idempotency_key=key,
        metadata={"orderId": "o1", "reservationId": "r1"},
        receipt_email="ada@example.com",
        description="Order CO-1",
    )


def confirm(gw: StripeGateway, intent_id: str, method: str) -> None:
    gw.client.v1.payment_intents.confirm(
        intent_id, {"payment_method": method, "return_url": "https://shop.example/done"}
    )


class TestIntents:
    def test_create_returns_intent_with_metadata_and_secret(self, stripe_gateway: Any) -> None:
        intent = create(stripe_gateway)
        assert intent.id.startswith("pi_")
        assert intent.status == "requires_payment_method"
        assert intent.client_secret and intent.client_secret.startswith(intent.id)
        assert (intent.amount, intent.currency) == (4599, "usd")
        assert intent.metadata == {"orderId": "o1", "reservationId": "r1"}

    def test_same_idempotency_key_gives_the_same_intent(self, stripe_gateway: Any) -> None:
        assert create(stripe_gateway).id == create(stripe_gateway).id

    def test_same_key_other_parameters_is_permanent_error(self, stripe_gateway: Any) -> None:
        create(stripe_gateway)
        with pytest.raises(PaymentProviderError) as info:
            create(stripe_gateway, amount=1)
        assert info.value.retryable is False

    def test_decline_shows_in_last_error(self, stripe_gateway: Any) -> None:
        intent = create(stripe_gateway)
        with pytest.raises(Exception):  # noqa: B017  the SDK raises the card error itself
            confirm(stripe_gateway, intent.id, "pm_card_chargeDeclinedInsufficientFunds")
        again = stripe_gateway.retrieve_intent(intent.id)
        assert again.status == "requires_payment_method"
        assert again.last_error is not None
        assert again.last_error.decline_code == "insufficient_funds"

    def test_cancel_then_cancel_of_succeeded_is_unexpected_state(self, stripe_gateway: Any) -> None:
        first = create(stripe_gateway, key="k-a")
        canceled = stripe_gateway.cancel_intent(
            first.id, reason="abandoned", idempotency_key="pi-cancel-a"
        )
        assert canceled.status == "canceled"
        paid = create(stripe_gateway, key="k-b")
        confirm(stripe_gateway, paid.id, "pm_card_visa")
        assert stripe_gateway.retrieve_intent(paid.id).status == "succeeded"
        with pytest.raises(PaymentProviderError) as info:
            stripe_gateway.cancel_intent(paid.id, reason="abandoned", idempotency_key="pi-cancel-b")
        assert info.value.retryable is False
        assert info.value.provider_code == "payment_intent_unexpected_state"

    def test_find_intents_for_order_searches_the_metadata(self, stripe_gateway: Any) -> None:
        mine = create(stripe_gateway, key="pi-create-o1")
        stripe_gateway.create_intent(
            amount=100,
            currency="usd",
            idempotency_key="pi-create-o2",
            metadata={"orderId": "o2", "reservationId": "r2"},
            receipt_email=None,
            description="Order CO-2",
        )
        found = stripe_gateway.find_intents_for_order("o1")
        assert [(i.id, i.metadata["orderId"]) for i in found] == [(mine.id, "o1")]
        assert stripe_gateway.find_intents_for_order("o3") == []

    def test_unknown_intent_is_permanent(self, stripe_gateway: Any) -> None:
        with pytest.raises(PaymentProviderError) as info:
            stripe_gateway.retrieve_intent("pi_does_not_exist")
        assert info.value.retryable is False
        assert info.value.provider_code == "resource_missing"

    def test_server_errors_are_retryable(self, stripe_gateway: Any, server: Any) -> None:
        requests.post(f"{server.url}/_emulator/chaos", json={"failureRate": 1}, timeout=5)
        try:
            with pytest.raises(PaymentProviderError) as info:
                create(stripe_gateway, key="k-chaos")
            assert info.value.retryable is True
        finally:
            requests.post(f"{server.url}/_emulator/chaos", json={"failureRate": 0}, timeout=5)

    def test_refund_and_events(self, stripe_gateway: Any) -> None:
        intent = create(stripe_gateway, key="k-r")
        confirm(stripe_gateway, intent.id, "pm_card_visa")
        refund = stripe_gateway.create_refund(
            intent_id=intent.id,
            amount=1000,
            reason="requested_by_customer",
            idempotency_key="refund-1",
            metadata={"orderId": "o1"},
        )
        assert refund["amount"] == 1000
        assert refund["payment_intent"] == intent.id
        types = {e["type"] for e in stripe_gateway.list_events(created_gte=0, types=[])}
        assert "payment_intent.succeeded" in types


class TestWebhookVerification:
    def test_accepts_current_and_rotated_secret(self, stripe_gateway: Any) -> None:
        body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
        for secret in (SECRET, "whsec_old"):
            assert stripe_gateway.verify_webhook(body, sign_payload(body, secret))["id"] == "evt_1"
        with pytest.raises(SignatureInvalid):
            stripe_gateway.verify_webhook(body, sign_payload(body, "whsec_other"))


class TestTokenBucket:
    def test_bucket_spaces_calls_to_the_rate(self, redis: Any) -> None:
        slept: list[float] = []
        bucket = TokenBucket(redis, rate=2, capacity=2, sleep=slept.append, max_wait=100)
        assert bucket.try_acquire() == 0
        assert bucket.try_acquire() == 0
        assert bucket.try_acquire() > 0  # empty: must wait about half a second
        wait_ms = bucket.try_acquire()
        assert 0 < wait_ms <= 500

    def test_bucket_is_shared_between_clients(self, redis: Any) -> None:
        one = TokenBucket(redis, rate=1, capacity=1)
        two = TokenBucket(redis, rate=1, capacity=1)
        assert one.try_acquire() == 0
        assert two.try_acquire() > 0

    def test_gives_up_with_a_retryable_error(self, redis: Any) -> None:
        bucket = TokenBucket(redis, rate=1, capacity=1, sleep=lambda s: None, max_wait=0.1)
        bucket.acquire()
        with pytest.raises(PaymentProviderError) as info:
            bucket.acquire()
        assert info.value.retryable is True


@pytest.mark.realredis
class TestTokenBucketOnRealRedis:
    def test_script_runs_on_real_redis_and_limits(self, real_redis: Any) -> None:
        bucket = TokenBucket(real_redis, rate=5, capacity=5)
        taken = [bucket.try_acquire() for _ in range(6)]
        assert taken[:5] == [0] * 5
        assert 0 < taken[5] <= 200
