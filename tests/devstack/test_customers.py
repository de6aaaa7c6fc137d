"""Customers, saved PaymentMethods and CustomerSessions through the official SDK (wave 3:
returning buyers): create / retrieve / delete, attach / detach / list, a payment with
``setup_future_usage`` saving its method, and the Payment Element's saved-card listing."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import PUBLISHABLE_KEY, Contract

FEATURES = {
    "payment_method_redisplay": "enabled",
    "payment_method_save": "enabled",
    "payment_method_remove": "enabled",
    "payment_method_allow_redisplay_filters": ["always", "limited"],
}


def pay(client: stripe.StripeClient, customer: str, pm: str, **extra: Any) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "customer": customer,
            "payment_method": pm,
            "confirm": True,
            **extra,
        }  # type: ignore[typeddict-item]
    )


def session(client: stripe.StripeClient, customer: str) -> stripe.CustomerSession:
    return client.v1.customer_sessions.create(
        params={
            "customer": customer,
            "components": {"payment_element": {"enabled": True, "features": FEATURES}},
        }  # type: ignore[typeddict-item]
    )


def saved_for_element(server: EmulatorServer, secret: str) -> requests.Response:
    return requests.get(
        f"{server.url}/v1/elements/customer_session",
        params={"customer_session_client_secret": secret},
        headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
        timeout=5,
    )


class TestCustomers:
    def test_create_retrieve_delete(self, client: stripe.StripeClient) -> None:
        cus = client.v1.customers.create(
            params={"email": "ada@example.com", "metadata": {"userId": "u1"}}
        )
        assert cus.id.startswith("cus_")
        assert client.v1.customers.retrieve(cus.id).metadata["userId"] == "u1"
        gone = client.v1.customers.delete(cus.id)
        assert gone.deleted is True
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.customer_sessions.create(
                params={"customer": cus.id, "components": {"payment_element": {"enabled": True}}}
            )
        assert missing.value.http_status == 404

    def test_the_same_idempotency_key_creates_one_customer(
        self, client: stripe.StripeClient
    ) -> None:
        first = client.v1.customers.create(params={}, options={"idempotency_key": "cus-u1"})
        again = client.v1.customers.create(params={}, options={"idempotency_key": "cus-u1"})
        assert first.id == again.id


class TestSavedPaymentMethods:
    def test_attach_list_detach(self, client: stripe.StripeClient) -> None:
        cus = client.v1.customers.create()
        pm = client.v1.payment_methods.retrieve("pm_card_visa")
        client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
        listed = client.v1.customers.payment_methods.list(cus.id)
        assert [m.id for m in listed.data] == [pm.id]
        detached = client.v1.payment_methods.detach(pm.id)
        assert detached.customer is None
        assert client.v1.customers.payment_methods.list(cus.id).data == []
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})

    def test_a_method_of_one_customer_cannot_pay_for_another(
        self, client: stripe.StripeClient
    ) -> None:
        ada, bob = client.v1.customers.create(), client.v1.customers.create()
        pm = client.v1.payment_methods.retrieve("pm_card_visa")
        client.v1.payment_methods.attach(pm.id, params={"customer": ada.id})
        with pytest.raises(stripe.InvalidRequestError) as refused:
            pay(client, bob.id, pm.id)
        assert refused.value.param == "payment_method"
        assert pay(client, ada.id, pm.id).status == "succeeded"

    def test_setup_future_usage_saves_the_method_on_success(
        self, client: stripe.StripeClient
    ) -> None:
        cus = client.v1.customers.create()
        intent = pay(client, cus.id, "pm_card_visa", setup_future_usage="on_session")
        saved = client.v1.payment_methods.retrieve(str(intent.payment_method))
        assert saved.customer == cus.id
        assert saved.allow_redisplay == "limited"

    def test_a_declined_payment_saves_nothing(self, client: stripe.StripeClient) -> None:
        cus = client.v1.customers.create()
        with pytest.raises(stripe.CardError):
            pay(client, cus.id, "pm_card_chargeDeclined", setup_future_usage="on_session")
        assert client.v1.customers.payment_methods.list(cus.id).data == []

    def test_deleting_the_customer_detaches_its_methods(self, client: stripe.StripeClient) -> None:
        cus = client.v1.customers.create()
        intent = pay(client, cus.id, "pm_card_visa", setup_future_usage="on_session")
        client.v1.customers.delete(cus.id)
        assert client.v1.payment_methods.retrieve(str(intent.payment_method)).customer is None


class TestCustomerSessions:
    def test_the_payment_element_lists_the_saved_cards(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer, contract: Contract
    ) -> None:
        cus = client.v1.customers.create()
        intent = pay(client, cus.id, "pm_card_visa", setup_future_usage="on_session")
        created = session(client, cus.id)
        assert created.client_secret.startswith("cuss_secret_")
        features = created.components.payment_element.features
        assert features is not None and features.payment_method_save == "enabled"
        if contract is not None and contract.fixtures:
            contract.validate_body(created.to_dict(), "customer_session")
            assert contract.checked.get("fixture:customer_session", 0) > 0
        answer = saved_for_element(stripe_emulator, created.client_secret)
        assert answer.status_code == 200, answer.text
        [card] = answer.json()["payment_methods"]
        assert card["id"] == intent.payment_method
        assert card["card"]["last4"] == "4242"

    def test_an_unknown_secret_lists_nothing(self, stripe_emulator: EmulatorServer) -> None:
        assert saved_for_element(stripe_emulator, "cuss_secret_nope").status_code == 404

    def test_a_saved_card_pays_without_card_details(self, client: stripe.StripeClient) -> None:
        cus = client.v1.customers.create()
        first = pay(client, cus.id, "pm_card_visa", setup_future_usage="on_session")
        again = pay(client, cus.id, str(first.payment_method))
        assert again.status == "succeeded"

    def test_a_confirmation_token_confirm_saves_the_method_too(
        self, client: stripe.StripeClient
    ) -> None:
        cus = client.v1.customers.create()
        token = client.v1.test_helpers.confirmation_tokens.create(
            params={"payment_method": "pm_card_visa"}
        )
        intent = client.v1.payment_intents.create(
            params={
                "amount": 1500,
                "currency": "usd",
                "customer": cus.id,
                "setup_future_usage": "on_session",
                "confirm": True,
                "confirmation_token": token.id,
                "return_url": "https://shop.example/done",
            }
        )
        assert intent.status == "succeeded"
        [saved] = client.v1.customers.payment_methods.list(cus.id).data
        assert saved.id == intent.payment_method


class TestRemoveThroughTheSession:
    """The Payment Element's remove button, through the emulator-only endpoint."""

    def remove(self, server: EmulatorServer, secret: str, pm: str) -> requests.Response:
        return requests.post(
            f"{server.url}/v1/elements/customer_session/detach",
            data={"customer_session_client_secret": secret, "payment_method": pm},
            headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
            timeout=5,
        )

    def test_removes_the_customers_own_card(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        cus = client.v1.customers.create()
        paid = pay(client, cus.id, "pm_card_visa", setup_future_usage="on_session")
        answer = self.remove(
            stripe_emulator, session(client, cus.id).client_secret, str(paid.payment_method)
        )
        assert answer.status_code == 200, answer.text
        assert client.v1.customers.payment_methods.list(cus.id).data == []

    def test_not_another_customers(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        ada, bob = client.v1.customers.create(), client.v1.customers.create()
        paid = pay(client, ada.id, "pm_card_visa", setup_future_usage="on_session")
        answer = self.remove(
            stripe_emulator, session(client, bob.id).client_secret, str(paid.payment_method)
        )
        assert answer.status_code == 404
        assert len(client.v1.customers.payment_methods.list(ada.id).data) == 1

    def test_not_when_the_session_does_not_allow_it(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer
    ) -> None:
        cus = client.v1.customers.create()
        paid = pay(client, cus.id, "pm_card_visa", setup_future_usage="on_session")
        locked = client.v1.customer_sessions.create(
            params={"customer": cus.id, "components": {"payment_element": {"enabled": True}}}
        )
        answer = self.remove(stripe_emulator, locked.client_secret, str(paid.payment_method))
        assert answer.status_code == 400
        assert len(client.v1.customers.payment_methods.list(cus.id).data) == 1
