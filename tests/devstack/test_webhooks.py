"""Webhook delivery: Stripe's signature, retries with backoff, the delivery log, chaos."""

from __future__ import annotations

import time

import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import WEBHOOK_SECRET, Control, WebhookReceiver


def pay(client: stripe.StripeClient, **params: object) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            **params,
        }  # type: ignore[arg-type]
    )


def wait_for_log(
    control: Control, predicate: object, timeout: float = 10.0
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = control.deliveries()
        if predicate(rows):  # type: ignore[operator]
            return rows
        assert time.monotonic() < deadline, f"delivery log never matched: {rows}"
        time.sleep(0.05)


class TestDelivery:
    def test_every_delivery_verifies_with_the_sdk(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = pay(client, metadata={"orderId": "w1"})
        webhook_receiver.wait_for(
            lambda evs: (
                {e["type"] for e in evs}
                >= {"payment_intent.created", "charge.succeeded", "payment_intent.succeeded"}
            )
        )
        for received in webhook_receiver.received:
            assert received.signature and received.signature.startswith("t=")
            assert ",v1=" in received.signature
        events = webhook_receiver.events()
        succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")
        assert succeeded["data"]["object"]["id"] == pi.id
        assert succeeded["data"]["object"]["metadata"] == {"orderId": "w1"}
        assert succeeded["livemode"] is False and succeeded["object"] == "event"
        assert succeeded["request"]["idempotency_key"]

    def test_wrong_secret_does_not_verify(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pay(client)
        webhook_receiver.wait_for(lambda evs: len(evs) >= 1)
        first = webhook_receiver.received[0]
        try:
            stripe.Webhook.construct_event(first.body.decode(), first.signature, "whsec_wrong")
        except stripe.SignatureVerificationError:
            pass
        else:
            raise AssertionError("a signature made with another secret verified")

    def test_retries_stop_at_the_first_2xx(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver, control: Control
    ) -> None:
        webhook_receiver.fail_first = 2
        pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        rows = wait_for_log(control, lambda rows: any(r["ok"] for r in rows))
        time.sleep(0.5)  # would-be extra retries have had their chance
        rows = control.deliveries(type="payment_intent.created")
        assert [(r["attempt"], r["statusCode"], r["ok"]) for r in rows] == [
            (1, 500, False),
            (2, 500, False),
            (3, 200, True),
        ]
        assert rows[0]["nextRetryInMs"] == 100 and rows[1]["nextRetryInMs"] == 200
        assert all(r["eventId"] == rows[0]["eventId"] for r in rows)
        event = client.v1.events.retrieve(rows[0]["eventId"])
        assert event.data.object.id == pi.id
        assert event.pending_webhooks == 0

    def test_gives_up_after_max_attempts(
        self,
        client: stripe.StripeClient,
        webhook_receiver: WebhookReceiver,
        control: Control,
        stripe_emulator: EmulatorServer,
    ) -> None:
        requests.post(
            f"{stripe_emulator.url}/_emulator/webhook", json={"maxAttempts": 3}, timeout=5
        )
        webhook_receiver.fail_first = 100
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        rows = wait_for_log(control, lambda rows: len(rows) >= 3)
        time.sleep(0.6)
        rows = control.deliveries()
        assert [r["attempt"] for r in rows] == [1, 2, 3]
        assert rows[-1]["nextRetryInMs"] is None
        assert client.v1.events.retrieve(rows[0]["eventId"]).pending_webhooks == 1

    def test_unreachable_endpoint_is_logged_as_an_error(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer, control: Control
    ) -> None:
        requests.post(
            f"{stripe_emulator.url}/_emulator/webhook",
            json={"url": "http://127.0.0.1:9/nothing", "secret": WEBHOOK_SECRET, "maxAttempts": 1},
            timeout=5,
        )
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        rows = wait_for_log(control, lambda rows: len(rows) >= 1)
        assert rows[0]["statusCode"] is None and rows[0]["error"]

    def test_resend(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver, control: Control
    ) -> None:
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        webhook_receiver.wait_for(lambda evs: len(evs) == 1)
        event_id = webhook_receiver.events()[0]["id"]
        control.post(f"events/{event_id}/resend")
        webhook_receiver.wait_for(lambda evs: [e["id"] for e in evs] == [event_id, event_id])

    def test_webhook_configuration_round_trip(self, stripe_emulator: EmulatorServer) -> None:
        url = f"{stripe_emulator.url}/_emulator/webhook"
        bad = requests.post(url, json={"secret": "not-a-whsec"}, timeout=5)
        assert bad.status_code == 400
        shown = requests.post(
            url, json={"url": "http://127.0.0.1:1/x", "timeoutMs": 250}, timeout=5
        ).json()
        assert shown["url"] == "http://127.0.0.1:1/x" and shown["timeoutMs"] == 250


class TestEnabledEvents:
    """Stripe's ``enabled_events``: the endpoint receives only the types it enables."""

    def test_other_types_are_neither_delivered_nor_logged_nor_pending(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver, control: Control
    ) -> None:
        control.post("webhook", {"enabledEvents": ["payment_intent.succeeded"]})
        pi = pay(client)
        webhook_receiver.wait_for(lambda evs: len(evs) >= 1)
        time.sleep(0.3)  # the other events' deliveries would have started by now
        assert [e["type"] for e in webhook_receiver.events()] == ["payment_intent.succeeded"]
        assert [r["type"] for r in control.deliveries()] == ["payment_intent.succeeded"]
        events = client.v1.events.list(params={"limit": 10}).data
        created = next(e for e in events if e.type == "payment_intent.created")
        assert created.data.object.id == pi.id
        assert created.pending_webhooks == 0  # no endpoint waits for it
        with_chaos = {"duplicateRate": 1, "reorderRate": 1}
        control.post("chaos", with_chaos)  # chaos does not bring a disabled type back
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        time.sleep(0.3)
        assert len(control.deliveries()) == 1

    def test_resending_a_type_the_endpoint_does_not_enable_is_refused(
        self,
        client: stripe.StripeClient,
        webhook_receiver: WebhookReceiver,
        control: Control,
        stripe_emulator: EmulatorServer,
    ) -> None:
        control.post("webhook", {"enabledEvents": ["payment_intent.canceled"]})
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        (event,) = client.v1.events.list(params={"limit": 10}).data
        url = f"{stripe_emulator.url}/_emulator/events/{event.id}/resend"
        refused = requests.post(url, timeout=5)
        assert refused.status_code == 400
        assert "payment_intent.created" in refused.json()["error"]["message"]
        assert control.deliveries() == []

    def test_the_list_is_set_shown_checked_and_reset_to_all(
        self, stripe_emulator: EmulatorServer
    ) -> None:
        url = f"{stripe_emulator.url}/_emulator/webhook"
        wanted = ["payment_intent.succeeded", "charge.refunded"]
        shown = requests.post(url, json={"enabledEvents": wanted}, timeout=5).json()
        assert shown["enabledEvents"] == wanted
        for bad in ([], "payment_intent.succeeded", [""], ["a,b"], [1]):
            refused = requests.post(url, json={"enabledEvents": bad}, timeout=5)
            assert refused.status_code == 400, bad
            assert refused.json()["error"]["param"] == "enabledEvents"
        assert requests.get(url, timeout=5).json()["enabledEvents"] == wanted
        shown = requests.post(url, json={"enabledEvents": ["*"]}, timeout=5).json()
        assert shown["enabledEvents"] == ["*"]


class TestChaosDelivery:
    def test_duplicates_show_in_the_log(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver, control: Control
    ) -> None:
        control.post("chaos", {"duplicateRate": 1})
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        rows = wait_for_log(control, lambda rows: len(rows) >= 2)
        assert sorted(r["duplicate"] for r in rows) == [False, True]
        assert rows[0]["eventId"] == rows[1]["eventId"]
        webhook_receiver.wait_for(lambda evs: len(evs) == 2 and evs[0]["id"] == evs[1]["id"])

    def test_reordering_shows_in_the_log(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver, control: Control
    ) -> None:
        control.post("chaos", {"reorderRate": 1})
        pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        control.post("chaos", {"reorderRate": 0})
        client.v1.payment_intents.cancel(pi.id)
        rows = wait_for_log(control, lambda rows: len(rows) >= 2)
        assert [r["type"] for r in rows] == ["payment_intent.canceled", "payment_intent.created"]
        assert rows[1]["reordered"] is True and rows[0]["reordered"] is False
        webhook_receiver.wait_for(lambda evs: len(evs) == 2)
        assert [e["type"] for e in webhook_receiver.events()] == [
            "payment_intent.canceled",
            "payment_intent.created",
        ]

    def test_delivery_delay(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver, control: Control
    ) -> None:
        control.post("chaos", {"deliveryDelayMs": 300})
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
        rows = wait_for_log(control, lambda rows: len(rows) == 1)
        assert rows[0]["delayMs"] == 300 and rows[0]["ok"] is True
