"""The checkout read model: publish, read, long-poll wait, token check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app import keys
from app.config import load_config
from app.errors import RateLimited
from app.services import checkout_status
from app.services.checkout_status import (
    ChangeFeed,
    WaiterCaps,
    publish,
    read,
    verify_token,
    wait,
)
from tests.fakes import count_waiter_calls


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


@pytest.fixture
def feed(any_redis: Any) -> Iterator[ChangeFeed]:
    changes = ChangeFeed(any_redis, reconnect_pause=0.05)
    yield changes
    changes.stop()


def later(seconds: float, fn: Any) -> threading.Timer:
    timer = threading.Timer(seconds, fn)
    timer.start()
    return timer


class TestChangeFeed:
    def test_wakes_a_waiter_on_publish(self, any_redis: Any, feed: ChangeFeed) -> None:
        publish(any_redis, "o1", paymentStatus="creating")
        timer = later(0.2, lambda: publish(any_redis, "o1", paymentStatus="succeeded"))
        view = feed.wait("o1", since_version=1, timeout=10)
        timer.join()
        assert view is not None
        assert (view["version"], view["paymentStatus"]) == (2, "succeeded")
        assert feed.waiting() == 0

    def test_times_out_and_ignores_other_orders(self, any_redis: Any, feed: ChangeFeed) -> None:
        publish(any_redis, "o1", state="PENDING")
        timer = later(0.1, lambda: publish(any_redis, "o2", state="PAID"))
        assert feed.wait("o1", since_version=1, timeout=0.5) is None
        timer.join()

    def test_answers_at_once_when_newer_or_unknown(self, any_redis: Any, feed: ChangeFeed) -> None:
        publish(any_redis, "o1", state="PENDING")
        publish(any_redis, "o1", state="PAID")
        assert feed.wait("o1", since_version=1, timeout=25)["state"] == "PAID"  # type: ignore[index]
        assert feed.wait("missing", since_version=0, timeout=25) is None

    def test_many_waiters_on_several_orders_share_one_subscription(
        self, any_redis: Any, feed: ChangeFeed
    ) -> None:
        orders = [f"o{n}" for n in range(5)]
        for order_id in orders:
            publish(any_redis, order_id, state="PENDING")
        results: dict[int, Any] = {}

        def waiter(n: int) -> None:
            results[n] = feed.wait(orders[n % 5], since_version=1, timeout=10)

        threads = [threading.Thread(target=waiter, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        while feed.waiting() < 50:
            time.sleep(0.01)
        for order_id in orders:
            publish(any_redis, order_id, state="PAID")
        for thread in threads:
            thread.join(timeout=10)
        assert len(results) == 50
        assert all(view is not None and view["state"] == "PAID" for view in results.values())
        assert any_redis.pubsub_numpat() == 1

    def test_a_lost_subscription_wakes_waiters_to_re_read(self, any_redis: Any) -> None:
        feed = ChangeFeed(any_redis, reconnect_pause=0.05)
        publish(any_redis, "o1", state="PENDING")
        feed.wait("o1", since_version=5, timeout=0.01)  # starts the listener
        # A publish the feed cannot hear: written straight into the hash, no PUBLISH.
        any_redis.hset(keys.checkout("o1"), mapping={"state": "PAID", "version": 2})
        timer = later(0.2, lambda: feed._wake(None))  # what a resubscription does
        view = feed.wait("o1", since_version=1, timeout=5)
        timer.join()
        feed.stop()
        assert view is not None and view["state"] == "PAID"


class TestGatedWait:
    """The long-poll's wait with its caps as the gate: one round trip fewer per answer."""

    def test_a_gate_with_nothing_new_reads_once_woken_and_leaves_in_that_read(
        self, any_redis: Any, feed: ChangeFeed, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        publish(any_redis, "o1", state="PENDING")
        # The feed's first subscription wakes every waiter once (as after a reconnect):
        # start it, and let that wake-up pass, before counting.
        feed.wait("o0", since_version=0, timeout=5)
        time.sleep(0.2)
        calls = count_waiter_calls(monkeypatch)
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        gate = lambda: caps.watch(any_redis, "o1", "token:a", "1.1.1.1")  # noqa: E731
        timer = later(0.2, lambda: publish(any_redis, "o1", paymentStatus="processing"))
        view = feed.wait("o1", since_version=1, timeout=10, gate=gate)
        timer.join()
        assert view is not None and (view["version"], view["paymentStatus"]) == (2, "processing")
        # Entering told version 1 (nothing new): no read until woken, then one that left
        # (no separate leave).
        assert calls[0] == "waiters watch" and set(calls[1:]) == {"waiters take"}
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_a_gated_wait_that_times_out_answers_the_model_as_it_leaves(
        self, any_redis: Any, feed: ChangeFeed, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        publish(any_redis, "o1", state="PENDING")
        feed.wait("o0", since_version=0, timeout=5)
        time.sleep(0.2)
        calls = count_waiter_calls(monkeypatch)
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        gate = lambda: caps.watch(any_redis, "o1", "token:a", "1.1.1.1")  # noqa: E731
        view = feed.wait("o1", since_version=1, timeout=0.3, gate=gate)
        assert view is not None and (view["version"], view["state"]) == (1, "PENDING")
        # No separate leave nor read: the last take left and read (a wake-up with nothing
        # new, as the feed's own subscription may bring, takes without leaving).
        assert calls[0] == "waiters watch" and calls[-1] == "waiters take"
        assert set(calls[1:]) == {"waiters take"}
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_a_wake_with_nothing_newer_keeps_waiting_and_counted(
        self, any_redis: Any, feed: ChangeFeed
    ) -> None:
        publish(any_redis, "o1", state="PENDING")
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        gate = lambda: caps.watch(any_redis, "o1", "token:a", "1.1.1.1")  # noqa: E731
        counted: list[Any] = []

        def wake_then_publish() -> None:
            feed._wake("o1")  # as after a reconnect: nothing new
            time.sleep(0.1)
            counted.append(any_redis.get(keys.waiters("order", "o1")))
            publish(any_redis, "o1", state="PAID")

        timer = later(0.3, wake_then_publish)
        view = feed.wait("o1", since_version=1, timeout=10, gate=gate)
        timer.join()
        assert view is not None and view["state"] == "PAID"
        assert counted in (["1"], [b"1"])  # still counted between the two wake-ups
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_a_gate_that_sees_a_newer_version_answers_at_once(
        self, any_redis: Any, feed: ChangeFeed
    ) -> None:
        publish(any_redis, "o1", state="PENDING")
        publish(any_redis, "o1", state="PAID")
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        gate = lambda: caps.watch(any_redis, "o1", "token:a", "1.1.1.1")  # noqa: E731
        started = time.monotonic()
        view = feed.wait("o1", since_version=1, timeout=10, gate=gate)
        assert view is not None and view["state"] == "PAID"
        assert time.monotonic() - started < 5
        assert feed.wait("missing", since_version=0, timeout=10, gate=lambda: caps.watch(
            any_redis, "missing", "token:a", "1.1.1.1"
        )) is None  # fmt: skip

    def test_a_refused_gate_leaves_no_waiter(self, any_redis: Any, feed: ChangeFeed) -> None:
        publish(any_redis, "o1", state="PENDING")
        caps = WaiterCaps(per_order=0, per_credential=5, per_ip=5)
        gate = lambda: caps.watch(any_redis, "o1", "token:a", "1.1.1.1")  # noqa: E731
        with pytest.raises(RateLimited, match="order"):
            feed.wait("o1", since_version=1, timeout=10, gate=gate)
        assert feed.waiting() == 0
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_watch_answers_the_version_or_none(self, any_redis: Any) -> None:
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        with caps.watch(any_redis, "o1", "token:a", "1.1.1.1") as watch:
            assert watch.version is None  # no read model
            assert any_redis.get(keys.waiters("order", "o1")) in (b"1", "1")
        publish(any_redis, "o1", state="PENDING")
        publish(any_redis, "o1", state="PENDING")
        with caps.watch(any_redis, "o1", "token:a", "1.1.1.1") as watch:
            assert watch.version == 2
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_take_leaves_only_when_newer(self, any_redis: Any) -> None:
        publish(any_redis, "o1", state="PENDING", lineItems=[{"sku": "A"}])
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        with caps.watch(any_redis, "o1", "token:a", "1.1.1.1") as watch:
            assert watch.take(1) == (False, None)
            assert any_redis.get(keys.waiters("order", "o1")) in (b"1", "1")
            newer, model = watch.take(0)
            assert newer and model == read(any_redis, "o1")
            assert model is not None and model["lineItems"] == [{"sku": "A"}]
            assert any_redis.keys(keys.waiters("*", "*")) == []
        assert any_redis.keys(keys.waiters("*", "*")) == []  # left once, not twice
        with caps.watch(any_redis, "gone", "token:a", "1.1.1.1") as watch:
            assert watch.take(5) == (True, None)
        assert any_redis.keys(keys.waiters("*", "*")) == []


class TestOpen:
    """A long-poll's first read: the model, and the caps entered for its token's holder."""

    @staticmethod
    def _admitted(redis: Any) -> None:
        publish(redis, "o1", state="PENDING", tokenHash="h-right")

    def test_the_tokens_holder_with_nothing_newer_is_counted_in_the_read(
        self, any_redis: Any
    ) -> None:
        self._admitted(any_redis)
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        for since in (None, 1, 7):
            watch = caps.open(any_redis, "o1", "h-right", "1.1.1.1", since)
            assert watch.held and watch.version == 1 and watch.refused == 0
            assert watch.model == read(any_redis, "o1")
            assert any_redis.get(keys.waiters("credential", "token:h-right")) in ("1", b"1")
            watch.release()
            assert any_redis.keys(keys.waiters("*", "*")) == []

    @pytest.mark.parametrize(
        ("presented", "since"), [("h-wrong", 1), (None, 1), ("", None), ("h-right", 0)]
    )
    def test_anyone_else_or_a_newer_model_is_read_but_not_counted(
        self, any_redis: Any, presented: str | None, since: int | None
    ) -> None:
        self._admitted(any_redis)
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        watch = caps.open(any_redis, "o1", presented, "1.1.1.1", since)
        assert not watch.held and watch.refused == 0
        assert watch.model is not None and watch.model["tokenHash"] == "h-right"
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_no_model_or_one_without_a_token_hash_is_not_counted(self, any_redis: Any) -> None:
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        watch = caps.open(any_redis, "o1", "h-right", "1.1.1.1", None)
        assert (watch.held, watch.model) == (False, None)
        publish(any_redis, "o1", state="PAID")  # recreated by a publish: no token hash
        watch = caps.open(any_redis, "o1", "", "1.1.1.1", None)
        assert not watch.held and watch.model is not None
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_a_cap_refuses_after_the_read_and_counts_nothing(self, any_redis: Any) -> None:
        self._admitted(any_redis)
        caps = WaiterCaps(per_order=5, per_credential=0, per_ip=5)
        watch = caps.open(any_redis, "o1", "h-right", "1.1.1.1", 1)
        assert not watch.held and watch.refused == 2 and watch.model is not None
        with pytest.raises(RateLimited, match="credential"):
            watch.refuse()
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_an_opened_watch_waits_without_entering_again(
        self, any_redis: Any, feed: ChangeFeed, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self._admitted(any_redis)
        feed.wait("o0", since_version=0, timeout=5)  # the feed's first wake-up, passed
        time.sleep(0.2)
        calls = count_waiter_calls(monkeypatch)
        caps = WaiterCaps(per_order=5, per_credential=5, per_ip=5)
        timer = later(0.2, lambda: publish(any_redis, "o1", paymentStatus="processing"))
        with feed.listen("o1", 10) as listener:
            watch = caps.open(any_redis, "o1", "h-right", "1.1.1.1", 1)
            view = listener.watched(watch, 1)
        timer.join()
        assert view is not None and (view["version"], view["paymentStatus"]) == (2, "processing")
        assert calls[0] == "waiters open" and set(calls[1:]) == {"waiters take"}
        assert any_redis.keys(keys.waiters("*", "*")) == []


class TestWaiterCaps:
    def test_a_cap_refuses_the_next_waiter_until_one_leaves(self, any_redis: Any) -> None:
        caps = WaiterCaps(per_order=2, per_credential=5, per_ip=5)
        with caps.enter(any_redis, "o1", "token:a", "1.1.1.1"):
            with caps.enter(any_redis, "o1", "token:a", "1.1.1.1"):
                third = caps.enter(any_redis, "o1", "token:b", "2.2.2.2")
                with pytest.raises(RateLimited, match="order"):
                    third.__enter__()
            with caps.enter(any_redis, "o1", "token:b", "2.2.2.2"):
                pass
        assert any_redis.keys(keys.waiters("*", "*")) == []

    def test_each_dimension_is_capped(self, any_redis: Any) -> None:
        caps = WaiterCaps(per_order=9, per_credential=1, per_ip=1)
        with caps.enter(any_redis, "o1", "token:a", "1.1.1.1"):
            with pytest.raises(RateLimited, match="credential"):
                caps.enter(any_redis, "o2", "token:a", "2.2.2.2").__enter__()
            with pytest.raises(RateLimited, match="client"):
                caps.enter(any_redis, "o2", "token:b", "1.1.1.1").__enter__()
            with caps.enter(any_redis, "o2", "token:b", "2.2.2.2"):
                pass

    def test_counters_lapse_if_a_process_dies_holding_them(self, any_redis: Any) -> None:
        caps = WaiterCaps(per_order=1, per_credential=1, per_ip=1)
        waiter = caps.enter(any_redis, "o1", "token:a", "1.1.1.1")
        waiter.__enter__()  # never left: the process died
        assert 0 < any_redis.ttl(keys.waiters("order", "o1")) <= keys.WAITERS_TTL_SECONDS

    def test_the_three_caps_come_from_their_own_settings(self, any_redis: Any) -> None:
        """LONGPOLL_MAX_PER_ORDER / _PER_CREDENTIAL / _PER_IP, read through the config."""
        config = load_config(
            {
                "LONGPOLL_MAX_PER_ORDER": "3",
                "LONGPOLL_MAX_PER_CREDENTIAL": "1",
                "LONGPOLL_MAX_PER_IP": "2",
            },
            dotenv=False,
        )
        caps = WaiterCaps.of(config)
        assert (caps.per_order, caps.per_credential, caps.per_ip) == (3, 1, 2)
        with caps.enter(any_redis, "o1", "token:a", "1.1.1.1"):
            with pytest.raises(RateLimited, match="credential"):  # the second of one token
                caps.enter(any_redis, "o2", "token:a", "2.2.2.2").__enter__()
            # The IP's second waiter is allowed, its third is not.
            with (
                caps.enter(any_redis, "o2", "token:b", "1.1.1.1"),
                pytest.raises(RateLimited, match="client"),
            ):
                caps.enter(any_redis, "o3", "token:c", "1.1.1.1").__enter__()


class TestVerifyToken:
    def test_only_the_right_token_passes(self, any_redis: Any) -> None:
        publish(any_redis, "o1", tokenHash=checkout_status.token_hash("s3cret-token"))
        assert verify_token(any_redis, "o1", "s3cret-token") is True
        assert verify_token(any_redis, "o1", "wrong") is False
        assert verify_token(any_redis, "o1", "") is False
        assert verify_token(any_redis, "o1", None) is False
        assert verify_token(any_redis, "missing", "s3cret-token") is False
