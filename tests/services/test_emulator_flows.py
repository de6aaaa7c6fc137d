"""Late payments, failed refunds, disputes: at the Stripe emulator, the real StripeGateway.

The ``gateway`` fixture is overridden: orders create their intents at the emulator,
webhook events are Stripe's own (listed from the emulator and handed to the inbox), and
refunds and evidence reach the emulator through the SDK.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app.gateways.payments import StripeGateway
from app.services import disputes
from app.services.inventory import Inventory
from app.services.payments import close_after_cancel
from app.services.records import lock_order
from app.services.refunds import request_refund, submit_refund
from app.services.webhooks import handle_event
from models import Order, Product, Refund
from models.db import database
from tests.fakes import admit_checkout

emulator = pytest.importorskip("devstack.stripe_emulator", reason="Stripe emulator not present")

ON_HAND = 5  # units of TEE; the order holds 2
RETURN_URL = "https://shop.example/done"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with emulator.EmulatorServer(port=0, async_delay=0.05) as srv:
        yield srv


@pytest.fixture
def gateway(server: Any) -> StripeGateway:
    server.reset()
    return StripeGateway(
        api_key="sk_test_flows",
        api_base=server.url,
        webhook_secrets=("whsec_test_secret",),
        sleep=lambda _seconds: None,
        timeout=10,
    )


def control(server: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{server.url}/_emulator/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def confirm(gateway: StripeGateway, intent_id: str, method: str) -> None:
    """The buyer's part (Stripe.js): confirm the order's intent with ``method``."""
    params = {"payment_method": method, "return_url": RETURN_URL}
    gateway.client.v1.payment_intents.confirm(intent_id, params)  # type: ignore[arg-type]


def deliver(runtime: Any, gateway: StripeGateway, type_: str, object_id: str) -> dict[str, Any]:
    """Hand the emulator's event of ``type_`` about ``object_id`` to the inbox."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for event in gateway.list_events(created_gte=0, types=[type_]):
            obj = event["data"]["object"]
            if object_id in (obj.get("id"), obj.get("payment_intent")):
                handle_event(event["id"], event, runtime)
                return event
        time.sleep(0.05)
    raise AssertionError(f"no {type_} event for {object_id}")


def closed_on_a_stale_read(runtime: Any, order: Order) -> None:
    """Force the race: our side closes the order (hold released, CANCELED) as an expiry
    acting on a read taken before the buyer's delayed payment reached Stripe would."""
    assert runtime.gateway.retrieve_intent(order.payment_intent_id).status == "processing"
    with database().atomic():
        close_after_cancel(lock_order(order.id), None, runtime, actor="expiry", expired=True)
    assert Order.get_by_id(order.id).state == "CANCELED"


class TestLatePaymentAtTheEmulator:
    def test_settled_after_the_order_closed_with_stock_left_is_paid(
        self, runtime: Any, gateway: StripeGateway, server: Any, order: Order
    ) -> None:
        confirm(gateway, order.payment_intent_id, "pm_emulator_delayed")
        closed_on_a_stale_read(runtime, order)
        control(
            server, f"payment_intents/{order.payment_intent_id}/settle", {"outcome": "succeeded"}
        )
        deliver(runtime, gateway, "payment_intent.succeeded", order.payment_intent_id)
        paid = Order.get_by_id(order.id)
        assert (paid.state, paid.payment_status) == ("PAID", "succeeded")
        assert Refund.select().count() == 0

    def test_settled_after_the_stock_was_sold_is_refunded_at_stripe(
        self, runtime: Any, gateway: StripeGateway, server: Any, jobs: Any, order: Order
    ) -> None:
        confirm(gateway, order.payment_intent_id, "pm_emulator_delayed")
        closed_on_a_stale_read(runtime, order)
        admit_checkout(runtime.redis, [("TEE", ON_HAND)])  # another buyer takes everything
        control(
            server, f"payment_intents/{order.payment_intent_id}/settle", {"outcome": "succeeded"}
        )
        deliver(runtime, gateway, "payment_intent.succeeded", order.payment_intent_id)
        assert Order.get_by_id(order.id).state == "CANCELED"
        ((refund_id,),) = jobs.named("create_refund")
        submit_refund(refund_id, runtime)  # the create_refund actor's one call
        refunds = gateway.client.v1.refunds.list({"payment_intent": order.payment_intent_id})
        (at_stripe,) = refunds.data
        assert at_stripe.amount == order.total
        assert at_stripe.metadata["reason"] == "stock_unavailable_after_payment"
        deliver(runtime, gateway, "charge.refunded", order.payment_intent_id)
        closed = Order.get_by_id(order.id)
        assert (closed.state, closed.amount_refunded) == ("CANCELED", order.total)


class TestFailedRefundAtTheEmulator:
    def test_refund_fail_card_leaves_the_order_paid_and_refundable(
        self, runtime: Any, gateway: StripeGateway, order: Order
    ) -> None:
        confirm(gateway, order.payment_intent_id, "pm_card_refundFail")
        deliver(runtime, gateway, "payment_intent.succeeded", order.payment_intent_id)
        refund, _ = request_refund(order.id, idempotency_key="refund-1", restock=True)
        submit_refund(refund.id, runtime)  # Stripe says succeeded, then fails it
        intent = order.payment_intent_id
        for type_ in ("refund.failed", "charge.refunded", "refund.created", "refund.updated"):
            deliver(runtime, gateway, type_, intent)
        stored = Order.get_by_id(order.id)
        assert (stored.state, stored.amount_refunded) == ("PAID", 0)
        assert Refund.get_by_id(refund.id).status == "failed"
        (failed,) = [e.payload for e in stored.events if e.type == "REFUND_FAILED"]
        assert failed["failureReason"] == "expired_or_canceled_card"
        assert Product.get_by_id("TEE").stock_on_hand == ON_HAND - 2
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": ON_HAND - 2}
        again, created = request_refund(order.id, idempotency_key="refund-2")
        assert created and again.amount == order.total


class TestDisputeAtTheEmulator:
    def test_evidence_is_staged_and_the_close_recorded(
        self, runtime: Any, gateway: StripeGateway, server: Any, jobs: Any, order: Order
    ) -> None:
        confirm(gateway, order.payment_intent_id, "pm_card_createDispute")
        deliver(runtime, gateway, "payment_intent.succeeded", order.payment_intent_id)
        deliver(runtime, gateway, "charge.dispute.created", order.payment_intent_id)
        stored = Order.get_by_id(order.id)
        assert stored.state == "PAID" and stored.dispute["status"] == "needs_response"
        assert jobs.named("stage_dispute_evidence") == [(order.id,)]

        assert disputes.stage_evidence(order.id, runtime)  # the actor's one call
        dispute_id = stored.dispute["id"]
        at_stripe = gateway.client.v1.disputes.retrieve(dispute_id)
        assert at_stripe.status == "needs_response"  # staged, not submitted
        assert at_stripe.evidence_details.submission_count == 0
        assert at_stripe.evidence.customer_email_address == order.email
        assert order.order_number in at_stripe.evidence.uncategorized_text

        deliver(runtime, gateway, "charge.dispute.updated", dispute_id)  # our own staging
        control(server, f"disputes/{dispute_id}/close", {"outcome": "lost"})
        deliver(runtime, gateway, "charge.dispute.closed", dispute_id)
        closed = Order.get_by_id(order.id)
        assert closed.dispute["status"] == "lost"
        trail = [e.type for e in closed.events if e.type.startswith("DISPUTE_")]
        assert trail == ["DISPUTE_OPENED", "DISPUTE_EVIDENCE_STAGED", "DISPUTE_CLOSED"]
