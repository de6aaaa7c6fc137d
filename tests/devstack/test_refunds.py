"""Refunds and disputes: partial and full, over-refund refusal, asynchronous failure."""

from __future__ import annotations

import time

import pytest
import stripe

from .conftest import WebhookReceiver


def paid(
    client: stripe.StripeClient, pm: str = "pm_card_visa", amount: int = 5000
) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": pm,
            "confirm": True,
            "metadata": {"orderId": "r1"},
        }
    )


def wait_until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


class TestRefunds:
    def test_partial_then_full(self, client: stripe.StripeClient) -> None:
        pi = paid(client)
        first = client.v1.refunds.create(
            params={
                "payment_intent": pi.id,
                "amount": 1200,
                "reason": "requested_by_customer",
                "metadata": {"refundId": "a"},
            }
        )
        assert first.status == "succeeded" and first.amount == 1200
        assert first.charge == pi.latest_charge and first.payment_intent == pi.id
        assert first.reason == "requested_by_customer" and first.metadata["refundId"] == "a"
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.amount_refunded == 1200 and charge.refunded is False
        rest = client.v1.refunds.create(params={"charge": pi.latest_charge})
        assert rest.amount == 3800
        charge = client.v1.charges.retrieve(pi.latest_charge, params={"expand": ["refunds"]})
        assert charge.amount_refunded == 5000 and charge.refunded is True
        assert {r.id for r in charge.refunds.data} == {first.id, rest.id}

    def test_over_refund_is_refused(self, client: stripe.StripeClient) -> None:
        pi = paid(client)
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 4000})
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1001})
        assert err.value.param == "amount"
        assert "Refund amount ($10.01) is greater than unrefunded amount on charge ($10.00)" in str(
            err.value.user_message
        )

    def test_refunding_a_refunded_charge(self, client: stripe.StripeClient) -> None:
        pi = paid(client)
        client.v1.refunds.create(params={"payment_intent": pi.id})
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.refunds.create(params={"payment_intent": pi.id})
        assert err.value.code == "charge_already_refunded"

    def test_unpaid_intent_cannot_be_refunded(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.refunds.create(params={"payment_intent": pi.id})
        assert err.value.param == "payment_intent"

    def test_needs_a_charge_or_intent(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.refunds.create(params={"amount": 100})

    def test_retrieve_update_and_list_filters(self, client: stripe.StripeClient) -> None:
        one, two = paid(client), paid(client)
        r1 = client.v1.refunds.create(params={"payment_intent": one.id, "amount": 100})
        r2 = client.v1.refunds.create(params={"payment_intent": two.id, "amount": 200})
        assert client.v1.refunds.retrieve(r1.id).amount == 100
        updated = client.v1.refunds.update(r1.id, params={"metadata": {"k": "v"}})
        assert updated.metadata["k"] == "v"
        assert [r.id for r in client.v1.refunds.list().data] == [r2.id, r1.id]
        assert [r.id for r in client.v1.refunds.list(params={"payment_intent": one.id}).data] == [
            r1.id
        ]
        assert [
            r.id for r in client.v1.refunds.list(params={"charge": two.latest_charge}).data
        ] == [r2.id]

    def test_refund_fails_asynchronously(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = paid(client, "pm_card_refundFail")
        refund = client.v1.refunds.create(params={"payment_intent": pi.id})
        assert refund.status == "succeeded"
        wait_until(lambda: client.v1.refunds.retrieve(refund.id).status == "failed")
        failed = client.v1.refunds.retrieve(refund.id)
        assert failed.failure_reason == "expired_or_canceled_card"
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.amount_refunded == 0 and charge.refunded is False
        webhook_receiver.wait_for(
            lambda evs: {"refund.failed", "refund.updated"} <= {e["type"] for e in evs}
        )
        updated = next(e for e in webhook_receiver.events() if e["type"] == "refund.updated")
        assert updated["data"]["object"]["status"] == "failed"
        assert updated["data"]["previous_attributes"]["status"] == "succeeded"
        types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
        assert {"refund.created", "charge.refunded", "refund.failed", "refund.updated"} <= set(
            types
        )


class TestDisputes:
    def test_dispute_opens_after_success(
        self, client: stripe.StripeClient, webhook_receiver: WebhookReceiver
    ) -> None:
        pi = paid(client, "pm_card_createDispute")
        assert pi.status == "succeeded"
        webhook_receiver.wait_for(
            lambda evs: any(e["type"] == "charge.dispute.created" for e in evs)
        )
        event = next(e for e in webhook_receiver.events() if e["type"] == "charge.dispute.created")
        dispute = event["data"]["object"]
        assert dispute["charge"] == pi.latest_charge and dispute["payment_intent"] == pi.id
        assert dispute["reason"] == "fraudulent" and dispute["status"] == "needs_response"
        assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
        assert client.v1.disputes.retrieve(dispute["id"]).amount == 5000

    def test_dispute_card_number(self, client: stripe.StripeClient) -> None:
        pm = client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": "4000000000000259", "exp_month": 1, "exp_year": 2040},
            }
        )
        pi = paid(client, pm.id)
        wait_until(lambda: client.v1.charges.retrieve(pi.latest_charge).disputed)
