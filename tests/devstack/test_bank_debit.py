"""Bank debits (us_bank_account, ACH): processing until the bank answers, which a test
controls through /_emulator (or an auto-settle delay)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import Control, WebhookReceiver

BANK_DATA = {
    "type": "us_bank_account",
    "billing_details": {"name": "Jenny Rosen"},
    "us_bank_account": {
        "routing_number": "110000000",
        "account_number": "000123456789",
        "account_holder_type": "individual",
    },
}


def debit(client: stripe.StripeClient, **params: Any) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "usd",
            "payment_method_types": ["us_bank_account"],
            "confirm": True,
            **params,
        }
    )


def types_for(receiver: WebhookReceiver, intent_id: str) -> list[str]:
    return [
        e["type"]
        for e in receiver.events()
        if intent_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
    ]


class TestBankDebit:
    def test_processing_until_settled_then_succeeded(
        self, client: stripe.StripeClient, control: Control, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = debit(client, payment_method="pm_emulator_bank_debit")

        assert pi.status == "processing"
        assert pi.latest_charge.startswith("py_")
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.status == "pending"
        assert charge.payment_method_details.type == "us_bank_account"
        assert charge.payment_method_details.us_bank_account.last4 == "6789"
        assert client.v1.payment_intents.retrieve(pi.id).status == "processing"

        done = control.post(f"payment_intents/{pi.id}/settle", {"outcome": "succeeded"})

        assert done["status"] == "succeeded"
        assert done["amount_received"] == 4200
        assert client.v1.charges.retrieve(pi.latest_charge).status == "succeeded"
        # Deliveries are asynchronous and not ordered (as at Stripe): wait for the set.
        webhook_receiver.wait_for(
            lambda _: (
                {
                    "charge.pending",
                    "payment_intent.processing",
                    "charge.succeeded",
                    "payment_intent.succeeded",
                }
                <= set(types_for(webhook_receiver, pi.id))
            )
        )

    def test_failed_settlement_needs_a_new_payment_method(
        self, client: stripe.StripeClient, control: Control, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = debit(client, payment_method_data=BANK_DATA)
        assert pi.status == "processing"

        failed = control.post(
            f"payment_intents/{pi.id}/settle",
            {"outcome": "failed", "failureCode": "account_closed"},
        )

        assert failed["status"] == "requires_payment_method"
        assert failed["payment_method"] is None
        error = failed["last_payment_error"]
        assert error["code"] == "account_closed"
        assert error["payment_method"]["type"] == "us_bank_account"
        assert error["charge"] == pi.latest_charge
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert (charge.status, charge.failure_code) == ("failed", "account_closed")
        webhook_receiver.wait_for(
            lambda _: (
                {"payment_intent.payment_failed", "charge.failed"}
                <= set(types_for(webhook_receiver, pi.id))
            )
        )
        # The buyer pays again on the same intent.
        again = client.v1.payment_intents.confirm(
            pi.id, params={"payment_method": "pm_emulator_bank_debit"}
        )
        assert again.status == "processing"

    def test_default_failure_is_the_test_accounts_own(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        pi = debit(client, payment_method="pm_emulator_bank_debit_insufficient_funds")
        failed = control.post(f"payment_intents/{pi.id}/settle", {"outcome": "failed"})
        assert failed["last_payment_error"]["code"] == "insufficient_funds"

    def test_auto_settle_delay(
        self, client: stripe.StripeClient, control: Control, webhook_receiver: WebhookReceiver
    ) -> None:
        control.post("timing", {"bankDebitSettleMs": 50})
        ok = debit(client, payment_method="pm_emulator_bank_debit")
        bad = debit(client, payment_method="pm_emulator_bank_debit_account_closed")
        assert (ok.status, bad.status) == ("processing", "processing")

        webhook_receiver.wait_for(
            lambda _: (
                "payment_intent.succeeded" in types_for(webhook_receiver, ok.id)
                and "payment_intent.payment_failed" in types_for(webhook_receiver, bad.id)
            )
        )

        assert client.v1.payment_intents.retrieve(ok.id).status == "succeeded"
        failed = client.v1.payment_intents.retrieve(bad.id)
        assert failed.status == "requires_payment_method"
        assert failed.last_payment_error.code == "account_closed"

    def test_through_a_confirmation_token(self, client: stripe.StripeClient) -> None:
        ct = client.v1.test_helpers.confirmation_tokens.create(
            params={"payment_method_data": BANK_DATA}  # type: ignore[typeddict-item]
        )
        pi = client.v1.payment_intents.create(
            params={
                "amount": 4200,
                "currency": "usd",
                "automatic_payment_methods": {"enabled": True},
                "confirm": True,
                "confirmation_token": ct.id,
                "return_url": "https://shop.example/return",
            }
        )
        assert pi.status == "processing"
        assert "us_bank_account" in pi.payment_method_types

    def test_card_only_intent_refuses_a_bank_account(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            debit(client, payment_method_types=["card"], payment_method="pm_emulator_bank_debit")
        assert err.value.code == "payment_intent_incompatible_payment_method"

    def test_bank_payment_method_needs_the_holders_name(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            debit(client, payment_method_data={**BANK_DATA, "billing_details": {}})
        assert err.value.param == "billing_details[name]"

    def test_settle_refuses_an_unknown_failure_code(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        pi = debit(client, payment_method="pm_emulator_bank_debit")
        answer = requests.post(
            f"{stripe_emulator.url}/_emulator/payment_intents/{pi.id}/settle",
            json={"outcome": "failed", "failureCode": "nope"},
            timeout=5,
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == "failureCode"
