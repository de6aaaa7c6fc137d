"""ConfirmationTokens through the official SDK: the test helper, retrieval, confirming a
PaymentIntent with one (on create and on /confirm), single use and expiry."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer
from devstack.stripe_emulator.cards import TEST_BANK_METHODS, TEST_PAYMENT_METHODS

from .conftest import PUBLISHABLE_KEY, Contract, Control, WebhookReceiver

RETURN_URL = "https://shop.example/return"
SHIPPING = {
    "name": "Jenny Rosen",
    "phone": "+15555550100",
    "address": {
        "line1": "1234 Fake Street",
        "city": "San Francisco",
        "state": "CA",
        "postal_code": "94102",
        "country": "US",
    },
}


def token(client: stripe.StripeClient, **params: Any) -> stripe.ConfirmationToken:
    return client.v1.test_helpers.confirmation_tokens.create(params=params)  # type: ignore[arg-type]


def confirm_new(client: stripe.StripeClient, ctoken: str, **params: Any) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "automatic_payment_methods": {"enabled": True},
            "confirm": True,
            "confirmation_token": ctoken,
            "return_url": RETURN_URL,
            **params,
        }
    )


class TestCreate:
    def test_test_helper_token_carries_the_buyers_choices(
        self, client: stripe.StripeClient, contract: Contract | None
    ) -> None:
        ct = token(
            client,
            payment_method="pm_card_visa",
            return_url=RETURN_URL,
            shipping=SHIPPING,
            setup_future_usage="off_session",
        )

        assert ct.id.startswith("ctoken_")
        assert ct.object == "confirmation_token"
        assert ct.expires_at - ct.created == 12 * 3600
        assert ct.payment_intent is None and ct.setup_intent is None
        assert ct.use_stripe_sdk is False
        assert ct.return_url == RETURN_URL
        assert ct.setup_future_usage == "off_session"
        assert ct.shipping.name == "Jenny Rosen"
        assert ct.shipping.address.postal_code == "94102"
        preview = ct.payment_method_preview
        assert preview.type == "card"
        assert (preview.card.brand, preview.card.last4) == ("visa", "4242")
        again = client.v1.confirmation_tokens.retrieve(ct.id)
        assert again.to_dict() == ct.to_dict()
        if contract is not None:
            contract.check_fixture_keys(again.to_dict(), "retrieve")
            assert contract.checked["fixture:confirmation_token"] >= 1

    @pytest.mark.parametrize("method", sorted(TEST_PAYMENT_METHODS) + sorted(TEST_BANK_METHODS))
    def test_every_test_method_makes_a_token(
        self, client: stripe.StripeClient, method: str
    ) -> None:
        ct = token(client, payment_method=method)
        preview = ct.payment_method_preview
        assert preview.type == ("us_bank_account" if "bank" in method else "card")

    def test_payment_method_data_bank_account(self, client: stripe.StripeClient) -> None:
        ct = token(
            client,
            payment_method_data={
                "type": "us_bank_account",
                "billing_details": {"name": "Jane Austen"},
                "us_bank_account": {
                    "routing_number": "110000000",
                    "account_number": "000123456789",
                    "account_holder_type": "individual",
                },
            },
        )
        bank = ct.payment_method_preview.us_bank_account
        assert (bank.last4, bank.routing_number, bank.bank_name) == (
            "6789",
            "110000000",
            "STRIPE TEST BANK",
        )
        assert ct.payment_method_preview.billing_details.name == "Jane Austen"

    def test_needs_a_payment_method(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            token(client, return_url=RETURN_URL)
        assert err.value.code == "parameter_missing"

    def test_unknown_token_is_a_404(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.confirmation_tokens.retrieve("ctoken_nope")
        assert err.value.http_status == 404
        assert err.value.code == "resource_missing"

    def test_stripe_js_endpoint_takes_only_a_publishable_key(
        self, stripe_emulator: EmulatorServer, client: stripe.StripeClient
    ) -> None:
        answer = requests.post(
            f"{stripe_emulator.url}/v1/confirmation_tokens",
            data={
                "payment_method_data[type]": "card",
                "payment_method_data[card][number]": "4242424242424242",
                "payment_method_data[card][exp_month]": "12",
                "payment_method_data[card][exp_year]": "2040",
                "payment_method_data[card][cvc]": "123",
                "return_url": RETURN_URL,
            },
            headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["use_stripe_sdk"] is True
        assert body["payment_method_preview"]["card"]["last4"] == "4242"
        assert client.v1.confirmation_tokens.retrieve(body["id"]).id == body["id"]
        # With a secret key the endpoint does not exist, as at Stripe (the test helper does).
        secret = requests.post(
            f"{stripe_emulator.url}/v1/confirmation_tokens",
            data={"payment_method": "pm_card_visa"},
            headers={"Authorization": "Bearer sk_test_emulator_suite"},
            timeout=5,
        )
        assert secret.status_code == 404
        assert secret.json()["error"]["type"] == "invalid_request_error"


class TestConfirm:
    def test_on_create_with_confirm_true(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        ct = token(client, payment_method="pm_card_visa", shipping=SHIPPING)

        pi = confirm_new(client, ct.id, metadata={"orderId": "ord_1"})

        assert pi.status == "succeeded"
        assert pi.amount_received == 2500
        assert pi.shipping.name == "Jenny Rosen"
        assert pi.shipping.address.city == "San Francisco"
        method = client.v1.payment_methods.retrieve(pi.payment_method)
        assert method.card.last4 == "4242"
        assert client.v1.confirmation_tokens.retrieve(ct.id).payment_intent == pi.id
        webhook_receiver.wait_for(
            lambda evs: any(
                e["type"] == "payment_intent.succeeded" and e["data"]["object"]["id"] == pi.id
                for e in evs
            )
        )

    def test_on_confirm(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1200,
                "currency": "usd",
                "automatic_payment_methods": {"enabled": True},
            }
        )
        ct = token(client, payment_method="pm_card_mastercard", return_url=RETURN_URL)

        # The token's return_url counts: no return_url in the confirm itself.
        pi = client.v1.payment_intents.confirm(pi.id, params={"confirmation_token": ct.id})

        assert pi.status == "succeeded"
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.payment_method_details.card.brand == "mastercard"

    def test_request_parameters_win_over_the_tokens(self, client: stripe.StripeClient) -> None:
        ct = token(client, payment_method="pm_card_chargeDeclined", shipping=SHIPPING)
        other = {**SHIPPING, "name": "Ada Lovelace"}

        pi = confirm_new(client, ct.id, payment_method="pm_card_visa", shipping=other)

        assert pi.status == "succeeded"
        assert pi.shipping.name == "Ada Lovelace"

    def test_needs_a_return_url_like_payment_method_does(self, client: stripe.StripeClient) -> None:
        ct = token(client, payment_method="pm_card_visa")
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.create(
                params={
                    "amount": 1000,
                    "currency": "usd",
                    "automatic_payment_methods": {"enabled": True},
                    "confirm": True,
                    "confirmation_token": ct.id,
                }
            )
        assert err.value.param == "return_url"
        # Refused before the attempt: the token is still unused.
        assert client.v1.confirmation_tokens.retrieve(ct.id).payment_intent is None

    def test_only_with_confirm_true(self, client: stripe.StripeClient) -> None:
        ct = token(client, payment_method="pm_card_visa")
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.create(
                params={"amount": 1000, "currency": "usd", "confirmation_token": ct.id}
            )
        assert err.value.param == "confirmation_token"

    def test_three_d_secure_goes_to_requires_action(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        ct = token(client, payment_method="pm_card_threeDSecure2Required")

        pi = confirm_new(client, ct.id)

        assert pi.status == "requires_action"
        assert pi.next_action.type == "use_stripe_sdk"
        done = control.post(f"payment_intents/{pi.id}/authenticate", {"outcome": "complete"})
        assert done["status"] == "succeeded"

    def test_decline_answers_stripes_card_error(self, client: stripe.StripeClient) -> None:
        ct = token(client, payment_method="pm_card_chargeDeclinedInsufficientFunds")

        with pytest.raises(stripe.CardError) as err:
            confirm_new(client, ct.id)

        assert err.value.code == "card_declined"
        assert err.value.json_body["error"]["decline_code"] == "insufficient_funds"
        intent_id = err.value.json_body["error"]["payment_intent"]["id"]
        pi = client.v1.payment_intents.retrieve(intent_id)
        assert pi.status == "requires_payment_method"
        assert pi.last_payment_error.decline_code == "insufficient_funds"
        # The buyer retries on the same intent with a new token.
        retry = token(client, payment_method="pm_card_visa")
        pi = client.v1.payment_intents.confirm(
            intent_id, params={"confirmation_token": retry.id, "return_url": RETURN_URL}
        )
        assert pi.status == "succeeded"


class TestSingleUse:
    def test_a_second_use_is_refused(self, client: stripe.StripeClient) -> None:
        ct = token(client, payment_method="pm_card_visa")
        first = confirm_new(client, ct.id)
        assert first.status == "succeeded"

        with pytest.raises(stripe.InvalidRequestError) as err:
            confirm_new(client, ct.id)

        assert err.value.http_status == 400
        assert err.value.param == "confirmation_token"
        assert err.value.code == "confirmation_token_already_used"
        assert err.value.json_body["error"]["type"] == "invalid_request_error"

    def test_a_declined_token_is_spent_too(self, client: stripe.StripeClient) -> None:
        ct = token(client, payment_method="pm_card_chargeDeclined")
        with pytest.raises(stripe.CardError) as err:
            confirm_new(client, ct.id)
        intent_id = err.value.json_body["error"]["payment_intent"]["id"]
        with pytest.raises(stripe.InvalidRequestError) as again:
            client.v1.payment_intents.confirm(
                intent_id, params={"confirmation_token": ct.id, "return_url": RETURN_URL}
            )
        assert again.value.code == "confirmation_token_already_used"

    def test_an_expired_token_is_refused(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        ct = token(client, payment_method="pm_card_visa")
        expired = control.post(f"confirmation_tokens/{ct.id}/expire")
        assert expired["expires_at"] <= expired["created"] + 12 * 3600

        with pytest.raises(stripe.InvalidRequestError) as err:
            confirm_new(client, ct.id)

        assert err.value.param == "confirmation_token"
        assert err.value.code == "confirmation_token_expired"


class TestWalletPaymentMethods:
    @pytest.mark.parametrize("wallet", ["apple_pay", "google_pay", "link"])
    def test_a_wallet_tokenised_card_pays_and_says_so(
        self, stripe_emulator: EmulatorServer, client: stripe.StripeClient, wallet: str
    ) -> None:
        # What the stand-in's Express Checkout sends for the wallet's test card.
        answer = requests.post(
            f"{stripe_emulator.url}/v1/payment_methods",
            data={"type": "card", "card[token]": "tok_visa", "wallet": wallet},
            headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["card"]["wallet"]["type"] == wallet
        ct = token(client, payment_method=answer.json()["id"])

        pi = confirm_new(client, ct.id)

        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.payment_method_details.card.wallet.type == wallet
        assert charge.payment_method_details.card.last4 == "4242"

    def test_unknown_test_token(self, stripe_emulator: EmulatorServer) -> None:
        answer = requests.post(
            f"{stripe_emulator.url}/v1/payment_methods",
            data={"type": "card", "card[token]": "tok_nope"},
            headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
            timeout=5,
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "resource_missing"
