"""The submit path: its rate limit counted in the admission script, replays to another
caller without the checkout token, one Redis round trip per admitted submit (the worker's
message queued by the admission script, and consumed by a real Dramatiq worker), and no
202 before a replica holds the submission when REDIS_MIN_REPLICAS_ACK asks for one (the
message then sent after the acknowledgement: two round trips)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
import redis as redis_lib

from app import create_app, keys
from app.gateways.jobs import queue_depths
from app.runtime import current, install
from devstack.perf.roundtrips import sends
from tests.api.conftest import counting_runtime, run_queued

SUBMIT = "/api/checkout/payment-intent"


@pytest.fixture
def limited(runtime: Any) -> Any:
    config = runtime.config.with_overrides(ratelimit_enabled=True, ratelimit_checkout="2/minute")
    return create_app(config, runtime=runtime).test_client()


class TestSubmitRateLimit:
    def test_admitted_submits_count_and_the_third_is_429(
        self, limited: Any, catalog: Any, submit_body: Callable[..., dict[str, Any]]
    ) -> None:
        responses = [
            limited.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": f"k-rate-{n}x"})
            for n in range(3)
        ]
        assert [r.status_code for r in responses] == [202, 202, 429]
        assert responses[0].headers["X-RateLimit-Limit"] == "2"
        assert responses[0].headers["X-RateLimit-Remaining"] == "1"
        assert responses[1].headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(responses[2].headers["Retry-After"]) <= 60
        assert responses[2].get_json()["error"]["code"] == "rate_limited"

    @pytest.mark.parametrize("first", ["admitted", "refused"])
    def test_the_window_expires_whichever_request_opened_it(
        self,
        limited: Any,
        runtime: Any,
        catalog: Any,
        submit_body: Callable[..., Any],
        first: str,
    ) -> None:
        """A window without an expiry would lock the client out for good (Retry-After
        alone cannot tell: it reads 1..60 either way)."""
        body = submit_body() if first == "admitted" else submit_body(email="not-an-email")
        response = limited.post(SUBMIT, json=body, headers={"Idempotency-Key": "k-window-1"})
        assert response.status_code == (202 if first == "admitted" else 400)
        key = keys.submit_rate("127.0.0.1")
        assert runtime.redis.get(key) == "1"
        assert 0 < runtime.redis.ttl(key) <= 60  # "2/minute"

    def test_a_limited_submit_holds_nothing(
        self, limited: Any, runtime: Any, catalog: Any, submit_body: Callable[..., Any]
    ) -> None:
        for n in range(2):
            limited.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": f"k-hold-{n}x"})
        before = runtime.redis.hgetall("{shop}:avail")
        refused = limited.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "k-hold-2x"})
        assert refused.status_code == 429
        assert runtime.redis.hgetall("{shop}:avail") == before
        assert runtime.redis.exists("{shop}:idem:" + "x") == 0

    def test_each_client_has_its_own_window(
        self, limited: Any, catalog: Any, submit_body: Callable[..., Any]
    ) -> None:
        for n in range(2):
            limited.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": f"k-ip-{n}xx"})
        other = limited.post(
            SUBMIT,
            json=submit_body(),
            headers={"Idempotency-Key": "k-ip-2xx"},
            environ_base={"REMOTE_ADDR": "10.0.0.7"},
        )
        assert other.status_code == 202


class TestReplayToAnotherCaller:
    """An Idempotency-Key is not a credential: a replay carries the checkout token only to
    the JWT user who submitted; a guest has no credential, so no replay carries it."""

    def test_a_guest_replay_behind_the_same_ip_has_no_token(
        self, client: Any, catalog: Any, submit_body: Callable[..., Any]
    ) -> None:
        headers = {"Idempotency-Key": "guessable-key-1"}
        first = client.post(SUBMIT, json=submit_body(), headers=headers)
        again = client.post(SUBMIT, json=submit_body(), headers=headers)  # same IP (NAT)
        stranger = client.post(
            SUBMIT, json=submit_body(), headers=headers, environ_base={"REMOTE_ADDR": "6.6.6.6"}
        )
        assert first.get_json()["checkoutToken"]
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == {**first.get_json(), "checkoutToken": None}
        assert stranger.status_code == 202
        assert stranger.get_json() == {**first.get_json(), "checkoutToken": None}

    def test_only_the_submitting_user_gets_the_token_back(
        self,
        client: Any,
        catalog: Any,
        submit_body: Callable[..., Any],
        make_token: Callable[..., str],
    ) -> None:
        def as_user(user: str | None) -> dict[str, str]:
            auth = {"Authorization": f"Bearer {make_token({'sub': user})}"} if user else {}
            return {"Idempotency-Key": "guessable-key-2", **auth}

        first = client.post(SUBMIT, json=submit_body(), headers=as_user("u-1"))
        again = client.post(SUBMIT, json=submit_body(), headers=as_user("u-1"))
        other = client.post(SUBMIT, json=submit_body(), headers=as_user("u-2"))
        guest = client.post(SUBMIT, json=submit_body(), headers=as_user(None))
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == first.get_json()
        assert first.get_json()["checkoutToken"]
        for stranger in (other, guest):  # same IP, same key, same body
            assert stranger.get_json() == {**first.get_json(), "checkoutToken": None}


@pytest.mark.realredis
class TestRoundTrips:
    @pytest.fixture
    def counted(self, counted_app: Any) -> Any:
        """The app on the real Redis, counting round trips (tests/api/conftest.py)."""
        return counted_app

    def test_an_admitted_submit_costs_one_round_trip_its_message_included(
        self, counted: Any, submit_body: Callable[..., Any]
    ) -> None:
        # The first submit loads the scripts (EVALSHA → NOSCRIPT → SCRIPT LOAD).
        warm = counted.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "warm-up-1"})
        assert warm.status_code == 202
        before = sends()
        response = counted.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "count-1x"})
        trips = sends() - before - 1  # minus the call of sends() itself
        assert response.status_code == 202
        assert response.headers["X-RateLimit-Remaining"] == "998"
        assert trips == 1
        assert queue_depths(current().redis)["default"] == 2  # the warm-up's and this one's

    def test_a_refused_or_replayed_submit_queues_nothing(
        self, counted: Any, submit_body: Callable[..., Any]
    ) -> None:
        redis = current().redis
        short = counted.post(
            SUBMIT,
            json=submit_body(items=[{"sku": "MUG", "quantity": 6}]),
            headers={"Idempotency-Key": "refused-1"},
        )
        assert short.status_code == 409
        assert queue_depths(redis)["default"] == 0
        first = counted.post(
            SUBMIT, json=submit_body(), headers={"Idempotency-Key": "replay-once-1"}
        )
        again = counted.post(
            SUBMIT, json=submit_body(), headers={"Idempotency-Key": "replay-once-1"}
        )
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert redis.lrange("dramatiq:default", 0, -1) == list(
            redis.hkeys("dramatiq:default.msgs")
        )  # one message, its id on the queue
        assert queue_depths(redis)["default"] == 1

    def test_a_dramatiq_worker_runs_the_message_the_admission_queued(
        self, counted: Any, submit_body: Callable[..., Any]
    ) -> None:
        broker = current().jobs.broker  # type: ignore[attr-defined]
        ran: list[str] = []

        @dramatiq.actor(actor_name="create_payment_intent", queue_name="default", broker=broker)
        def create_payment_intent(order_id: str) -> None:
            ran.append(order_id)

        response = counted.post(
            SUBMIT, json=submit_body(), headers={"Idempotency-Key": "worker-run-1"}
        )
        assert response.status_code == 202
        run_queued(broker)
        assert ran == [response.get_json()["orderId"]]
        assert queue_depths(current().redis)["default"] == 0  # acknowledged: gone

    def test_a_submit_redeeming_a_code_still_costs_one_round_trip(
        self, counted: Any, submit_body: Callable[..., Any]
    ) -> None:
        from app.services import promotions

        promotions.upsert(
            current().redis,
            promotions.PromotionInput("TEN", 10, None, "usd", None, None, None, 5, 1, True),
        )
        warm = counted.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "warm-up-2"})
        assert warm.status_code == 202
        before = sends()
        response = counted.post(
            SUBMIT, json=submit_body(promotionCode="ten"), headers={"Idempotency-Key": "count-2x"}
        )
        trips = sends() - before - 1  # minus the call of sends() itself
        assert response.status_code == 202, response.get_json()
        assert trips == 1
        assert promotions.redemptions_held(current().redis, "TEN") == 1


class TestReplicaAcknowledgement:
    """REDIS_MIN_REPLICAS_ACK: a 202 only once a replica holds the submission."""

    # WAIT returns as soon as the replica acknowledges, so a long bound costs nothing
    # when one comes: the tests wait on the acknowledgement, not on a guess of how long
    # a loaded box takes (3 s was missed). A submit no replica can acknowledge (it is
    # killed) gets production's short bound, so its 503 comes at once.
    PATIENT_MS = 30_000
    NO_REPLICA_MS = 500

    @pytest.fixture
    def acked(self, runtime: Any, replicated_redis: Any) -> Iterator[Callable[[int], Any]]:
        """The app on a primary with one replica, asking for one acknowledgement within
        the given milliseconds (default :attr:`PATIENT_MS`): a test client each call."""
        real = counting_runtime(runtime, replicated_redis.url, redis_min_replicas_ack=1)

        def app(timeout_ms: int = self.PATIENT_MS) -> Any:
            config = real.config.with_overrides(redis_replica_ack_timeout_ms=timeout_ms)
            return create_app(config, runtime=real).test_client()

        yield app
        real.jobs.broker.close()  # type: ignore[attr-defined]
        real.redis.close()
        install(runtime)

    def test_an_acknowledged_submit_is_on_the_replica_in_two_round_trips(
        self, acked: Any, replicated_redis: Any, submit_body: Callable[..., Any]
    ) -> None:
        app = acked()
        warm = app.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "warm-up-1"})
        assert warm.status_code == 202, warm.get_json()
        before = sends()
        response = app.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "acked-1x"})
        trips = sends() - before - 1  # minus the call of sends() itself
        assert response.status_code == 202, response.get_json()
        # The WAIT rides in the admission's round trip; the message follows the
        # acknowledgement (admission.message_for).
        assert trips == 2
        assert queue_depths(current().redis)["default"] == 2
        replica = redis_lib.Redis(port=replicated_redis.ports["b"], decode_responses=True)
        assert replica.exists(keys.checkout(response.get_json()["orderId"]))
        replica.close()

    def test_no_acknowledgement_is_503_and_the_same_key_replays_once_replicated(
        self, acked: Any, replicated_redis: Any, submit_body: Callable[..., Any]
    ) -> None:
        replicated_redis.kill("b")
        body = submit_body()
        alone = acked(self.NO_REPLICA_MS)
        refused = alone.post(SUBMIT, json=body, headers={"Idempotency-Key": "no-replica-1"})
        assert refused.status_code == 503
        assert refused.get_json()["error"]["code"] == "service_unavailable"
        assert queue_depths(current().redis)["default"] == 0  # no worker writes it
        replicated_redis.restart_replica()
        app = acked()
        retried = app.post(SUBMIT, json=body, headers={"Idempotency-Key": "no-replica-1"})
        assert retried.status_code == 202, retried.get_json()
        assert retried.headers["Idempotent-Replayed"] == "true"  # one order, not two
        # The 503 was never an answer: the first replay delivers the token, a guest's
        # first answer; a later replay (anyone's, the key is no credential) does not.
        assert retried.get_json()["checkoutToken"]
        again = app.post(SUBMIT, json=body, headers={"Idempotency-Key": "no-replica-1"})
        assert again.status_code == 202 and again.get_json()["checkoutToken"] is None
