"""Admin: the shop webhook deliveries (a keyset page) and a resend (202)."""

from __future__ import annotations

from typing import Any

from app.services import shop_webhooks
from models import Order, ShopDelivery, ShopEvent

URLS = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")


def with_endpoints(runtime: Any) -> None:
    runtime.config = runtime.config.with_overrides(
        shop_webhook_urls=URLS, shop_webhook_secrets=("whsec_a", "whsec_b")
    )
    shop_webhooks.dispatch(runtime.config.shop_webhook_endpoints)


class TestDeliveries:
    def test_pages_newest_first_and_filters(
        self, client: Any, runtime: Any, admin_headers: dict[str, str], paid_order: Order
    ) -> None:
        with_endpoints(runtime)  # order.created and order.paid, to two endpoints
        ShopDelivery.update(status="failed").where(ShopDelivery.endpoint == URLS[1]).execute()
        first = client.get("/api/admin/shop-webhooks/deliveries?limit=3", headers=admin_headers)
        assert first.status_code == 200
        page = first.get_json()
        assert len(page["data"]) == 3 and page["nextCursor"]
        rest = client.get(
            f"/api/admin/shop-webhooks/deliveries?limit=3&cursor={page['nextCursor']}",
            headers=admin_headers,
        ).get_json()
        ids = [row["deliveryId"] for row in page["data"] + rest["data"]]
        assert ids == sorted(ids, reverse=True) and len(ids) == 4 and rest["nextCursor"] is None
        row = rest["data"][-1]
        assert row["type"] == "order.created" and row["orderId"] == paid_order.id
        assert row["status"] == "pending" and row["attempts"] == 0 and row["eventId"]
        failed = client.get(
            "/api/admin/shop-webhooks/deliveries?status=failed", headers=admin_headers
        ).get_json()
        assert {r["endpoint"] for r in failed["data"]} == {URLS[1]}

    def test_bad_status_or_cursor_is_400(
        self, client: Any, runtime: Any, admin_headers: dict[str, str]
    ) -> None:
        for query in ("status=lost", "cursor=nope", "limit=0"):
            url = f"/api/admin/shop-webhooks/deliveries?{query}"
            answer = client.get(url, headers=admin_headers)
            assert answer.status_code == 400
            assert answer.get_json()["error"]["code"] == "validation_failed"


class TestResend:
    def test_resend_is_202_and_queues_the_delivery(
        self,
        client: Any,
        runtime: Any,
        jobs: Any,
        admin_headers: dict[str, str],
        pending_order: Order,
    ) -> None:
        with_endpoints(runtime)
        ShopDelivery.update(status="failed").execute()
        (event,) = ShopEvent.select()
        answer = client.post(
            f"/api/admin/shop-webhooks/events/{event.event_id}/resend", headers=admin_headers
        )
        assert answer.status_code == 202
        assert answer.get_json() == {"eventId": event.event_id, "status": "queued"}
        assert len(jobs.named("deliver_shop_webhook")) == 2
        assert {d.status for d in ShopDelivery.select()} == {"pending"}

    def test_unknown_event_is_404(
        self, client: Any, runtime: Any, admin_headers: dict[str, str]
    ) -> None:
        url = "/api/admin/shop-webhooks/events/evt_nope/resend"
        answer = client.post(url, headers=admin_headers)
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] == "not_found"
