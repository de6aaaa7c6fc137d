"""Admin order actions over HTTP: refunds, fulfilment, cancel, listings, webhook inbox.

Actors run on the stub broker's in-process worker against the FakeGateway; refund
webhooks are applied through ``app.services.webhooks`` as the webhook actor would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app import keys
from app.errors import PaymentProviderError
from app.services import webhooks
from app.services.inventory import Inventory
from app.services.webhooks import handle_event
from models import Order, OrderEvent, Refund, WebhookEvent
from models.db import utcnow

KEY = {"Idempotency-Key": "refund-key-0001"}


def join(broker: Any) -> None:
    broker.join("default", timeout=20_000, fail_fast=True)


def refunds_url(order_id: str) -> str:
    return f"/api/admin/orders/{order_id}/refunds"


def event_types(order_id: str) -> list[str]:
    return [e.type for e in OrderEvent.select().where(OrderEvent.order == order_id)]


ROUTES = [
    ("post", "/api/admin/orders/o-1/refunds"),
    ("post", "/api/admin/orders/o-1/fulfillment"),
    ("post", "/api/admin/orders/o-1/cancel"),
    ("get", "/api/admin/orders"),
    ("get", "/api/admin/webhook-events"),
    ("post", "/api/admin/webhook-events/evt_1/replay"),
    ("get", "/api/admin/shop-webhooks/deliveries"),
    ("post", "/api/admin/shop-webhooks/events/evt_1/resend"),
]


class TestAuth:
    @pytest.mark.parametrize(("method", "url"), ROUTES)
    def test_no_or_invalid_token_is_401(
        self, client: Any, runtime: Any, method: str, url: str
    ) -> None:
        for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
            response = getattr(client, method)(url, json={}, headers={**KEY, **headers})
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "unauthorized"

    @pytest.mark.parametrize(("method", "url"), ROUTES)
    def test_non_admin_is_403(
        self, client: Any, runtime: Any, make_token: Any, method: str, url: str
    ) -> None:
        token = make_token({"sub": "u-1", "role": "customer"})
        headers = {**KEY, "Authorization": f"Bearer {token}"}
        response = getattr(client, method)(url, json={}, headers=headers)
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"


class TestRefunds:
    def refund(self, client: Any, headers: Any, order_id: str, **body: Any) -> Any:
        return client.post(refunds_url(order_id), json=body, headers={**headers, **KEY})

    def test_full_refund_then_webhook_makes_it_refunded(
        self,
        client: Any,
        runtime: Any,
        gateway: Any,
        broker: Any,
        worker: Any,
        admin_headers: Any,
        paid_order: Order,
    ) -> None:
        response = self.refund(client, admin_headers, paid_order.id, restock=True)
        assert response.status_code == 202
        body = response.get_json()
        assert body["status"] == "pending" and "Idempotent-Replayed" not in response.headers
        assert "REFUND_REQUESTED" in event_types(paid_order.id)
        requested = OrderEvent.get(
            OrderEvent.order == paid_order.id, OrderEvent.type == "REFUND_REQUESTED"
        )
        assert requested.payload["actor"] == "admin:admin-1"  # the JWT's sub
        join(broker)
        (stripe_refund,) = gateway.refunds.values()
        assert stripe_refund["amount"] == paid_order.total
        assert stripe_refund["metadata"] == {"orderId": paid_order.id, "refundId": body["refundId"]}
        charge = {
            "id": stripe_refund["charge"],
            "object": "charge",
            "payment_intent": paid_order.payment_intent_id,
            "amount": paid_order.total,
            "currency": "usd",
            "amount_refunded": paid_order.total,
            "refunds": {"data": [stripe_refund]},
        }
        event = gateway.event("charge.refunded", charge)
        handle_event(event["id"], event, runtime)
        order = client.get(f"/api/orders/{paid_order.id}", headers=admin_headers).get_json()
        assert order["state"] == "REFUNDED"
        assert order["amountRefunded"] == paid_order.total
        assert order["refunds"][0]["status"] == "succeeded"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}

    def test_partial_refund_adds_to_amount_refunded(
        self,
        client: Any,
        runtime: Any,
        gateway: Any,
        broker: Any,
        worker: Any,
        admin_headers: Any,
        paid_order: Order,
    ) -> None:
        response = self.refund(
            client, admin_headers, paid_order.id, amount=1000, reason="duplicate"
        )
        assert response.status_code == 202
        join(broker)
        (stripe_refund,) = gateway.refunds.values()
        assert (stripe_refund["amount"], stripe_refund["reason"]) == (1000, "duplicate")
        event = gateway.event("refund.updated", stripe_refund)
        handle_event(event["id"], event, runtime)
        stored = Order.get_by_id(paid_order.id)
        assert (stored.state, stored.amount_refunded) == ("PAID", 1000)

    def test_over_refund_is_409_and_keeps_the_key(
        self, client: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        response = self.refund(client, admin_headers, paid_order.id, amount=paid_order.total + 1)
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_state"
        assert Refund.select().count() == 0
        # A refused request does not use up its key.
        assert self.refund(client, admin_headers, paid_order.id, amount=500).status_code == 202

    def test_remainder_exceeded_after_partial_is_409(
        self, client: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        self.refund(client, admin_headers, paid_order.id, amount=paid_order.total - 100)
        response = client.post(
            refunds_url(paid_order.id),
            json={"amount": 101},
            headers={**admin_headers, "Idempotency-Key": "another-key-02"},
        )
        assert response.status_code == 409

    def test_pending_order_is_409_and_unknown_is_404(
        self, client: Any, broker: Any, admin_headers: Any, pending_order: Order
    ) -> None:
        response = self.refund(client, admin_headers, pending_order.id)
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_state"
        assert self.refund(client, admin_headers, "no-such-order").status_code == 404
        assert broker.queues["default"].qsize() == 0

    def test_same_key_same_body_replays_other_body_is_422(
        self,
        client: Any,
        gateway: Any,
        broker: Any,
        worker: Any,
        admin_headers: Any,
        paid_order: Order,
    ) -> None:
        first = self.refund(client, admin_headers, paid_order.id, amount=700)
        join(broker)
        again = self.refund(client, admin_headers, paid_order.id, amount=700)
        assert (again.status_code, again.get_json()) == (202, first.get_json())
        assert again.headers["Idempotent-Replayed"] == "true"
        other = self.refund(client, admin_headers, paid_order.id, amount=800)
        assert other.status_code == 422
        assert other.get_json()["error"]["code"] == "idempotency_key_reused"
        join(broker)
        assert Refund.select().count() == 1 and len(gateway.refunds) == 1

    def test_key_is_checked_by_the_database_when_redis_forgot(
        self, client: Any, runtime: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        self.refund(client, admin_headers, paid_order.id, amount=700)
        for key in runtime.redis.scan_iter("{shop}:idem:refund:*"):
            runtime.redis.delete(key)
        assert self.refund(client, admin_headers, paid_order.id, amount=900).status_code == 422

    @pytest.mark.parametrize("key", [None, "short", "has space in it", "x" * 256])
    def test_bad_idempotency_key_is_400(
        self, client: Any, admin_headers: Any, paid_order: Order, key: str | None
    ) -> None:
        headers = dict(admin_headers) if key is None else {**admin_headers, "Idempotency-Key": key}
        response = client.post(refunds_url(paid_order.id), json={}, headers=headers)
        assert response.status_code == 400
        assert "idempotencyKey" in response.get_json()["error"]["fields"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"amount": "100"}, "amount"),
            ({"amount": 0}, "amount"),
            ({"amount": 10.5}, "amount"),
            ({"reason": "changed_mind"}, "reason"),
            ({"restock": "yes"}, "restock"),
        ],
    )
    def test_bad_body_is_400(
        self,
        client: Any,
        admin_headers: Any,
        paid_order: Order,
        body: dict[str, Any],
        field: str,
    ) -> None:
        response = self.refund(client, admin_headers, paid_order.id, **body)
        assert response.status_code == 400
        assert field in response.get_json()["error"]["fields"]
        assert Refund.select().count() == 0

    def test_no_body_refunds_the_remainder_and_only_enqueues(
        self, client: Any, gateway: Any, broker: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        response = client.post(refunds_url(paid_order.id), headers={**admin_headers, **KEY})
        assert response.status_code == 202
        assert gateway.refunds == {}  # the view never calls Stripe: the actor does
        assert broker.queues["default"].qsize() == 1
        assert Refund.get_by_id(response.get_json()["refundId"]).amount == paid_order.total


class TestFulfillment:
    def post(self, client: Any, headers: Any, order_id: str, body: Any) -> Any:
        return client.post(f"/api/admin/orders/{order_id}/fulfillment", json=body, headers=headers)

    def test_start_then_complete(self, client: Any, admin_headers: Any, paid_order: Order) -> None:
        started = self.post(
            client,
            admin_headers,
            paid_order.id,
            {"action": "start", "carrier": "UPS", "trackingNumber": "1Z999"},
        )
        assert started.status_code == 200
        body = started.get_json()
        assert body["state"] == "FULFILLING" and body["orderId"] == paid_order.id
        started_event = next(e for e in body["events"] if e["type"] == "FULFILLMENT_STARTED")
        assert started_event["payload"] == {
            "carrier": "UPS",
            "trackingNumber": "1Z999",
            "actor": "admin:admin-1",  # the JWT's sub names the person
        }
        done = self.post(client, admin_headers, paid_order.id, {"action": "complete"})
        assert (done.status_code, done.get_json()["state"]) == (200, "FULFILLED")

    def test_illegal_transition_is_409(
        self, client: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        response = self.post(client, admin_headers, paid_order.id, {"action": "complete"})
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_state"
        assert Order.get_by_id(paid_order.id).state == "PAID"

    def test_bad_action_is_400_and_unknown_order_404(
        self, client: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        response = self.post(client, admin_headers, paid_order.id, {"action": "ship"})
        assert response.status_code == 400
        assert "action" in response.get_json()["error"]["fields"]
        assert self.post(client, admin_headers, "nope", {"action": "start"}).status_code == 404


class TestCancel:
    def test_pending_order_intent_canceled_before_stock_released(
        self,
        client: Any,
        runtime: Any,
        gateway: Any,
        broker: Any,
        worker: Any,
        admin_headers: Any,
        pending_order: Order,
        monkeypatch: Any,
    ) -> None:
        seen: list[str] = []
        release = Inventory.release

        def spy(inventory: Inventory, reservation_id: str) -> bool:
            seen.append(gateway.intents[pending_order.payment_intent_id].status)
            return release(inventory, reservation_id)

        monkeypatch.setattr(Inventory, "release", spy)
        url = f"/api/admin/orders/{pending_order.id}/cancel"
        response = client.post(url, headers=admin_headers)
        assert response.status_code == 202
        assert Order.get_by_id(pending_order.id).state == "PENDING"  # the actor does it
        join(broker)
        assert seen == ["canceled"]  # I8: the intent was already canceled at release
        assert Order.get_by_id(pending_order.id).state == "CANCELED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 5}
        types = event_types(pending_order.id)
        assert types.index("PAYMENT_INTENT_CANCELED") < types.index("STOCK_RELEASED")
        canceled = OrderEvent.get(
            OrderEvent.order == pending_order.id, OrderEvent.type == "STATE_CHANGED"
        )
        assert canceled.payload["to"] == "CANCELED"
        assert canceled.payload["actor"] == "admin:admin-1"  # carried through the queue

    def test_paid_order_is_409_and_nothing_queued(
        self, client: Any, broker: Any, admin_headers: Any, paid_order: Order
    ) -> None:
        response = client.post(f"/api/admin/orders/{paid_order.id}/cancel", headers=admin_headers)
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "invalid_state"
        assert broker.queues["default"].qsize() == 0
        assert (
            client.post("/api/admin/orders/nope/cancel", headers=admin_headers).status_code == 404
        )


class TestOrderList:
    @pytest.fixture
    def orders(self, runtime: Any, pending_order: Order, paid_order: Order) -> list[Order]:
        """Three orders with distinct creation times, oldest first (one PAID)."""
        from app.services.checkout import create_order_from_submission
        from tests.fakes import admit_checkout

        third = create_order_from_submission(admit_checkout(runtime.redis).order_id, runtime)
        assert third is not None
        rows = [paid_order, third]
        base = utcnow() - timedelta(hours=1)
        for offset, order in enumerate(rows):
            Order.update(created_at=base + timedelta(minutes=offset)).where(
                Order.id == order.id
            ).execute()
        return rows

    def test_newest_first_in_pages(self, client: Any, admin_headers: Any, orders: Any) -> None:
        first = client.get("/api/admin/orders?limit=1", headers=admin_headers).get_json()
        assert [o["orderId"] for o in first["data"]] == [orders[-1].id]
        assert first["nextCursor"]
        second = client.get(
            f"/api/admin/orders?limit=1&cursor={first['nextCursor']}", headers=admin_headers
        ).get_json()
        assert [o["orderId"] for o in second["data"]] == [orders[0].id]
        assert second["nextCursor"] is None
        summary = second["data"][0]
        assert summary["state"] == "PAID" and summary["totals"]["total"] == orders[0].total

    def test_state_filter_and_default_limit(
        self, client: Any, admin_headers: Any, orders: Any
    ) -> None:
        paid = client.get("/api/admin/orders?state=PAID", headers=admin_headers).get_json()
        assert [o["orderId"] for o in paid["data"]] == [orders[0].id]
        everything = client.get("/api/admin/orders", headers=admin_headers).get_json()
        assert len(everything["data"]) == 2 and everything["nextCursor"] is None

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("state=SHIPPED", "state"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("cursor=not-a-cursor", "cursor"),
        ],
    )
    def test_bad_query_is_400(
        self, client: Any, admin_headers: Any, runtime: Any, query: str, field: str
    ) -> None:
        response = client.get(f"/api/admin/orders?{query}", headers=admin_headers)
        assert response.status_code == 400
        assert field in response.get_json()["error"]["fields"]


class TestWebhookEvents:
    @pytest.fixture
    def failed_event(
        self, runtime: Any, gateway: Any, pending_order: Order, monkeypatch: Any
    ) -> dict[str, Any]:
        """A payment_intent.succeeded whose handler failed once (rolled back, ``failed``)."""
        intent = gateway.confirm(pending_order.payment_intent_id)
        event = gateway.event("payment_intent.succeeded", intent)

        def broken(*_: Any) -> None:
            raise PaymentProviderError("down", retryable=True)

        with monkeypatch.context() as patch:
            patch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", broken)
            with pytest.raises(PaymentProviderError):
                handle_event(event["id"], event, runtime)
        assert WebhookEvent.get(WebhookEvent.event_id == event["id"]).status == "failed"
        return event

    def replay(self, client: Any, headers: Any, event_id: str) -> Any:
        return client.post(f"/api/admin/webhook-events/{event_id}/replay", headers=headers)

    def test_list_filters_by_status(
        self, client: Any, admin_headers: Any, failed_event: Any, paid_order: Order
    ) -> None:
        failed = client.get("/api/admin/webhook-events?status=failed", headers=admin_headers)
        (row,) = failed.get_json()["data"]
        assert row["eventId"] == failed_event["id"]
        assert (row["status"], row["attempts"], row["processedAt"]) == ("failed", 1, None)
        assert "down" in row["lastError"] and row["type"] == "payment_intent.succeeded"
        everything = client.get("/api/admin/webhook-events?limit=1", headers=admin_headers)
        assert len(everything.get_json()["data"]) == 1 and everything.get_json()["nextCursor"]
        bad = client.get("/api/admin/webhook-events?status=lost", headers=admin_headers)
        assert bad.status_code == 400

    def test_replay_of_a_failed_event_processes_it(
        self,
        client: Any,
        broker: Any,
        worker: Any,
        admin_headers: Any,
        failed_event: Any,
        pending_order: Order,
    ) -> None:
        response = self.replay(client, admin_headers, failed_event["id"])
        assert response.status_code == 202
        join(broker)
        row = WebhookEvent.get(WebhookEvent.event_id == failed_event["id"])
        assert (row.status, row.attempts) == ("processed", 2)
        assert Order.get_by_id(pending_order.id).state == "PAID"

    def test_replay_of_a_processed_event_changes_nothing(
        self, client: Any, runtime: Any, broker: Any, worker: Any, admin_headers: Any,
        paid_order: Order,
    ) -> None:  # fmt: skip
        row = WebhookEvent.get(WebhookEvent.status == "processed")
        before = event_types(paid_order.id)
        runtime.redis.delete(keys.event_seen(row.event_id))  # the database alone must hold
        assert self.replay(client, admin_headers, row.event_id).status_code == 202
        join(broker)
        assert event_types(paid_order.id) == before
        assert WebhookEvent.get_by_id(row.id).attempts == row.attempts

    def test_unknown_event_is_404(self, client: Any, runtime: Any, admin_headers: Any) -> None:
        assert self.replay(client, admin_headers, "evt_missing").status_code == 404
