"""app/services/attention.py: what the Attention page lists and the stuck-orders count,
on SQLite and PostgreSQL (the open disputes go through a partial index)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.services import attention
from models import Reservation, ShopDelivery, ShopEvent, WebhookEvent
from models.db import utcnow
from tests.models.test_constraints import make_order


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Both databases."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url


def pending_with_hold(ends_in: timedelta) -> Any:
    """A PENDING order whose hold ends ``ends_in`` from now (negative: in the past)."""
    order = make_order()
    Reservation.create(
        id=order.reservation_id, order=order, items=[["TEE", 1]], expires_at=utcnow() + ends_in
    )
    return order


def delivery(order: Any, endpoint: str, status: str, attempts: int, n: int) -> ShopDelivery:
    event = ShopEvent.create(
        event_id=f"evt_{order.id[:8]}_{n}", type="order.paid", order=order, body={}
    )
    return ShopDelivery.create(
        event=event,
        endpoint=endpoint,
        status=status,
        attempts=attempts,
        last_status_code=500 if attempts else None,
        last_error="HTTP 500" if attempts else None,
        retry_until=utcnow() + timedelta(days=3),
    )


@pytest.mark.usefixtures("db")
class TestOrders:
    def test_pending_past_its_hold_by_more_than_the_grace(self) -> None:
        stuck = pending_with_hold(-attention.HOLD_GRACE - timedelta(seconds=5))
        pending_with_hold(-timedelta(seconds=10))  # the clock is about to expire it
        pending_with_hold(timedelta(minutes=10))  # still held
        paid = make_order(state="PAID")
        Reservation.create(
            id=paid.reservation_id, order=paid, items=[], expires_at=utcnow() - timedelta(hours=1)
        )
        rows = attention.attention().overdue_holds
        assert [r["orderId"] for r in rows] == [stuck.id]
        assert rows[0]["orderNumber"] == stuck.order_number and rows[0]["when"]

    def test_authorized_within_a_day_of_capture_before_soonest_first(self) -> None:
        later = make_order(state="AUTHORIZED", capture_before=utcnow() + timedelta(hours=20))
        sooner = make_order(state="AUTHORIZED", capture_before=utcnow() + timedelta(hours=2))
        make_order(state="AUTHORIZED", capture_before=utcnow() + timedelta(days=5))
        make_order(state="PAID", capture_before=utcnow() + timedelta(hours=2))
        rows = attention.attention().lapsing_authorizations
        assert [r["orderId"] for r in rows] == [sooner.id, later.id]

    def test_open_disputes_only(self) -> None:
        dispute = {"id": "dp_1", "status": "needs_response", "reason": "fraudulent", "amount": 1000}
        open_ = make_order(state="PAID", dispute=dispute)
        make_order(state="PAID", dispute={**dispute, "id": "dp_2", "status": "won"})
        make_order(state="PAID", dispute={**dispute, "id": "dp_3", "status": "lost"})
        make_order(state="PAID")
        rows = attention.attention().open_disputes
        assert [r["orderId"] for r in rows] == [open_.id]
        assert rows[0]["disputeStatus"] == "needs_response"
        assert rows[0]["reason"] == "fraudulent"

    def test_stuck_orders_count_the_three_lists_without_their_cap(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(attention, "ROWS_SHOWN", 1)
        pending_with_hold(-timedelta(minutes=5))
        pending_with_hold(-timedelta(minutes=6))
        make_order(state="AUTHORIZED", capture_before=utcnow() + timedelta(hours=1))
        make_order(state="PAID", dispute={"id": "dp_1", "status": "warning_needs_response"})
        assert len(attention.attention().overdue_holds) == 1  # the page's cap
        assert attention.stuck_order_count() == 4

    def test_nothing_needs_a_person(self) -> None:
        make_order(state="PAID")
        page = attention.attention()
        assert page.empty
        assert attention.stuck_order_count() == 0


@pytest.mark.usefixtures("db")
class TestWebhooks:
    def test_dead_letters_newest_first_with_their_order(self) -> None:
        order = make_order(state="PAID")
        payload = {"data": {"object": {"object": "payment_intent", "metadata": {}}}}
        payload["data"]["object"]["metadata"]["orderId"] = order.id
        WebhookEvent.create(event_id="evt_old", type="charge.refunded", payload={}, status="dead")
        WebhookEvent.create(
            event_id="evt_new",
            type="payment_intent.succeeded",
            payload=payload,
            status="dead",
            attempts=10,
            last_error="RuntimeError: boom",
        )
        WebhookEvent.create(event_id="evt_ok", type="x", payload={}, status="processed")
        WebhookEvent.create(event_id="evt_retry", type="x", payload={}, status="failed")
        rows = attention.dead_letters()
        assert [r["eventId"] for r in rows] == ["evt_new", "evt_old"]
        assert rows[0]["orderId"] == order.id
        assert rows[0]["attempts"] == 10 and rows[0]["lastError"] == "RuntimeError: boom"
        assert rows[1]["orderId"] is None

    def test_failing_endpoints_grouped_with_the_latest_answer(self) -> None:
        order = make_order(state="PAID")
        bad, flaky, good = (f"https://{n}.shop.example/hook" for n in ("bad", "flaky", "good"))
        delivery(order, bad, "failed", 12, 1)
        delivery(order, bad, "pending", 3, 2)
        delivery(order, flaky, "pending", 1, 3)
        delivery(order, good, "delivered", 1, 4)
        delivery(order, good, "pending", 0, 5)  # not tried yet: not failing
        rows = {r["endpoint"]: r for r in attention.failing_endpoints()}
        assert set(rows) == {bad, flaky}
        assert rows[bad]["failing"] == 2
        assert rows[bad]["lastStatusCode"] == 500
        assert rows[bad]["orderId"] == order.id
        assert rows[bad]["since"].endswith("Z")
