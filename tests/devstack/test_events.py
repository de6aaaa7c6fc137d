"""The events each change emits, and ``/v1/events`` with its filters."""

from __future__ import annotations

import pytest
import stripe

from .conftest import Control


def types(client: stripe.StripeClient, **params: object) -> list[str]:
    page = client.v1.events.list(params={"limit": 100, **params})  # type: ignore[arg-type]
    return [e.type for e in reversed(page.data)]  # oldest first


class TestEmittedEvents:
    def test_success(self, client: stripe.StripeClient) -> None:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )
        assert types(client) == [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]

    def test_decline(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        with pytest.raises(stripe.CardError):
            client.v1.payment_intents.confirm(
                pi.id, params={"payment_method": "pm_card_chargeDeclined"}
            )
        assert types(client) == [
            "payment_intent.created",
            "charge.failed",
            "payment_intent.payment_failed",
        ]

    def test_three_d_secure_and_processing(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_threeDSecure2Required",
                "confirm": True,
            }
        )
        control.post(f"payment_intents/{pi.id}/authenticate", {"outcome": "complete"})
        assert types(client) == [
            "payment_intent.created",
            "payment_intent.requires_action",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]
        client_delayed = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_emulator_delayed",
                "confirm": True,
            }
        )
        control.post(f"payment_intents/{client_delayed.id}/settle", {"outcome": "succeeded"})
        assert types(client)[-5:] == [
            "payment_intent.created",
            "charge.pending",
            "payment_intent.processing",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]

    def test_manual_capture_cancel_and_refund(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
                "capture_method": "manual",
            }
        )
        client.v1.payment_intents.capture(pi.id)
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
        other = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        client.v1.payment_intents.cancel(other.id, params={"cancellation_reason": "abandoned"})
        assert types(client) == [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.amount_capturable_updated",
            "charge.captured",
            "payment_intent.succeeded",
            "charge.refunded",
            "refund.created",
            "payment_intent.created",
            "payment_intent.canceled",
        ]

    def test_event_shape(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "evt-shape"}
        )
        event = client.v1.events.list().data[0]
        assert event.object == "event" and event.type == "payment_intent.created"
        assert event.api_version and event.livemode is False and event.pending_webhooks == 0
        assert event.request.id.startswith("req_") and event.request.idempotency_key == "evt-shape"
        assert event.data.object.id == pi.id
        assert client.v1.events.retrieve(event.id).id == event.id

    def test_snapshots_do_not_change(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        client.v1.payment_intents.update(pi.id, params={"amount": 2000})
        created = client.v1.events.list(params={"type": "payment_intent.created"}).data[0]
        assert created.data.object.amount == 1000


class TestEventFilters:
    @pytest.fixture(autouse=True)
    def _history(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )
        client.v1.refunds.create(params={"payment_intent": pi.id})

    def test_type(self, client: stripe.StripeClient) -> None:
        assert types(client, type="charge.refunded") == ["charge.refunded"]

    def test_wildcard(self, client: stripe.StripeClient) -> None:
        assert types(client, type="charge.*") == ["charge.succeeded", "charge.refunded"]

    def test_types_list(self, client: stripe.StripeClient) -> None:
        assert types(client, types=["refund.created", "payment_intent.succeeded"]) == [
            "payment_intent.succeeded",
            "refund.created",
        ]

    def test_created(self, client: stripe.StripeClient) -> None:
        newest = client.v1.events.list(params={"limit": 1}).data[0]
        assert len(types(client, created={"gte": newest.created})) >= 1
        assert types(client, created={"gt": newest.created}) == []
        assert len(types(client, created={"lte": newest.created})) == 5

    def test_pagination(self, client: stripe.StripeClient) -> None:
        page = client.v1.events.list(params={"limit": 2})
        assert page.has_more and page.url == "/v1/events"
        rest = client.v1.events.list(params={"limit": 10, "starting_after": page.data[-1].id})
        assert len(rest.data) == 3 and not rest.has_more

    def test_type_and_types_together_are_refused(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.events.list(params={"type": "charge.*", "types": ["refund.created"]})

    def test_cursor_outside_the_filter(self, client: stripe.StripeClient) -> None:
        succeeded = client.v1.events.list(params={"type": "payment_intent.succeeded"}).data[0]
        page = client.v1.events.list(params={"type": "charge.*", "starting_after": succeeded.id})
        assert [e.type for e in page.data] == ["charge.succeeded"]
        back = client.v1.events.list(params={"type": "charge.*", "ending_before": succeeded.id})
        assert [e.type for e in back.data] == ["charge.refunded"]
