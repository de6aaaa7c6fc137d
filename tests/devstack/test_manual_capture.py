"""Manual capture through the official SDK: the authorisation, its expiry, capture (full
and partial), voiding, refunds of a partially captured charge, and the events."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import Control, WebhookReceiver

RETURN_URL = "https://shop.example/return"


def authorise(
    client: stripe.StripeClient, amount: int = 5000, **params: Any
) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "capture_method": "manual",
            "confirm": True,
            "payment_method": "pm_card_visa",
            **params,
        }
    )


def types_for(receiver: WebhookReceiver, intent_id: str) -> list[str]:
    return [
        e["type"]
        for e in receiver.events()
        if intent_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
    ]


def wait_for_types(receiver: WebhookReceiver, intent_id: str, *wanted: str) -> list[str]:
    receiver.wait_for(lambda _: set(wanted) <= set(types_for(receiver, intent_id)))
    return types_for(receiver, intent_id)


class TestAuthorisation:
    def test_requires_capture_with_an_uncaptured_charge(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = authorise(client)

        assert pi.status == "requires_capture"
        assert pi.amount_capturable == 5000
        assert pi.amount_received == 0
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.captured is False
        assert charge.paid is True and charge.status == "succeeded"
        assert charge.amount_captured == 0
        card = charge.payment_method_details.card
        # Stripe: card authorisations lapse after 7 days.
        assert card.capture_before == charge.created + 7 * 86400
        assert card.amount_authorized == 5000
        wait_for_types(webhook_receiver, pi.id, "payment_intent.amount_capturable_updated")
        assert "payment_intent.succeeded" not in types_for(webhook_receiver, pi.id)

    def test_through_a_confirmation_token(self, client: stripe.StripeClient) -> None:
        ct = client.v1.test_helpers.confirmation_tokens.create(
            params={"payment_method": "pm_card_visa"}
        )
        pi = authorise(client, payment_method=None, confirmation_token=ct.id, return_url=RETURN_URL)
        assert pi.status == "requires_capture"
        assert pi.amount_capturable == 5000

    def test_authorisation_expiry_cancels_the_intent(
        self, client: stripe.StripeClient, control: Control, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = authorise(client)

        expired = control.post(f"payment_intents/{pi.id}/expire_authorization")

        assert expired["status"] == "canceled"
        assert expired["cancellation_reason"] == "automatic"
        assert expired["amount_capturable"] == 0
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.refunded is True and charge.amount_refunded == 5000
        assert charge.captured is False
        types = wait_for_types(webhook_receiver, pi.id, "charge.expired", "payment_intent.canceled")
        assert "payment_intent.succeeded" not in types
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.capture(pi.id)
        assert err.value.code == "payment_intent_unexpected_state"

    def test_expiry_needs_an_authorisation(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        pi = authorise(client, capture_method="automatic")
        answer = requests.post(
            f"{stripe_emulator.url}/_emulator/payment_intents/{pi.id}/expire_authorization",
            timeout=5,
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "payment_intent_unexpected_state"

    def test_a_short_authorisation_window_lapses_on_its_own(
        self, client: stripe.StripeClient, control: Control, webhook_receiver: WebhookReceiver
    ) -> None:
        control.post("timing", {"authorizationWindowSeconds": 0.2})
        pi = authorise(client)
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.payment_method_details.card.capture_before <= charge.created + 1

        wait_for_types(webhook_receiver, pi.id, "charge.expired", "payment_intent.canceled")

        latest = client.v1.payment_intents.retrieve(pi.id)
        assert (latest.status, latest.cancellation_reason) == ("canceled", "automatic")

    def test_reset_restores_the_timing(self, control: Control) -> None:
        control.post("timing", {"authorizationWindowSeconds": 5, "bankDebitSettleMs": 10})
        control.post("reset")
        timing = control.get("timing")
        assert timing["authorizationWindowSeconds"] == 7 * 86400
        assert timing["bankDebitSettleMs"] is None


class TestCapture:
    def test_full_capture_events(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = authorise(client)

        pi = client.v1.payment_intents.capture(pi.id)

        assert pi.status == "succeeded"
        assert (pi.amount_received, pi.amount_capturable) == (5000, 0)
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.captured is True and charge.amount_captured == 5000
        wait_for_types(webhook_receiver, pi.id, "charge.captured", "payment_intent.succeeded")

    def test_partial_capture_releases_the_rest(self, client: stripe.StripeClient) -> None:
        pi = authorise(client)

        pi = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 3000})

        assert pi.status == "succeeded"
        assert pi.amount_received == 3000
        assert pi.amount_capturable == 0
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.amount_captured == 3000
        assert charge.amount_refunded == 2000  # the released remainder
        assert charge.refunded is False

    def test_refunds_of_a_partial_capture_stop_at_the_captured_amount(
        self, client: stripe.StripeClient
    ) -> None:
        pi = authorise(client)
        client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 3000})

        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 3001})
        assert "greater than unrefunded amount" in str(err.value.user_message)
        first = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000})
        rest = client.v1.refunds.create(params={"payment_intent": pi.id})

        assert (first.amount, rest.amount) == (1000, 2000)
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.refunded is True
        assert charge.amount_refunded == 5000
        with pytest.raises(stripe.InvalidRequestError) as again:
            client.v1.refunds.create(params={"payment_intent": pi.id})
        assert again.value.code == "charge_already_refunded"

    def test_an_uncaptured_charge_cannot_be_refunded(self, client: stripe.StripeClient) -> None:
        pi = authorise(client)
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.refunds.create(params={"charge": pi.latest_charge})


class TestVoid:
    def test_cancel_voids_the_authorisation(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = authorise(client)

        pi = client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "abandoned"})

        assert pi.status == "canceled"
        assert pi.amount_capturable == 0 and pi.amount_received == 0
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.captured is False and charge.refunded is True
        types = wait_for_types(webhook_receiver, pi.id, "payment_intent.canceled")
        assert "charge.captured" not in types
