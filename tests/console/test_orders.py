"""app/console/orders.py: the order list (search, filters, pages, CSV) and the order page
with its actions, through the same services as the admin API."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from app.console.money import major
from models import Order, OrderEvent, Refund
from tests.console.conftest import Clock, csrf_token_of
from tests.models.test_constraints import make_order

KEY_FIELD = re.compile(r'name="idempotency_key" value="([^"]+)"')


def page_text(client: Any, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.status_code
    return str(answer.get_data(as_text=True))


def post_form(client: Any, path: str, order_id: str, **fields: Any) -> Any:
    """Post a dialog's form as the page renders it: CSRF token and Idempotency-Key."""
    page = page_text(client, f"/admin/orders/{order_id}")
    token = csrf_token_of(client, f"/admin/orders/{order_id}")
    key = KEY_FIELD.search(page)
    data = {"csrf_token": token, "idempotency_key": key.group(1) if key else "console-k-1"}
    data.update(fields)
    return client.post(path, data=data)


def events(order_id: str, type_: str) -> list[OrderEvent]:
    return list(OrderEvent.select().where(OrderEvent.order == order_id, OrderEvent.type == type_))


class TestOrderList:
    def test_search_by_number_email_and_intent(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("viewer")
        make_order(email="someone@else.example")
        for text in (
            paid_order.order_number,
            paid_order.order_number.lower(),
            paid_order.email.upper(),
            paid_order.payment_intent_id,
        ):
            page = page_text(client, f"/admin/orders?q={text}")
            assert f"/admin/orders/{paid_order.id}" in page, text
            assert "someone@else.example" not in page
        assert "No orders found." in page_text(client, "/admin/orders?q=ORD-NOPE0000")

    def test_the_search_box_is_labelled_search(self, signed_in: Callable[..., Any]) -> None:
        page = page_text(signed_in("viewer"), "/admin/orders")
        assert '<label for="q">Search</label>' in page

    def test_filters_state_sku_and_dates(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("viewer")
        old = make_order(
            line_items=[{"sku": "MUG_1", "quantity": 1}],
            created_at=paid_order.created_at - timedelta(days=3),
        )
        decoy = make_order(line_items=[{"sku": "MUGX1", "quantity": 1}])  # LIKE's "_" is literal
        assert old.id not in page_text(client, "/admin/orders?state=PAID")
        assert paid_order.id in page_text(client, "/admin/orders?state=PAID")
        by_sku = page_text(client, "/admin/orders?sku=MUG_1")
        assert old.id in by_sku and decoy.id not in by_sku and paid_order.id not in by_sku
        day = paid_order.created_at.date().isoformat()
        recent = page_text(client, f"/admin/orders?from={day}&to={day}")
        assert paid_order.id in recent and old.id not in recent
        early = (paid_order.created_at - timedelta(days=3)).date().isoformat()
        assert paid_order.id not in page_text(client, f"/admin/orders?to={early}")

    def test_a_bad_filter_is_a_clear_400(self, signed_in: Callable[..., Any]) -> None:
        answer = signed_in("viewer").get("/admin/orders?state=SHIPPED")
        assert answer.status_code == 400
        assert "invalid fields" in answer.get_data(as_text=True)

    def test_keyset_pages(
        self, signed_in: Callable[..., Any], runtime: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("app.console.orders.PAGE_SIZE", 2)
        made = [make_order() for _ in range(5)]
        client = signed_in("viewer")
        seen: list[str] = []
        path = "/admin/orders"
        while path:
            page = page_text(client, path)
            seen += re.findall(r'href="/admin/orders/([0-9a-f-]{36})"', page)
            older = re.search(r'href="(/admin/orders\?cursor=[^"]+)">Older orders', page)
            path = older.group(1).replace("&amp;", "&") if older else ""
        assert sorted(seen) == sorted(o.id for o in made) and len(seen) == 5

    def test_csv_export_of_the_filtered_list(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        make_order(email="=cmd@evil.example")
        client = signed_in("viewer")
        answer = client.get("/admin/orders.csv?state=PAID")
        assert answer.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
        assert [r["orderNumber"] for r in rows] == [paid_order.order_number]
        assert rows[0]["total"] == major(paid_order.total, "usd") and rows[0]["currency"] == "USD"
        everything = client.get("/admin/orders.csv").get_data(as_text=True)
        assert "'=cmd@evil.example" in everything  # never a formula in a spreadsheet


class TestOrderPage:
    def test_shows_lines_totals_payment_and_timeline(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        page = page_text(signed_in("viewer"), f"/admin/orders/{paid_order.id}")
        assert paid_order.order_number in page and "TEE" in page
        assert f"{major(paid_order.total, 'usd')} USD" in page
        assert paid_order.payment_intent_id in page
        assert "PAYMENT_SUCCEEDED" in page
        assert "dashboard.stripe.com" not in page  # the fake keys are not real ones

    def test_an_operator_is_offered_what_the_state_allows(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        page = page_text(signed_in("operator"), f"/admin/orders/{paid_order.id}")
        assert ">Refund</button>" in page and ">Start fulfilment</button>" in page
        assert ">Capture</button>" not in page and ">Cancel order</button>" not in page
        assert 'id="refund-amount" name="amount"' in page
        assert f'value="{major(paid_order.total, "usd")}"' in page  # prefilled: all of it
        assert ">Confirm refund</button>" in page and '<label for="refund-restock">Restock' in page

    def test_a_viewer_is_offered_no_action_and_its_post_is_403(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("viewer")
        page = page_text(client, f"/admin/orders/{paid_order.id}")
        assert ">Refund</button>" not in page and "<dialog" not in page
        answer = post_form(client, f"/admin/orders/{paid_order.id}/refund", paid_order.id)
        assert answer.status_code == 403
        assert Refund.select().count() == 0

    def test_unknown_order_is_404(self, signed_in: Callable[..., Any]) -> None:
        assert signed_in("viewer").get("/admin/orders/nope").status_code == 404

    def test_dashboard_link_only_for_real_keys(
        self, app: Any, signed_in: Callable[..., Any], paid_order: Order, runtime: Any
    ) -> None:
        client = signed_in("viewer")
        runtime.config = runtime.config.with_overrides(stripe_secret_key="sk_test_real123")
        app.extensions["checkout_config"] = runtime.config
        page = page_text(client, f"/admin/orders/{paid_order.id}")
        assert f"https://dashboard.stripe.com/test/payments/{paid_order.payment_intent_id}" in page


class TestActions:
    def test_refund_names_the_operator_and_queues_the_stripe_call(
        self, signed_in: Callable[..., Any], paid_order: Order, jobs: Any
    ) -> None:
        client = signed_in("operator")
        path = f"/admin/orders/{paid_order.id}/refund"
        answer = post_form(client, path, paid_order.id, amount="15.50", restock="on")
        assert answer.status_code == 303
        (refund,) = Refund.select()
        assert (refund.amount, refund.restock) == (1550, True)
        assert ("create_refund", (refund.id,)) in jobs.calls
        (requested,) = events(paid_order.id, "REFUND_REQUESTED")
        assert requested.payload["actor"] == "operator:operator@shop.example"
        assert "Refund of 15.50 USD requested" in page_text(
            client, f"/admin/orders/{paid_order.id}"
        )

    def test_a_double_submit_refunds_once(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("operator")
        page = page_text(client, f"/admin/orders/{paid_order.id}")
        key = KEY_FIELD.search(page)
        assert key is not None
        token = csrf_token_of(client, f"/admin/orders/{paid_order.id}")
        amount = major(paid_order.total, "usd")
        form = {"csrf_token": token, "idempotency_key": key.group(1), "amount": amount}
        for _ in range(2):
            assert (
                client.post(f"/admin/orders/{paid_order.id}/refund", data=form).status_code == 303
            )
        assert Refund.select().count() == 1

    def test_a_refused_refund_says_why(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("operator")
        path = f"/admin/orders/{paid_order.id}/refund"
        answer = post_form(client, path, paid_order.id, amount=major(paid_order.total + 1, "usd"))
        assert answer.status_code == 303
        assert f"Refund refused: At most {paid_order.total} can be refunded." in page_text(
            client, f"/admin/orders/{paid_order.id}"
        )
        bad = post_form(client, path, paid_order.id, amount="1.234")
        assert bad.status_code == 303
        assert "Enter an amount in USD like 12.50." in page_text(
            client, f"/admin/orders/{paid_order.id}"
        )
        assert Refund.select().count() == 0

    def test_capture_of_an_authorisation(
        self, signed_in: Callable[..., Any], authorized_order: Order, jobs: Any
    ) -> None:
        client = signed_in("operator")
        page = page_text(client, f"/admin/orders/{authorized_order.id}")
        assert ">Capture</button>" in page and ">Cancel order</button>" in page
        path = f"/admin/orders/{authorized_order.id}/capture"
        answer = post_form(client, path, authorized_order.id, amount="30.00")
        assert answer.status_code == 303
        (requested,) = events(authorized_order.id, "CAPTURE_REQUESTED")
        assert requested.payload["amount"] == 3000
        assert requested.payload["actor"] == "operator:operator@shop.example"
        assert ("capture_payment", (authorized_order.id, requested.payload["requestId"])) in (
            jobs.calls
        )

    def test_cancel_queues_the_job_with_the_operator(
        self, signed_in: Callable[..., Any], pending_order: Order, jobs: Any
    ) -> None:
        client = signed_in("admin")
        answer = post_form(client, f"/admin/orders/{pending_order.id}/cancel", pending_order.id)
        assert answer.status_code == 303
        assert ("cancel_order", (pending_order.id, "operator:admin@shop.example")) in jobs.calls

    def test_cancel_of_a_paid_order_is_refused(
        self, signed_in: Callable[..., Any], paid_order: Order, jobs: Any
    ) -> None:
        client = signed_in("operator")
        post_form(client, f"/admin/orders/{paid_order.id}/cancel", paid_order.id)
        assert not [call for call in jobs.calls if call[0] == "cancel_order"]
        assert "Cancel refused" in page_text(client, f"/admin/orders/{paid_order.id}")

    def test_start_then_mark_fulfilled(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("operator")
        path = f"/admin/orders/{paid_order.id}/fulfilment"
        assert post_form(client, path, paid_order.id, action="start").status_code == 303
        assert Order.get_by_id(paid_order.id).state == "FULFILLING"
        page = page_text(client, f"/admin/orders/{paid_order.id}")
        assert ">Mark fulfilled</button>" in page
        done = post_form(
            client, path, paid_order.id, action="complete", carrier="UPS", tracking_number="1Z9"
        )
        assert done.status_code == 303
        assert Order.get_by_id(paid_order.id).state == "FULFILLED"
        (completed,) = events(paid_order.id, "FULFILLED")
        assert completed.payload == {
            "carrier": "UPS",
            "trackingNumber": "1Z9",
            "actor": "operator:operator@shop.example",
        }


class TestLive:
    def test_the_fragment_is_204_until_something_changes(
        self, signed_in: Callable[..., Any], paid_order: Order
    ) -> None:
        client = signed_in("viewer")
        page = page_text(client, f"/admin/orders/{paid_order.id}")
        live = re.search(r'hx-get="([^"]+)"', page)
        assert live is not None
        url = live.group(1).replace("&amp;", "&")
        assert client.get(url).status_code == 204
        Order.update(state="FULFILLING").where(Order.id == paid_order.id).execute()
        changed = client.get(url)
        assert changed.status_code == 200
        assert 'id="order-live"' in changed.get_data(as_text=True)
        assert "FULFILLING" in changed.get_data(as_text=True)

    def test_polling_does_not_keep_the_session_alive(
        self, signed_in: Callable[..., Any], paid_order: Order, clock: Clock
    ) -> None:
        client = signed_in("viewer")
        url = f"/admin/orders/{paid_order.id}/live"
        for _ in range(4):
            clock.advance(10 * 60)
            client.get(url)  # a page left open, polling
        assert client.get(f"/admin/orders/{paid_order.id}").status_code == 302
