"""The emulator's bodies against Stripe's official OpenAPI schemas.

Every test's responses are validated by the ``stripe_emulator`` fixture; this module
makes sure each object type is actually exercised, and that the validator bites.
"""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer
from tests.conftest import IN_CI, skip_or_fail

from .conftest import SECRET_KEY, SPEC_PATH, Contract, Control, WebhookReceiver

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

    def test_objects_carry_the_2026_fixture_keys(
        self, client: stripe.StripeClient, contract: Contract
    ) -> None:
        if not contract.fixtures:
            pytest.skip("fixtures3-2026.json is absent")
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "capture_method": "manual",
                "confirm": True,
                "payment_method": "pm_card_visa",
            }
        )
        ct = client.v1.test_helpers.confirmation_tokens.create(
            params={"payment_method": "pm_card_visa"}
        )
        bodies = [
            client.v1.payment_intents.retrieve(pi.id).to_dict(),
            client.v1.charges.retrieve(pi.latest_charge).to_dict(),
            client.v1.payment_methods.retrieve(pi.payment_method).to_dict(),
            client.v1.confirmation_tokens.retrieve(ct.id).to_dict(),
        ]
        for body in bodies:
            contract.validate_body(body, body["object"])
        for name in ("payment_intent", "charge", "payment_method", "confirmation_token"):
            assert contract.checked.get(f"fixture:{name}", 0) > 0, name
        # And the check bites: a key Stripe sends today, dropped, or of another type.
        intent = bodies[0]
        for broken in (
            {k: v for k, v in intent.items() if k != "managed_payments"},
            {**intent, "amount_details": "tip"},
        ):
            with pytest.raises(AssertionError):
                contract.validate_body(broken, "broken")
        token = bodies[3]
        preview = dict(token["payment_method_preview"])
        preview["card"] = {k: v for k, v in preview["card"].items() if k != "display_brand"}
        with pytest.raises(AssertionError):
            contract.validate_body({**token, "payment_method_preview": preview}, "broken")

    def test_checkout_sessions_and_their_line_items_validate(
        self, client: stripe.StripeClient, stripe_emulator: EmulatorServer, contract: Contract
    ) -> None:
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 1400,
                            "product_data": {"name": "Mug"},
                        },
                        "quantity": 1,
                    }
                ],
                "success_url": "https://shop.example/done",
            }
        )
        bodies = [
            session.to_dict(),
            client.v1.checkout.sessions.expire(session.id).to_dict(),
            # Raw JSON: the SDK's to_dict turns ``unit_amount_decimal`` into a Decimal.
            requests.get(
                f"{stripe_emulator.url}/v1/checkout/sessions/{session.id}/line_items",
                auth=(SECRET_KEY, ""),
                timeout=10,
            ).json(),
        ]
        for body in bodies:
            contract.validate_body(body, "checkout")
        for name in ("checkout.session", "item"):
            assert contract.checked.get(name, 0) > 0, name
            if contract.fixtures:
                assert contract.checked.get(f"fixture:{name}", 0) > 0, name


def test_schema_location_is_reported() -> None:
    if not SPEC_PATH.exists():
        skip_or_fail(f"contract checks are off: {SPEC_PATH} is absent")
    assert SPEC_PATH.name == "stripe-api-subset.json"
