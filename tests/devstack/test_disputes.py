"""Disputes after they open: evidence staged (``submit=false``) or submitted, closed by the
merchant (``/close``) or decided by the network (control endpoint), with
``charge.dispute.updated`` / ``charge.dispute.closed`` events."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from app.gateways.payments import StripeGateway

from .conftest import SECRET_KEY, Control


def opened(client: stripe.StripeClient) -> str:
    """A paid intent whose card opens a dispute; returns the dispute id."""
    pi = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "confirm": True,
            "metadata": {"orderId": "d1"},
        }
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = client.v1.events.list(params={"type": "charge.dispute.created"}).data
        found = [e for e in events if e.data.object["payment_intent"] == pi.id]
        if found:
            return str(found[0].data.object["id"])
        time.sleep(0.05)
    raise AssertionError("no dispute opened")


def events_of(client: stripe.StripeClient, type_: str) -> list[Any]:
    return client.v1.events.list(params={"type": type_}).data


class TestDisputeUpdates:
    def test_evidence_staged_without_submitting(self, client: stripe.StripeClient) -> None:
        dispute_id = opened(client)
        staged = client.v1.disputes.update(
            dispute_id,
            params={
                "evidence": {"shipping_carrier": "UPS", "uncategorized_text": "Receipt ..."},
                "submit": False,
            },
        )
        assert staged.status == "needs_response"
        assert staged.evidence.shipping_carrier == "UPS"
        assert staged.evidence_details.has_evidence is True
        assert staged.evidence_details.submission_count == 0
        (updated,) = events_of(client, "charge.dispute.updated")
        assert updated.data.previous_attributes["evidence"]["shipping_carrier"] is None

    def test_submitting_puts_it_under_review(self, client: stripe.StripeClient) -> None:
        dispute_id = opened(client)
        submitted = client.v1.disputes.update(
            dispute_id, params={"evidence": {"customer_name": "Ada"}}
        )
        assert submitted.status == "under_review"
        assert submitted.evidence_details.submission_count == 1

    def test_unknown_evidence_field_is_refused(self, client: stripe.StripeClient) -> None:
        dispute_id = opened(client)
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.disputes.update(dispute_id, params={"evidence": {"card_number": "x"}})
        assert refused.value.param == "evidence[card_number]"

    def test_closing_accepts_the_loss(self, client: stripe.StripeClient) -> None:
        dispute_id = opened(client)
        closed = client.v1.disputes.close(dispute_id)
        assert closed.status == "lost"
        (event,) = events_of(client, "charge.dispute.closed")
        assert event.data.previous_attributes.to_dict() == {"status": "needs_response"}
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.disputes.update(dispute_id, params={"submit": False})

    def test_the_network_decides(self, client: stripe.StripeClient, control: Control) -> None:
        dispute_id = opened(client)
        won = control.post(f"disputes/{dispute_id}/close", {"outcome": "won"})
        assert won["status"] == "won"
        assert client.v1.disputes.retrieve(dispute_id).status == "won"
        assert len(events_of(client, "charge.dispute.closed")) == 1


class TestGatewayStagesEvidence:
    def test_stage_dispute_evidence_never_submits(
        self, client: stripe.StripeClient, stripe_emulator: Any
    ) -> None:
        gateway = StripeGateway(
            api_key=SECRET_KEY, api_base=stripe_emulator.url, sleep=lambda _s: None, timeout=10
        )
        dispute_id = opened(client)
        evidence = {"shipping_tracking_number": "1Z999AA10123456784", "customer_name": "Ada"}
        staged = gateway.stage_dispute_evidence(dispute_id, evidence=evidence)
        assert staged["status"] == "needs_response"
        again = gateway.stage_dispute_evidence(dispute_id, evidence=evidence)
        assert again["evidence"]["shipping_tracking_number"] == "1Z999AA10123456784"
        assert client.v1.disputes.retrieve(dispute_id).evidence_details.submission_count == 0
