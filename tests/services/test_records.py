"""The per-order lock of the actors (app/services/records.order_lock) and the read
model's publish after commit (tried again through a Redis failover)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any, cast

import pytest
from redis.client import Pipeline
from redis.exceptions import LockError
from redis.lock import Lock

from app import keys, lua
from app.services.records import LockRenewer, order_lock, with_lock_release


class TestOrderLock:
    def test_held_past_its_ttl_while_the_actor_runs(self, any_redis: Any) -> None:
        """The renewer keeps a short TTL alive for as long as the actor holds the lock."""
        key = keys.order_lock("o-1")
        # A TTL of a second: the renewer (every third of it) has two chances per TTL even
        # on a loaded box; 0.3 s lapsed once when a renewal waited 300 ms for a core.
        with order_lock(any_redis, "o-1", ttl=1.0):
            time.sleep(2.5)  # past two TTLs
            assert any_redis.exists(key)
            # What a killed worker leaves behind lapses within the TTL.
            assert 0 < any_redis.pttl(key) <= 1000
        assert not any_redis.exists(key)

    def test_a_second_actor_waits_for_the_first(self, any_redis: Any) -> None:
        order: list[str] = []

        def second() -> None:
            with order_lock(any_redis, "o-3", ttl=0.3):
                order.append("second")

        with order_lock(any_redis, "o-3", ttl=0.3):
            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.5)  # past the TTL: only the renewal keeps the second one out
            order.append("first")
        thread.join(5)
        assert order == ["first", "second"]

    def test_a_lost_lock_stops_the_renewer_and_the_actor_finishes(
        self, any_redis: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        with order_lock(any_redis, "o-4", ttl=0.3):
            any_redis.delete(keys.order_lock("o-4"))  # a flush while held
            time.sleep(0.3)
        assert "lost while held" in caplog.text

    def test_one_renewer_thread_keeps_every_held_lock(self, any_redis: Any) -> None:
        """Locks held at once by several actors are all renewed, by one thread in all."""
        names = [f"o-{n}" for n in range(5, 9)]
        entered = threading.Barrier(len(names) + 1)
        leave = threading.Event()

        def actor(order_id: str) -> None:
            with order_lock(any_redis, order_id, ttl=0.6):
                entered.wait(5)
                leave.wait(5)

        actors = [threading.Thread(target=actor, args=(name,)) for name in names]
        for thread in actors:
            thread.start()
        entered.wait(5)
        time.sleep(1.5)  # past two TTLs
        alive = [any_redis.exists(keys.order_lock(name)) for name in names]
        renewers = [t for t in threading.enumerate() if t.name.startswith("order-lock")]
        leave.set()
        for thread in actors:
            thread.join(5)
        assert alive == [1] * len(names)
        assert len(renewers) == 1
        assert not any(any_redis.exists(keys.order_lock(name)) for name in names)

    def test_writes_handed_over_go_with_the_release(self, any_redis: Any) -> None:
        """``with_lock_release`` under a lock: sent with the release, not before it."""
        with order_lock(any_redis, "o-10", ttl=5):
            with_lock_release(any_redis, lambda pipe: pipe.set("rider", "1"))
            assert not any_redis.exists("rider")  # waits for the release
        assert any_redis.get("rider") in ("1", b"1")
        assert not any_redis.exists(keys.order_lock("o-10"))
        with_lock_release(any_redis, lambda pipe: pipe.delete("rider"))  # no lock: at once
        assert not any_redis.exists("rider")

    def test_a_lock_taken_over_is_not_released_and_the_writes_still_go(
        self, any_redis: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Only our own token is released: a lock that expired and was taken by another
        worker stays theirs."""
        key = keys.order_lock("o-11")
        with order_lock(any_redis, "o-11", ttl=5):
            with_lock_release(any_redis, lambda pipe: pipe.set("rider", "1"))
            any_redis.set(key, "another-token")  # expired, and taken by another worker
        assert any_redis.get(key) in ("another-token", b"another-token")
        assert any_redis.get("rider") in ("1", b"1")
        assert "expired before release" in caplog.text

    def test_a_server_without_the_release_script_releases_anyway(self, any_redis: Any) -> None:
        """A restarted (or promoted) server does not know the script: redis-py's own
        release loads it; the writes were sent."""
        with order_lock(any_redis, "o-12", ttl=5):
            with_lock_release(any_redis, lambda pipe: pipe.set("rider", "1"))
            any_redis.script_flush()
        assert not any_redis.exists(keys.order_lock("o-12"))
        assert any_redis.get("rider") in ("1", b"1")

    def test_a_rider_that_did_not_go_falls_back_while_the_lock_is_held(
        self, any_redis: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The release's round trip failed (a failover): each rider's fallback runs before
        redis-py's own release, with the lock still held; a rider without one is lost."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        execute, failed = Pipeline.execute, []

        def refused(pipe: Any, raise_on_error: bool = True) -> Any:
            if not failed:
                failed.append(True)
                pipe.reset()
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")
            return execute(pipe, raise_on_error)

        key, held = keys.order_lock("o-13"), []
        with order_lock(any_redis, "o-13", ttl=5):
            with_lock_release(any_redis, lambda pipe: pipe.set("lost", "1"))
            with_lock_release(
                any_redis,
                lambda pipe: pipe.set("rider", "1"),
                lambda: held.append(bool(any_redis.exists(key))),
            )
            monkeypatch.setattr(Pipeline, "execute", refused)
        assert failed and held == [True]
        assert not any_redis.exists(key)  # released alone
        assert not any_redis.exists("lost") and not any_redis.exists("rider")

    def test_only_the_rider_whose_reply_is_an_error_falls_back(self, any_redis: Any) -> None:
        """One rider's script is unknown to the server (NOSCRIPT): its fallback runs, the
        other rider's writes and the release went through."""
        fallbacks: list[str] = []
        with order_lock(any_redis, "o-14", ttl=5):
            with_lock_release(
                any_redis, lambda pipe: pipe.set("rider", "1"), lambda: fallbacks.append("set")
            )
            with_lock_release(
                any_redis,
                lambda pipe: pipe.evalsha("0" * 40, 0),
                lambda: fallbacks.append("script"),
            )
        assert fallbacks == ["script"]
        assert any_redis.get("rider") in ("1", b"1")
        assert not any_redis.exists(keys.order_lock("o-14"))

    def test_the_read_model_is_published_with_the_release(self, runtime: Any, order: Any) -> None:
        """``publish_after_commit`` under the order lock: the publish waits for the
        release's round trip (one round trip less), and lands before the lock is free."""
        from app.services import checkout_status
        from app.services.records import publish_after_commit
        from models.db import database

        with order_lock(runtime.redis, order.id):
            with database().atomic():
                publish_after_commit(runtime, order, error=None, extra={"confirming": "x"})
            assert (checkout_status.read(runtime.redis, order.id) or {}).get("confirming") is None
        view = checkout_status.read(runtime.redis, order.id)
        assert view is not None and view["confirming"] == "x"
        assert not runtime.redis.exists(keys.order_lock(order.id))

    def test_a_message_queued_with_the_release_or_enqueued_when_it_failed(
        self, any_redis: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``enqueue_with_release``: the message's writes go with the release and its
        ``written`` hook runs; when the round trip failed the broker's own enqueue runs
        instead, before the lock is released, and its error is raised after."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        from app.services.records import enqueue_with_release

        class Message:
            written_calls = 0

            def queue(self, pipe: Any) -> None:
                pipe.rpush("queued", "m")

            def written(self) -> None:
                Message.written_calls += 1

        enqueued: list[bool] = []
        with order_lock(any_redis, "o-15", ttl=5):
            enqueue_with_release(any_redis, cast(Any, Message()), lambda: enqueued.append(True))
            assert not any_redis.exists("queued")
        assert any_redis.lrange("queued", 0, -1) in (["m"], [b"m"])
        assert (Message.written_calls, enqueued) == (1, [])
        enqueue_with_release(any_redis, None, lambda: enqueued.append(True))  # not Redis
        assert enqueued == [True]

        execute = Pipeline.execute

        def refused(pipe: Any, raise_on_error: bool = True) -> Any:
            pipe.reset()
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")

        def enqueue() -> None:
            enqueued.append(bool(any_redis.exists(keys.order_lock("o-16"))))
            raise RedisConnectionError("the broker's enqueue failed too")

        enqueued.clear()
        with (
            pytest.raises(RedisConnectionError, match="enqueue failed"),
            order_lock(any_redis, "o-16", ttl=5),
        ):
            enqueue_with_release(any_redis, cast(Any, Message()), enqueue)
            monkeypatch.setattr(Pipeline, "execute", refused)
        monkeypatch.setattr(Pipeline, "execute", execute)
        assert enqueued == [True]  # under the lock
        assert not any_redis.exists(keys.order_lock("o-16"))  # released alone all the same
        assert Message.written_calls == 1

    def test_a_lock_released_during_its_renewal_is_not_reported_lost(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The release may win the race against a renewal already under way: the
        renewal is refused (the token is gone), and that is no lost lock."""
        renewer = LockRenewer()
        refused = threading.Event()

        class ReleasedDuringRenewal:
            name = "{shop}:lock:order:o-9"

            def reacquire(self) -> bool:
                renewer.drop(held)  # the actor gives the lock back meanwhile
                refused.set()
                raise LockError("Cannot reacquire a lock that's no longer owned")

        held = renewer.hold(cast(Lock, ReleasedDuringRenewal()), 0.01)
        assert refused.wait(5)
        time.sleep(0.05)
        assert "lost while held" not in caplog.text


class TestPublishAfterCommit:
    """A read-model publish that meets a connection error (a Redis failover: refused
    until the replica is promoted) is tried again; nothing else would publish again."""

    @pytest.fixture
    def refused(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """``checkout_status.publish`` refused twice, then through; the states asked."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        from app.services import checkout_status, records

        real, execute = checkout_status.publish, Pipeline.execute
        sha = lua.script("publish").sha
        asked: list[str] = []

        def publish(redis: Any, order_id: str, /, **fields: Any) -> int:
            asked.append(fields["state"])
            if len(asked) <= self.failures:
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")
            return real(redis, order_id, **fields)

        def pipelined(pipe: Any, raise_on_error: bool = True) -> Any:
            """The publish sent beside other commands (``publish_with_release``)."""
            for args, _options in pipe.command_stack:
                if args[0] == "EVALSHA" and args[1] == sha:
                    asked.append(args[args.index("state") + 1])
                    if len(asked) <= self.failures:
                        pipe.reset()
                        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")
            return execute(pipe, raise_on_error)

        monkeypatch.setattr(checkout_status, "publish", publish)
        monkeypatch.setattr(Pipeline, "execute", pipelined)
        monkeypatch.setattr(records, "PUBLISH_RETRY_PAUSES", (0.0,) * 6)
        return asked

    failures = 2

    def test_a_paid_order_is_published_after_the_failover(
        self, runtime: Any, gateway: Any, order: Any, refused: list[str]
    ) -> None:
        from app.services import checkout_status
        from app.services.webhooks import handle_event

        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        handle_event(event["id"], event, runtime)
        assert refused == ["PAID", "PAID", "PAID"]
        view = checkout_status.read(runtime.redis, order.id)
        assert view is not None and view["state"] == "PAID"

    def test_a_change_committed_meanwhile_is_published_not_the_old_one(
        self, runtime: Any, order: Any, refused: list[str]
    ) -> None:
        from app.services import checkout_status
        from app.services.records import checkout_fields, publish_with_retries
        from models import Order

        stale = {**checkout_fields(order), "error": None}
        later = order.updated_at + timedelta(seconds=1)
        Order.update(state="CANCELED", updated_at=later).where(Order.id == order.id).execute()
        assert publish_with_retries(runtime, order, stale) is True
        assert refused == ["PENDING", "CANCELED", "CANCELED"]
        view = checkout_status.read(runtime.redis, order.id)
        assert view is not None and view["state"] == "CANCELED"

    def test_gives_up_after_the_last_pause_without_raising(
        self, runtime: Any, order: Any, refused: list[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.services.records import checkout_fields, publish_with_retries

        monkeypatch.setattr(self, "failures", 99)
        assert publish_with_retries(runtime, order, checkout_fields(order)) is False
        assert len(refused) == 7  # the first try and one after each of the six pauses

    def unopened(self, runtime: Any) -> Any:
        from app.services.checkout import write_submission
        from tests.fakes import admit_checkout, stock

        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        order = write_submission(admit_checkout(runtime.redis, [("TEE", 1)]).order_id, runtime)
        assert order is not None and order.payment_intent_id is None
        return order

    def test_the_client_secret_is_published_after_the_failover(
        self, runtime: Any, gateway: Any, refused: list[str]
    ) -> None:
        from app.services import checkout_status
        from app.services.checkout import open_payment

        order, _ = open_payment(self.unopened(runtime), runtime)
        assert refused == ["PENDING"] * 3
        view = checkout_status.read(runtime.redis, order.id)
        assert view is not None and view["clientSecret"] == order.client_secret

    def test_the_client_secret_never_published_fails_the_actor_for_its_retry(
        self, runtime: Any, gateway: Any, refused: list[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        from app.services.checkout import open_payment

        monkeypatch.setattr(self, "failures", 99)
        with pytest.raises(RedisConnectionError):
            open_payment(self.unopened(runtime), runtime)
        assert len(refused) == 7
