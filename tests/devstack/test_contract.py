"""The emulator's bodies against Stripe's official OpenAPI schemas.

Every test's responses are validated by the ``stripe_emulator`` fixture; this module
makes sure each object type is actually exercised, and that the validator bites.
"""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import IN_CI, skip_or_fail

from .conftest import SPEC_PATH, Contract, Control, WebhookReceiver

# In CI the tests run (and fail) without the contract rather than skip.
needs_spec = pytest.mark.skipif(
    not SPEC_PATH.exists() and not IN_CI,
    reason=f"Stripe's OpenAPI subset not found at {SPEC_PATH} (../shared beside the repo)",
)


@needs_spec
class TestContract:
    def test_every_object_type_validates(
        self,
        client: stripe.StripeClient,
        control: Control,
        webhook_receiver: WebhookReceiver,
        contract: Contract,
    ) -> None:
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_createDispute",
                "confirm": True,
            }
        )
        refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
        with pytest.raises(stripe.CardError) as declined:
            client.v1.payment_intents.create(
                params={
                    "amount": 1000,
                    "currency": "usd",
                    "payment_method": "pm_card_chargeDeclined",
                    "confirm": True,
                }
            )
        webhook_receiver.wait_for(
            lambda evs: any(e["type"] == "charge.dispute.created" for e in evs)
        )
        bodies = {
            "payment_intent": client.v1.payment_intents.retrieve(pi.id).to_dict(),
            "charge": client.v1.charges.retrieve(pi.latest_charge).to_dict(),
            "refund": refund.to_dict(),
            "payment_method": client.v1.payment_methods.retrieve("pm_card_visa").to_dict(),
            "error": declined.value.json_body,
        }
        for event in webhook_receiver.events():
            contract.validate_object(event, "webhook")
        for name, body in bodies.items():
            contract.validate_body(body, name)
        for name in (
            "payment_intent",
            "charge",
            "refund",
            "payment_method",
            "error",
            "event",
            "dispute",
        ):
            assert contract.checked.get(name, 0) > 0, f"no {name} was validated"

    def test_the_validator_rejects_a_broken_object(
        self, client: stripe.StripeClient, contract: Contract
    ) -> None:
        pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}).to_dict()
        for broken in (
            {**pi, "status": "paid"},
            {**pi, "amount": "1000"},
            {**pi, "livemode": None},
        ):
            with pytest.raises(AssertionError):
                contract.validate_body(broken, "broken")
        with pytest.raises(AssertionError):
            contract.validate_body({"error": {"type": "card_error", "param": None}}, "broken error")


def test_schema_location_is_reported() -> None:
    if not SPEC_PATH.exists():
        skip_or_fail(f"contract checks are off: {SPEC_PATH} is absent")
    assert SPEC_PATH.name == "stripe-api-subset.json"
