"""The webhook tolerance through the real wiring: Config → build_runtime → StripeGateway →
the webhook view (issue 10, item 7: only FakeGateway's own 300 s was ever tested)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.config import Config, load_config
from app.errors import SignatureInvalid
from app.gateways.payments import StripeGateway
from app.gateways.signatures import sign_payload
from app.runtime import build_runtime, uninstall

SECRET = "whsec_wiring"
EVENT = {"id": "evt_wiring", "type": "payment_intent.succeeded", "data": {"object": {}}}
BODY = json.dumps(EVENT).encode()


def signed(age: int) -> str:
    return sign_payload(BODY, SECRET, int(time.time()) - age)


def test_the_design_tolerance_is_300_seconds() -> None:
    assert Config().webhook_tolerance_seconds == 300
    assert load_config({}, dotenv=False).webhook_tolerance_seconds == 300


@pytest.mark.parametrize(
    ("age", "accepted"), [(0, True), (290, True), (310, False), (86_000, False)]
)
def test_the_runtimes_stripe_gateway_enforces_the_configured_tolerance(
    age: int, accepted: bool
) -> None:
    config = load_config({"STRIPE_WEBHOOK_SECRET": SECRET}, dotenv=False)
    gateway = build_runtime(config).gateway
    assert isinstance(gateway, StripeGateway)
    if accepted:
        assert gateway.verify_webhook(BODY, signed(age))["id"] == "evt_wiring"
    else:
        with pytest.raises(SignatureInvalid):
            gateway.verify_webhook(BODY, signed(age))


def test_a_changed_tolerance_reaches_the_gateway() -> None:
    config = Config(stripe_webhook_secrets=(SECRET,), webhook_tolerance_seconds=10)
    gateway = build_runtime(config).gateway
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(BODY, signed(60))


def test_the_web_app_refuses_a_stale_delivery(tmp_path: Path) -> None:
    config = Config(
        stripe_webhook_secrets=(SECRET,),
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        testing=True,
    )
    client: Any = create_app(config).test_client()  # the real runtime, as wsgi.py builds it
    try:
        response = client.post(
            "/api/webhooks/stripe",
            data=BODY,
            content_type="application/json",
            headers={"Stripe-Signature": signed(400)},
        )
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "signature_invalid"
    finally:
        uninstall()
