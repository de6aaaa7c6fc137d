"""app/console/dashboard.py's Attention page: each list, each row linked to where it is
dealt with (the order page; Webhooks for dead letters and shop deliveries)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from models import Reservation, ShopDelivery, ShopEvent, WebhookEvent
from models.db import utcnow
from tests.models.test_constraints import make_order


def attention_page(client: Any) -> str:
    answer = client.get("/admin/attention")
    assert answer.status_code == 200
    return str(answer.get_data(as_text=True))


class TestAttentionPage:
    def test_nothing_needs_a_person(self, signed_in: Callable[..., Any]) -> None:
        html = attention_page(signed_in("viewer"))
        assert "Nothing needs you now." in html
        assert 'aria-current="page">Attention</a>' in html

    def test_every_list_links_to_where_it_is_dealt_with(
        self, signed_in: Callable[..., Any]
    ) -> None:
        client = signed_in("viewer")
        stuck = make_order(order_number="ORD-STUCK001")
        Reservation.create(
            id=stuck.reservation_id,
            order=stuck,
            items=[["TEE", 1]],
            expires_at=utcnow() - timedelta(minutes=10),
        )
        lapsing = make_order(
            order_number="ORD-LAPSE001",
            state="AUTHORIZED",
            capture_before=utcnow() + timedelta(hours=3),
        )
        disputed = make_order(
            order_number="ORD-DISPUT01",
            state="PAID",
            dispute={"id": "dp_1", "status": "needs_response", "reason": "fraudulent"},
        )
        WebhookEvent.create(
            event_id="evt_dead_1", type="charge.refunded", payload={}, status="dead"
        )
        event = ShopEvent.create(event_id="evt_shop_1", type="order.paid", order=disputed, body={})
        ShopDelivery.create(
            event=event,
            endpoint="https://shop.example/hooks",
            status="failed",
            attempts=9,
            last_status_code=503,
            retry_until=utcnow(),
        )

        html = attention_page(client)

        assert "Nothing needs you now." not in html
        for order in (stuck, lapsing, disputed):
            assert f'href="/admin/orders/{order.id}">{order.order_number}</a>' in html
        assert "needs response (fraudulent)" in html
        assert 'href="/admin/webhooks?status=dead"><code>evt_dead_1</code></a>' in html
        deliveries = 'href="/admin/webhooks/deliveries?status=failed"'
        assert f"{deliveries}><code>https://shop.example/hooks</code></a>" in html
        assert "HTTP 503" in html
        for heading in ("Pending past their hold", "Authorisations lapsing", "Open disputes"):
            assert f"{heading}" in html
        assert "(1)</span></h2>" in html
