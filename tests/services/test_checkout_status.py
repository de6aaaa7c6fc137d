"""The checkout read model: publish, read, long-poll wait, token check."""

from __future__ import annotations

import threading
from typing import Any

from app import keys
from app.services import checkout_status
from app.services.checkout_status import publish, read, verify_token, wait


class TestPublishAndRead:
    def test_publish_bumps_the_version(self, any_redis: Any) -> None:
        assert publish(any_redis, "o1", state="PENDING") == 1
        assert publish(any_redis, "o1", paymentStatus="requires_payment_method") == 2
        assert publish(any_redis, "o1") == 3
        view = read(any_redis, "o1")
        assert view == {
            "state": "PENDING",
            "paymentStatus": "requires_payment_method",
            "version": 3,
        }

    def test_json_fields_round_trip(self, any_redis: Any) -> None:
        totals = {"subtotal": 1000, "shipping": 0, "tax": 80, "total": 1080, "currency": "usd"}
        error = {"code": "card_declined", "declineCode": "insufficient_funds", "message": "No."}
        publish(any_redis, "o1", totals=totals, lineItems=[{"sku": "A"}], error=error)
        view = read(any_redis, "o1")
        assert view is not None
        assert view["totals"] == totals
        assert view["lineItems"] == [{"sku": "A"}]
        assert view["error"] == error
        publish(any_redis, "o1", error=None, clientSecret="pi_1_secret_2")
        view = read(any_redis, "o1")
        assert view is not None
        assert view["error"] is None
        assert view["clientSecret"] == "pi_1_secret_2"

    def test_a_fresh_hash_gets_a_ttl_and_an_existing_one_keeps_it(self, any_redis: Any) -> None:
        publish(any_redis, "o1", state="PENDING")
        key = keys.checkout("o1")
        assert 0 < any_redis.ttl(key) <= keys.CHECKOUT_FALLBACK_TTL_SECONDS
        any_redis.expire(key, 100)
        publish(any_redis, "o1", state="PAID")
        assert any_redis.ttl(key) <= 100

    def test_unknown_order_reads_none(self, any_redis: Any) -> None:
        assert read(any_redis, "missing") is None


class TestWait:
    def test_wakes_on_publish(self, any_redis: Any) -> None:
        publish(any_redis, "o1", paymentStatus="creating")
        timer = threading.Timer(
            0.2, lambda: publish(any_redis, "o1", paymentStatus="requires_payment_method")
        )
        timer.start()
        try:
            view = wait(any_redis, "o1", since_version=1, timeout=10)
        finally:
            timer.join()
        assert view is not None
        assert view["version"] == 2
        assert view["paymentStatus"] == "requires_payment_method"

    def test_times_out_with_none_when_nothing_changes(self, any_redis: Any) -> None:
        publish(any_redis, "o1", paymentStatus="creating")
        assert wait(any_redis, "o1", since_version=1, timeout=0.3) is None
        assert read(any_redis, "o1")["version"] == 1  # type: ignore[index]

    def test_returns_at_once_when_already_newer(self, any_redis: Any) -> None:
        publish(any_redis, "o1", state="PENDING")
        publish(any_redis, "o1", state="PAID")
        view = wait(any_redis, "o1", since_version=1, timeout=25)
        assert view is not None
        assert view["state"] == "PAID"

    def test_unknown_order_returns_none(self, any_redis: Any) -> None:
        assert wait(any_redis, "missing", since_version=0, timeout=25) is None

    def test_other_orders_do_not_wake_it(self, any_redis: Any) -> None:
        publish(any_redis, "o1", state="PENDING")
        timer = threading.Timer(0.1, lambda: publish(any_redis, "o2", state="PAID"))
        timer.start()
        try:
            assert wait(any_redis, "o1", since_version=1, timeout=0.5) is None
        finally:
            timer.join()


class TestVerifyToken:
    def test_only_the_right_token_passes(self, any_redis: Any) -> None:
        publish(any_redis, "o1", tokenHash=checkout_status.token_hash("s3cret-token"))
        assert verify_token(any_redis, "o1", "s3cret-token") is True
        assert verify_token(any_redis, "o1", "wrong") is False
        assert verify_token(any_redis, "o1", "") is False
        assert verify_token(any_redis, "o1", None) is False
        assert verify_token(any_redis, "missing", "s3cret-token") is False
