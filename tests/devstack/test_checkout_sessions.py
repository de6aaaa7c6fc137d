"""Checkout Sessions: the API through the official SDK, the control endpoint that pays
like the hosted page, the hosted page itself over plain HTTP, and the events."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import Control, WebhookReceiver


def create_session(client: stripe.StripeClient, **params: Any) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1400,
                        "product_data": {"name": "Mug"},
                    },
                    "quantity": 2,
                },
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 231,
                        "product_data": {"name": "Tax"},
                    },
                    "quantity": 1,
                },
            ],
            "shipping_options": [
                {
                    "shipping_rate_data": {
                        "type": "fixed_amount",
                        "fixed_amount": {"amount": 500, "currency": "usd"},
                        "display_name": "Standard",
                    }
                }
            ],
            "success_url": "https://shop.example/done?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://shop.example/cart",
            "customer_email": "buyer@example.com",
            "metadata": {"orderId": "ord_1"},
            "payment_intent_data": {"metadata": {"orderId": "ord_1", "reservationId": "res_1"}},
            "expires_at": int(time.time()) + 3600,
            **params,
        }
    )


def pay(control: Control, session_id: str, method: str) -> requests.Response:
    return requests.post(
        f"{control.base}/_emulator/checkout_sessions/{session_id}/pay",
        json={"paymentMethod": method},
        timeout=10,
    )


def session_events(receiver: WebhookReceiver, session_id: str) -> list[str]:
    return [
        e["type"]
        for e in receiver.events()
        if e["type"].startswith("checkout.session.") and e["data"]["object"]["id"] == session_id
    ]


class TestCreate:
    def test_totals_lines_and_hosted_url(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        session = create_session(client)

        assert session.id.startswith("cs_test_")
        assert (session.status, session.payment_status) == ("open", "unpaid")
        assert session.amount_subtotal == 2 * 1400 + 231
        assert session.amount_total == 2 * 1400 + 231 + 500
        assert session.total_details.amount_shipping == 500
        assert session.url == f"{stripe_emulator.url}/c/pay/{session.id}"
        assert session.payment_intent is None
        items = client.v1.checkout.sessions.line_items.list(session.id)
        assert [(i.description, i.quantity, i.amount_total) for i in items.data] == [
            ("Mug", 2, 2800),
            ("Tax", 1, 231),
        ]
        assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 3531
        listed = client.v1.checkout.sessions.list({"status": "open"})
        assert [s.id for s in listed.data] == [session.id]

    @pytest.mark.parametrize("ahead", [60, 25 * 3600])
    def test_expires_at_must_be_30_minutes_to_24_hours_ahead(
        self, client: stripe.StripeClient, ahead: int
    ) -> None:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            create_session(client, expires_at=int(time.time()) + ahead)
        assert refused.value.param == "expires_at"

    def test_only_payment_mode_with_price_data(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            create_session(client, mode="subscription")
        assert refused.value.param == "mode"
        with pytest.raises(stripe.InvalidRequestError) as refused:
            create_session(client, line_items=[{"quantity": 1}])
        assert refused.value.param == "line_items[0][price_data]"

    def test_a_coupon_takes_its_amount_off_the_lines_not_the_shipping(
        self, client: stripe.StripeClient, contract: Any
    ) -> None:
        coupon = client.v1.coupons.create(
            {"amount_off": 300, "currency": "usd", "duration": "once", "max_redemptions": 1}
        )

        session = create_session(client, discounts=[{"coupon": coupon.id}])

        assert session.total_details.amount_discount == 300
        assert session.amount_total == 2 * 1400 + 231 - 300 + 500
        assert session.discounts[0].coupon == coupon.id
        assert client.v1.coupons.retrieve(coupon.id).valid is False  # redeemed once
        with pytest.raises(stripe.InvalidRequestError) as refused:
            create_session(client, discounts=[{"coupon": coupon.id}])
        assert refused.value.param == "discounts[0][coupon]"
        if contract is not None:
            contract.validate_body(client.v1.coupons.retrieve(coupon.id).to_dict(), "coupon")

    def test_idempotency_key_replays_the_same_session(self, client: stripe.StripeClient) -> None:
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 900,
                        "product_data": {"name": "Cap"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://shop.example/done",
        }
        first = client.v1.checkout.sessions.create(params, {"idempotency_key": "order-1"})  # type: ignore[arg-type]
        again = client.v1.checkout.sessions.create(params, {"idempotency_key": "order-1"})  # type: ignore[arg-type]
        assert again.id == first.id


class TestPay:
    def test_card_completes_the_session_paid_with_the_intent_metadata(
        self,
        client: stripe.StripeClient,
        control: Control,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        session = create_session(client)

        paid = pay(control, session.id, "pm_card_visa")

        assert paid.status_code == 200, paid.text
        body = paid.json()
        assert (body["status"], body["payment_status"]) == ("complete", "paid")
        intent = client.v1.payment_intents.retrieve(body["payment_intent"])
        assert intent.status == "succeeded"
        assert intent.amount == 3531
        assert intent.metadata.to_dict() == {"orderId": "ord_1", "reservationId": "res_1"}
        webhook_receiver.wait_for(lambda _: session_events(webhook_receiver, session.id))
        assert session_events(webhook_receiver, session.id) == ["checkout.session.completed"]

    def test_decline_keeps_the_session_open_for_a_retry(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        session = create_session(client)

        declined = pay(control, session.id, "pm_card_chargeDeclined")
        assert declined.status_code == 402
        assert declined.json()["error"]["decline_code"] == "generic_decline"
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

        again = pay(control, session.id, "pm_card_visa")
        assert again.json()["payment_status"] == "paid"

    def test_three_d_secure_waits_for_authentication(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        session = create_session(client)

        body = pay(control, session.id, "pm_card_threeDSecure2Required").json()
        assert body["status"] == "open"
        control.post(
            f"payment_intents/{body['payment_intent']}/authenticate", {"outcome": "complete"}
        )

        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"

    def test_bank_debit_completes_unpaid_then_settles_asynchronously(
        self,
        client: stripe.StripeClient,
        control: Control,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        succeeding = create_session(client)
        failing = create_session(client)

        body = pay(control, succeeding.id, "pm_emulator_bank_debit").json()
        assert (body["status"], body["payment_status"]) == ("complete", "unpaid")
        control.post(f"payment_intents/{body['payment_intent']}/settle", {"outcome": "succeeded"})
        bad = pay(control, failing.id, "pm_emulator_bank_debit").json()
        control.post(f"payment_intents/{bad['payment_intent']}/settle", {"outcome": "failed"})

        assert client.v1.checkout.sessions.retrieve(succeeding.id).payment_status == "paid"
        webhook_receiver.wait_for(lambda _: len(session_events(webhook_receiver, failing.id)) == 2)
        assert session_events(webhook_receiver, succeeding.id) == [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
        ]
        assert session_events(webhook_receiver, failing.id) == [
            "checkout.session.completed",
            "checkout.session.async_payment_failed",
        ]

    def test_manual_capture_completes_unpaid_and_the_capture_pays_it(
        self,
        client: stripe.StripeClient,
        control: Control,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        session = create_session(
            client,
            payment_intent_data={"metadata": {"orderId": "ord_1"}, "capture_method": "manual"},
        )

        body = pay(control, session.id, "pm_card_visa").json()
        assert (body["status"], body["payment_status"]) == ("complete", "unpaid")
        client.v1.payment_intents.capture(body["payment_intent"])

        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
        webhook_receiver.wait_for(lambda _: session_events(webhook_receiver, session.id))
        assert session_events(webhook_receiver, session.id) == ["checkout.session.completed"]


class TestExpire:
    def test_expire_ends_an_open_session_and_cancels_its_intent(
        self,
        client: stripe.StripeClient,
        control: Control,
        webhook_receiver: WebhookReceiver,
    ) -> None:
        session = create_session(client)
        declined = pay(control, session.id, "pm_card_chargeDeclined").json()
        intent_id = declined["error"]["payment_intent"]["id"]

        expired = client.v1.checkout.sessions.expire(session.id)

        assert (expired.status, expired.url) == ("expired", None)
        assert client.v1.payment_intents.retrieve(intent_id).status == "canceled"
        assert pay(control, session.id, "pm_card_visa").status_code == 400
        webhook_receiver.wait_for(lambda _: session_events(webhook_receiver, session.id))
        assert session_events(webhook_receiver, session.id) == ["checkout.session.expired"]

    def test_a_paid_session_cannot_expire(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        session = create_session(client)
        pay(control, session.id, "pm_card_visa")

        with pytest.raises(stripe.InvalidRequestError):
            client.v1.checkout.sessions.expire(session.id)


class TestHostedPage:
    def card(self, number: str) -> dict[str, str]:
        return {"method": "card", "number": number, "expiry": "12 / 34", "cvc": "123", "name": "J"}

    def test_page_pays_and_redirects_with_the_session_id(self, client: stripe.StripeClient) -> None:
        session = create_session(client)

        page = requests.get(session.url, timeout=10)
        assert page.status_code == 200
        assert "Card number" in page.text and "$35.31" in page.text
        paid = requests.post(
            session.url, data=self.card("4242 4242 4242 4242"), allow_redirects=False, timeout=10
        )

        assert paid.status_code == 303
        assert paid.headers["Location"] == f"https://shop.example/done?session_id={session.id}"
        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"

    def test_decline_shows_the_form_again_then_three_d_secure(
        self, client: stripe.StripeClient
    ) -> None:
        session = create_session(client)

        declined = requests.post(session.url, data=self.card("4000000000000002"), timeout=10)
        assert declined.status_code == 402
        assert "Your card was declined." in declined.text
        challenge = requests.post(session.url, data=self.card("4000000000003220"), timeout=10)
        assert "Complete authentication" in challenge.text
        done = requests.post(
            f"{session.url}/authenticate",
            data={"outcome": "complete"},
            allow_redirects=False,
            timeout=10,
        )

        assert done.status_code == 303
        assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"

    def test_a_bank_debit_from_the_page_completes_unpaid(self, client: stripe.StripeClient) -> None:
        session = create_session(client)
        assert "Pay by bank debit" in requests.get(session.url, timeout=10).text

        sent = requests.post(
            session.url,
            data={"method": "us_bank_account", "account_number": "000123456789", "name": "J R"},
            allow_redirects=False,
            timeout=10,
        )

        assert sent.status_code == 303
        now = client.v1.checkout.sessions.retrieve(session.id)
        assert (now.status, now.payment_status) == ("complete", "unpaid")

    def test_cancel_link_goes_back_to_the_shop(self, client: stripe.StripeClient) -> None:
        session = create_session(client)

        back = requests.get(f"{session.url}/cancel", allow_redirects=False, timeout=10)

        assert back.headers["Location"] == "https://shop.example/cart"
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
