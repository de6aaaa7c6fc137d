"""Every state change reaches the checkout read model (issue 10): after each change,
``GET /api/checkout/<id>`` and ``GET /api/orders/<id>`` tell the same story."""

from __future__ import annotations

from typing import Any

from app.services.checkout import create_order_from_submission
from app.services.expiry import cancel_order
from app.services.webhooks import handle_event
from models import Order

KEY = {"Idempotency-Key": "parity-key-0001"}


def compare(client: Any, created: dict[str, Any], state: str) -> None:
    """The two answers agree on state, payment and amounts (and reached ``state``)."""
    headers = {"X-Checkout-Token": created["checkoutToken"]}
    checkout = client.get(f"/api/checkout/{created['orderId']}", headers=headers).get_json()
    order = client.get(f"/api/orders/{created['orderId']}", headers=headers).get_json()
    assert (checkout["state"], order["state"]) == (state, state)
    assert checkout["payment"]["status"] == order["paymentStatus"]
    assert checkout["payment"]["intentId"] == order["paymentIntentId"]
    assert checkout["totals"] == order["totals"]
    assert checkout["lineItems"] == order["lineItems"]


def submit(client: Any, runtime: Any, submit_body: Any) -> dict[str, Any]:
    response = client.post("/api/checkout/payment-intent", json=submit_body(), headers=KEY)
    assert response.status_code == 202
    created = response.get_json()
    assert create_order_from_submission(created["orderId"], runtime) is not None  # the worker
    return created


def refunded(gateway: Any, runtime: Any, order: Order, amount: int) -> None:
    """Stripe refunds up to ``amount`` in all (succeeded) and says so with charge.refunded."""
    intent = gateway.intents[order.payment_intent_id]
    charge = gateway.retrieve_charge(intent.latest_charge)
    gateway.create_refund(
        intent_id=intent.id,
        amount=amount - charge["amount_refunded"],
        reason=None,
        idempotency_key=f"parity-{amount}",
        metadata={"orderId": order.id},
    )
    event = gateway.event("charge.refunded", gateway.retrieve_charge(intent.latest_charge))
    handle_event(event["id"], event, runtime)


def test_paid_fulfilled_partially_then_fully_refunded(
    client: Any, runtime: Any, gateway: Any, catalog: Any, submit_body: Any, admin_headers: Any
) -> None:
    created = submit(client, runtime, submit_body)
    compare(client, created, "PENDING")
    order = Order.get_by_id(created["orderId"])
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    compare(client, created, "PAID")
    url = f"/api/admin/orders/{order.id}/fulfillment"
    assert client.post(url, json={"action": "start"}, headers=admin_headers).status_code == 200
    compare(client, created, "FULFILLING")
    assert client.post(url, json={"action": "complete"}, headers=admin_headers).status_code == 200
    compare(client, created, "FULFILLED")
    refunded(gateway, runtime, order, 100)
    compare(client, created, "FULFILLED")
    refunded(gateway, runtime, order, order.total)
    compare(client, created, "REFUNDED")


def test_full_refund_of_a_paid_order(
    client: Any, runtime: Any, gateway: Any, catalog: Any, submit_body: Any
) -> None:
    created = submit(client, runtime, submit_body)
    order = Order.get_by_id(created["orderId"])
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    refunded(gateway, runtime, order, order.total)
    compare(client, created, "REFUNDED")


def test_admin_cancel(
    client: Any, runtime: Any, catalog: Any, submit_body: Any, admin_headers: Any
) -> None:
    created = submit(client, runtime, submit_body)
    url = f"/api/admin/orders/{created['orderId']}/cancel"
    assert client.post(url, headers=admin_headers).status_code == 202
    cancel_order(created["orderId"], runtime)  # the queued actor
    compare(client, created, "CANCELED")


def test_declined_then_paid(
    client: Any, runtime: Any, gateway: Any, catalog: Any, submit_body: Any
) -> None:
    created = submit(client, runtime, submit_body)
    order = Order.get_by_id(created["orderId"])
    declined = gateway.confirm(order.payment_intent_id, "pm_card_chargeDeclined")
    event = gateway.event("payment_intent.payment_failed", declined)
    handle_event(event["id"], event, runtime)
    compare(client, created, "PENDING")
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    compare(client, created, "PAID")
