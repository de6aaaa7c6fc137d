"""The webhook endpoint: signature cases, malformed bodies, enqueue."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import pytest
from dramatiq import Message

from app.gateways.jobs import queue_depths
from app.runtime import current
from app.services import webhooks
from devstack.perf.roundtrips import sends
from tests.api.conftest import run_queued

URL = "/api/webhooks/stripe"


def queued(broker: Any) -> list[Any]:
    """Every message waiting on the stub broker, decoded."""
    from dramatiq import Message

    return [Message.decode(raw) for q in broker.queues.values() for raw in list(q.queue)]


class TestStripeWebhook:
    def test_signed_event_is_enqueued(
        self, client: Any, broker: Any, gateway: Any, runtime: Any
    ) -> None:
        event = gateway.event("payment_intent.succeeded", {"id": "pi_1", "metadata": {}})
        body, header = gateway.signed(event)
        response = client.post(
            URL, data=body, headers={"Stripe-Signature": header}, content_type="application/json"
        )
        assert response.status_code == 200
        assert response.get_json() == {"received": True}
        messages = queued(broker)
        assert len(messages) == 1
        assert messages[0].actor_name == "handle_stripe_event"
        # The id only: Dramatiq logs a failing message's arguments; the body is kept aside.
        assert tuple(messages[0].args) == (event["id"],)
        assert webhooks.received_event(runtime.redis, event["id"]) == event

    def test_missing_signature(self, client: Any, broker: Any, gateway: Any) -> None:
        body, _ = gateway.signed(gateway.event("payment_intent.succeeded", {"id": "pi_1"}))
        response = client.post(URL, data=body, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "signature_invalid"
        assert queued(broker) == []

    def test_wrong_secret(self, client: Any, broker: Any) -> None:
        from tests.fakes import FakeGateway

        other = FakeGateway(webhook_secret="whsec_other")
        body, header = other.signed(other.event("payment_intent.succeeded", {"id": "pi_1"}))
        response = client.post(URL, data=body, headers={"Stripe-Signature": header})
        assert response.get_json()["error"]["code"] == "signature_invalid"
        assert queued(broker) == []

    def test_stale_signature(self, client: Any, broker: Any, gateway: Any) -> None:
        event = gateway.event("payment_intent.succeeded", {"id": "pi_1"})
        body, header = gateway.signed(event, timestamp=int(time.time()) - 301)
        response = client.post(URL, data=body, headers={"Stripe-Signature": header})
        assert response.get_json()["error"]["code"] == "signature_invalid"

    def test_tampered_body(self, client: Any, broker: Any, gateway: Any) -> None:
        body, header = gateway.signed(gateway.event("payment_intent.succeeded", {"id": "pi_1"}))
        response = client.post(
            URL, data=body.replace(b"pi_1", b"pi_2"), headers={"Stripe-Signature": header}
        )
        assert response.get_json()["error"]["code"] == "signature_invalid"
        assert queued(broker) == []

    def test_signed_but_not_json(self, client: Any, broker: Any, gateway: Any) -> None:
        body, header = gateway.signed(b"not json at all")
        response = client.post(URL, data=body, headers={"Stripe-Signature": header})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "malformed_json"
        assert queued(broker) == []

    @pytest.mark.parametrize(
        "payload",
        [{"hello": "world"}, {"id": "", "type": "payment_intent.succeeded"}, {"id": "evt_1"}],
    )
    def test_signed_but_not_an_event(
        self, client: Any, broker: Any, gateway: Any, payload: dict[str, Any]
    ) -> None:
        body, header = gateway.signed(payload)
        response = client.post(URL, data=body, headers={"Stripe-Signature": header})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "malformed_json"
        assert queued(broker) == []

    def test_card_details_in_events_are_not_refused(
        self, client: Any, broker: Any, gateway: Any
    ) -> None:
        charge = {
            "id": "ch_1",
            "payment_method_details": {"card": {"last4": "4242", "exp_month": 1}},
        }
        body, header = gateway.signed(gateway.event("charge.refunded", charge))
        assert client.post(URL, data=body, headers={"Stripe-Signature": header}).status_code == 200

    def test_not_rate_limited(self, broker: Any, runtime: Any, gateway: Any) -> None:
        from app import create_app

        app = create_app(
            runtime.config.with_overrides(ratelimit_enabled=True, ratelimit_checkout="1/minute"),
            runtime=runtime,
        )
        client = app.test_client()
        for _ in range(5):
            body, header = gateway.signed(gateway.event("payment_intent.succeeded", {"id": "p"}))
            assert (
                client.post(URL, data=body, headers={"Stripe-Signature": header}).status_code == 200
            )


class TestUnhandledTypesAtTheEdge:
    """Verified events no handler reads are acknowledged without queue, body or row."""

    @pytest.mark.parametrize(
        "type_", ["payment_intent.created", "charge.succeeded", "customer.created"]
    )
    def test_acknowledged_with_nothing_written(
        self, client: Any, broker: Any, gateway: Any, runtime: Any, type_: str
    ) -> None:
        from models import WebhookEvent

        event = gateway.event(type_, {"id": "pi_1", "metadata": {"orderId": "o-1"}})
        body, header = gateway.signed(event)
        before = unhandled_count(type_)
        response = client.post(URL, data=body, headers={"Stripe-Signature": header})
        assert response.status_code == 200
        assert response.get_json() == {"received": True}
        assert queued(broker) == []
        assert runtime.redis.keys("*") == []  # no kept body, nothing else
        assert WebhookEvent.select().count() == 0
        assert unhandled_count(type_) == before + 1

    def test_still_verified(self, client: Any, broker: Any, gateway: Any) -> None:
        body, header = gateway.signed(gateway.event("charge.succeeded", {"id": "ch_1"}))
        response = client.post(
            URL, data=body.replace(b"ch_1", b"ch_2"), headers={"Stripe-Signature": header}
        )
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "signature_invalid"

    @pytest.mark.parametrize("type_", sorted(webhooks.HANDLERS))
    def test_every_handled_type_is_queued(
        self, client: Any, broker: Any, gateway: Any, runtime: Any, type_: str
    ) -> None:
        event = gateway.event(type_, {"id": "pi_1", "metadata": {}})
        body, header = gateway.signed(event)
        before = unhandled_count(type_)
        assert client.post(URL, data=body, headers={"Stripe-Signature": header}).status_code == 200
        assert [tuple(m.args) for m in queued(broker)] == [(event["id"],)]
        assert webhooks.received_event(runtime.redis, event["id"]) == event
        assert unhandled_count(type_) == before

    def test_the_handled_list_is_the_handlers(self) -> None:
        assert frozenset(webhooks.HANDLERS) == webhooks.HANDLED_TYPES
        assert not webhooks.handled("payment_intent.created")
        assert webhooks.handled("payment_intent.succeeded")


def unhandled_count(type_: str) -> float:
    """This process's ``checkout_webhook_unhandled_total{type}``."""
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("checkout_webhook_unhandled_total", {"type": type_})
    return value or 0.0


@pytest.mark.realredis
class TestOneRoundTrip:
    """On the Redis broker a handled event's kept body and its message are written in one
    MULTI: one round trip, and a real Dramatiq worker runs the message."""

    def deliver(self, client: Any, event: dict[str, Any]) -> Any:
        body, header = current().gateway.signed(event)  # type: ignore[attr-defined]
        return client.post(URL, data=body, headers={"Stripe-Signature": header})

    def test_a_handled_event_costs_one_round_trip_its_message_included(
        self, counted_app: Any
    ) -> None:
        gateway: Any = current().gateway
        self.deliver(counted_app, gateway.event("payment_intent.succeeded", {"id": "pi_0"}))
        event = gateway.event("payment_intent.succeeded", {"id": "pi_1", "metadata": {}})
        before = sends()
        response = self.deliver(counted_app, event)
        trips = sends() - before - 1  # minus the call of sends() itself
        assert response.status_code == 200
        assert response.get_json() == {"received": True}
        assert trips == 1
        redis = current().redis
        assert webhooks.received_event(redis, event["id"]) == event
        assert queue_depths(redis)["default"] == 2  # the first delivery's and this one's
        ids = redis.lrange("dramatiq:default", 0, -1)
        assert set(ids) == set(redis.hkeys("dramatiq:default.msgs"))  # each on the queue
        message = Message.decode(redis.hget("dramatiq:default.msgs", ids[-1]).encode())
        assert (message.actor_name, tuple(message.args)) == ("handle_stripe_event", (event["id"],))
        assert message.options["redis_message_id"] == ids[-1]

    def test_a_failed_write_is_not_acknowledged(self, counted_app: Any) -> None:
        gateway: Any = current().gateway
        current().redis.set("dramatiq:default", "not a list")  # the RPUSH fails in the MULTI
        event = gateway.event("payment_intent.succeeded", {"id": "pi_2", "metadata": {}})
        response = self.deliver(counted_app, event)
        assert response.status_code == 503  # Stripe delivers it again later
        assert response.get_json()["error"]["code"] == "service_unavailable"

    def test_a_dramatiq_worker_runs_the_message(self, counted_app: Any) -> None:
        broker = current().jobs.broker  # type: ignore[attr-defined]
        ran: list[str] = []

        @dramatiq.actor(actor_name="handle_stripe_event", queue_name="default", broker=broker)
        def handle_stripe_event(event_id: str) -> None:
            ran.append(event_id)

        gateway: Any = current().gateway
        event = gateway.event("payment_intent.succeeded", {"id": "pi_3", "metadata": {}})
        assert self.deliver(counted_app, event).status_code == 200
        run_queued(broker)
        assert ran == [event["id"]]
        assert queue_depths(current().redis)["default"] == 0  # acknowledged: gone
