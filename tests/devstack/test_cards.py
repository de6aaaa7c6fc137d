"""Test cards and test PaymentMethods: declines, 3-D Secure, delayed settlement, and raw
card details checked the way Stripe checks them."""

from __future__ import annotations

import datetime

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import PUBLISHABLE_KEY, Control

DECLINING_METHODS = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
]
DECLINING_NUMBERS = [
    ("4000000000000002", "card_declined", "generic_decline"),
    ("4000000000009995", "card_declined", "insufficient_funds"),
    ("4000000000009987", "card_declined", "lost_card"),
    ("4000000000009979", "card_declined", "stolen_card"),
    ("4000000000000069", "expired_card", "expired_card"),
    ("4000000000000127", "incorrect_cvc", "incorrect_cvc"),
    ("4000000000000119", "processing_error", "processing_error"),
]
NEXT_YEAR = str(datetime.date.today().year + 1)


def intent(client: stripe.StripeClient, **params: object) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(params={"amount": 1500, "currency": "usd", **params})  # type: ignore[arg-type]


def card_pm(client: stripe.StripeClient, number: str, **card: str) -> stripe.PaymentMethod:
    details = {"number": number, "exp_month": "12", "exp_year": NEXT_YEAR, "cvc": "123", **card}
    return client.v1.payment_methods.create(params={"type": "card", "card": details})  # type: ignore[arg-type]


class TestDeclines:
    @pytest.mark.parametrize(("pm", "code", "decline_code"), DECLINING_METHODS)
    def test_test_payment_methods(
        self, client: stripe.StripeClient, pm: str, code: str, decline_code: str
    ) -> None:
        self._assert_declined(client, pm, code, decline_code)

    @pytest.mark.parametrize(("number", "code", "decline_code"), DECLINING_NUMBERS)
    def test_card_numbers(
        self, client: stripe.StripeClient, number: str, code: str, decline_code: str
    ) -> None:
        self._assert_declined(client, card_pm(client, number).id, code, decline_code)

    def _assert_declined(
        self, client: stripe.StripeClient, pm: str, code: str, decline_code: str
    ) -> None:
        pi = intent(client, metadata={"orderId": "7"})
        with pytest.raises(stripe.CardError) as err:
            client.v1.payment_intents.confirm(pi.id, params={"payment_method": pm})
        error = err.value
        assert error.http_status == 402
        assert error.code == code
        assert error.error.decline_code == decline_code
        assert error.error.type == "card_error"
        assert error.error.payment_intent["id"] == pi.id
        assert error.error.payment_intent["status"] == "requires_payment_method"
        after = client.v1.payment_intents.retrieve(pi.id)
        assert after.status == "requires_payment_method"
        assert after.payment_method is None
        lpe = after.last_payment_error
        assert (lpe.code, lpe.decline_code, lpe.type) == (code, decline_code, "card_error")
        assert lpe.payment_method.id.startswith("pm_")
        charge = client.v1.charges.retrieve(after.latest_charge)
        assert charge.status == "failed" and charge.failure_code == code
        assert charge.outcome.reason == decline_code

    def test_retry_on_the_same_intent_after_a_decline(self, client: stripe.StripeClient) -> None:
        pi = intent(client)
        with pytest.raises(stripe.CardError):
            client.v1.payment_intents.confirm(
                pi.id, params={"payment_method": "pm_card_chargeDeclined"}
            )
        pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
        assert pi.status == "succeeded"
        assert pi.last_payment_error is None


class TestThreeDSecure:
    @pytest.mark.parametrize(
        "pm",
        [
            "pm_card_authenticationRequired",
            "pm_card_threeDSecure2Required",
            "pm_card_authenticationRequiredOnSetup",
        ],
    )
    def test_complete(self, client: stripe.StripeClient, control: Control, pm: str) -> None:
        pi = intent(client, payment_method=pm, confirm=True)
        assert pi.status == "requires_action"
        assert pi.next_action.type == "use_stripe_sdk"
        assert "use_stripe_sdk" in pi.next_action
        done = control.post(f"payment_intents/{pi.id}/authenticate", {"outcome": "complete"})
        assert done["status"] == "succeeded"
        assert client.v1.payment_intents.retrieve(pi.id).next_action is None

    @pytest.mark.parametrize("number", ["4000002500003155", "4000002760003184", "4000000000003220"])
    def test_card_numbers_require_action(self, client: stripe.StripeClient, number: str) -> None:
        pi = intent(client, payment_method=card_pm(client, number).id, confirm=True)
        assert pi.status == "requires_action"

    def test_fail(self, client: stripe.StripeClient, control: Control) -> None:
        pi = intent(client, payment_method="pm_card_authenticationRequired", confirm=True)
        failed = control.post(f"payment_intents/{pi.id}/authenticate", {"outcome": "fail"})
        assert failed["status"] == "requires_payment_method"
        lpe = client.v1.payment_intents.retrieve(pi.id).last_payment_error
        assert lpe.code == "payment_intent_authentication_failure"

    @pytest.mark.parametrize(
        "pm", ["pm_card_authenticationRequiredChargeDeclinedInsufficientFunds", "4000008400001629"]
    )
    def test_authenticated_then_declined(
        self, client: stripe.StripeClient, control: Control, pm: str
    ) -> None:
        if pm.isdigit():
            pm = card_pm(client, pm).id
        pi = intent(client, payment_method=pm, confirm=True)
        assert pi.status == "requires_action"
        after = control.post(f"payment_intents/{pi.id}/authenticate", {"outcome": "complete"})
        assert after["status"] == "requires_payment_method"
        assert after["last_payment_error"]["code"] == "card_declined"
        assert after["last_payment_error"]["decline_code"] == "insufficient_funds"

    def test_authenticate_refused_outside_requires_action(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        pi = intent(client)
        response = requests.post(
            f"{stripe_emulator.url}/_emulator/payment_intents/{pi.id}/authenticate",
            json={"outcome": "complete"},
            timeout=5,
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "payment_intent_unexpected_state"


class TestDelayedSettlement:
    def test_processing_then_succeeded(self, client: stripe.StripeClient, control: Control) -> None:
        pi = intent(client, payment_method="pm_emulator_delayed", confirm=True)
        assert pi.status == "processing"
        assert client.v1.charges.retrieve(pi.latest_charge).status == "pending"
        done = control.post(f"payment_intents/{pi.id}/settle", {"outcome": "succeeded"})
        assert done["status"] == "succeeded"
        assert client.v1.charges.retrieve(pi.latest_charge).status == "succeeded"

    def test_processing_then_failed(self, client: stripe.StripeClient, control: Control) -> None:
        pi = intent(client, payment_method="pm_emulator_delayed", confirm=True)
        failed = control.post(f"payment_intents/{pi.id}/settle", {"outcome": "failed"})
        assert failed["status"] == "requires_payment_method"
        assert failed["last_payment_error"]["code"] == "card_declined"
        assert client.v1.charges.retrieve(pi.latest_charge).status == "failed"

    def test_processing_cannot_be_canceled(self, client: stripe.StripeClient) -> None:
        pi = intent(client, payment_method="pm_emulator_delayed", confirm=True)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.cancel(pi.id)
        assert err.value.code == "payment_intent_unexpected_state"


class TestRawCardDetails:
    @pytest.mark.parametrize(
        ("number", "brand", "funding"),
        [
            ("4242424242424242", "visa", "credit"),
            ("4000056655665556", "visa", "debit"),
            ("5555555555554444", "mastercard", "credit"),
        ],
    )
    def test_successful_cards(
        self, client: stripe.StripeClient, number: str, brand: str, funding: str
    ) -> None:
        pm = card_pm(client, number)
        assert (pm.card.brand, pm.card.funding, pm.card.last4) == (brand, funding, number[-4:])
        assert client.v1.payment_methods.retrieve(pm.id).id == pm.id
        pi = intent(client, payment_method=pm.id, confirm=True)
        assert pi.status == "succeeded"

    @pytest.mark.parametrize(
        ("card", "code", "param"),
        [
            ({"number": "4242424242424241"}, "incorrect_number", "card[number]"),
            ({"number": "42424242"}, "invalid_number", "card[number]"),
            ({"exp_year": "2001"}, "invalid_expiry_year", "card[exp_year]"),
            ({"exp_month": "13"}, "invalid_expiry_month", "card[exp_month]"),
            ({"cvc": "12"}, "invalid_cvc", "card[cvc]"),
        ],
    )
    def test_invalid_details(
        self, client: stripe.StripeClient, card: dict[str, str], code: str, param: str
    ) -> None:
        number = card.pop("number", "4242424242424242")
        with pytest.raises(stripe.CardError) as err:
            card_pm(client, number, **card)
        assert err.value.code == code
        assert err.value.param == param

    def test_missing_number(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_methods.create(
                params={"type": "card", "card": {"exp_month": 1, "exp_year": 2040}}  # type: ignore[typeddict-item]
            )
        assert err.value.code == "parameter_missing"
        assert err.value.param == "card[number]"

    def test_publishable_key_creates_payment_methods_and_confirms(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        pk = stripe.StripeClient(
            PUBLISHABLE_KEY, base_addresses={"api": stripe_emulator.url}, max_network_retries=0
        )
        pm = card_pm(pk, "4242424242424242")
        pi = intent(client)
        confirmed = pk.v1.payment_intents.confirm(
            pi.id,
            params={"payment_method": pm.id, "client_secret": pi.client_secret},  # type: ignore[typeddict-unknown-key]
        )
        assert confirmed.status == "succeeded"
        fetched = pk.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.client_secret})
        assert fetched.status == "succeeded"
        with pytest.raises(stripe.InvalidRequestError) as err:
            pk.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.id + "_secret_wrong"})
        assert err.value.param == "client_secret"
        with pytest.raises(stripe.AuthenticationError):
            pk.v1.payment_intents.list()

    def test_payment_method_data_on_confirm(self, client: stripe.StripeClient) -> None:
        pi = intent(client)
        pi = client.v1.payment_intents.confirm(
            pi.id,
            params={
                "payment_method_data": {  # type: ignore[typeddict-item]
                    "type": "card",
                    "card": {"number": "4000000000003220", "exp_month": "1", "exp_year": NEXT_YEAR},
                }
            },
        )
        assert pi.status == "requires_action"
