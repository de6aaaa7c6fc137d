"""app/console/dashboard.py: the Dashboard page, its live fragment and the chart's JSON."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from app.console import CONTENT_SECURITY_POLICY
from tests.console.conftest import Clock
from tests.models.test_constraints import make_order

FIGURE = re.compile(r'<dd data-figure="(\w+)">(.*?)</dd>', re.S)


def page_text(client: Any, path: str, **headers: str) -> str:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.status_code
    return str(answer.get_data(as_text=True))


def figures(html: str) -> dict[str, str]:
    """The page's figures by name, their text without tags."""
    return {name: re.sub(r"<[^>]+>", "", text).strip() for name, text in FIGURE.findall(html)}


class TestDashboardPage:
    def test_the_landing_page_shows_every_figure(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("viewer")
        answer = client.get("/admin")
        assert answer.status_code == 200
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        html = answer.get_data(as_text=True)
        assert "<h1>Dashboard</h1>" in html
        assert set(figures(html)) == {
            "submits", "admitted", "out_of_stock", "paid", "failed", "expired", "refunded",
            "stripe", "queues", "webhook_lag", "stuck",
        }  # fmt: skip
        assert 'aria-current="page">Dashboard</a>' in html
        assert "vendor/uPlot-1.6.32.iife.min.js" in html
        assert "vendor/uPlot-1.6.32.min.css" in html
        assert "<script>" not in html and "style=" not in html  # the CSP allows neither
        assert client.get("/admin/").status_code == 200

    def test_a_paid_order_today_shows_in_funnel_revenue_and_chart(
        self, signed_in: Callable[..., Any]
    ) -> None:
        client = signed_in("viewer")
        before = client.get("/admin/dashboard/orders-per-minute.json").get_json()
        make_order(state="PAID", total=1250)
        make_order(state="FAILED", total=400)
        shown = figures(page_text(client, "/admin"))
        assert (shown["paid"], shown["failed"], shown["refunded"]) == ("1", "1", "0")
        html = page_text(client, "/admin")
        assert "12.50 USD" in html
        assert "2 orders in the last hour, 1 of them paid" in html
        after = client.get("/admin/dashboard/orders-per-minute.json").get_json()
        assert sum(after["orders"]) == sum(before["orders"]) + 2
        assert sum(after["paid"]) == sum(before["paid"]) + 1
        assert len(after["minutes"]) == len(after["orders"]) == len(after["paid"]) == 60

    def test_the_search_box_leads_to_the_orders(self, signed_in: Callable[..., Any]) -> None:
        html = page_text(signed_in("viewer"), "/admin")
        assert '<label for="q">Search</label>' in html
        assert 'action="/admin/orders"' in html

    def test_the_stuck_count_links_to_attention(self, signed_in: Callable[..., Any]) -> None:
        from datetime import timedelta

        from models.db import utcnow

        client = signed_in("viewer")
        make_order(state="AUTHORIZED", capture_before=utcnow() + timedelta(hours=2))
        html = page_text(client, "/admin")
        assert figures(html)["stuck"].startswith("1")
        assert 'href="/admin/attention"' in html


class TestLive:
    def test_the_fragment_polls_itself_and_keeps_the_chart(
        self, signed_in: Callable[..., Any]
    ) -> None:
        client = signed_in("viewer")
        html = page_text(client, "/admin/dashboard/live", **{"HX-Request": "true"})
        assert "<html" not in html  # a fragment, not a page
        assert 'id="dashboard-live"' in html and "data-live" in html
        assert 'hx-trigger="every 5s, refresh"' in html
        assert 'id="orders-chart"' in html and 'hx-preserve="true"' in html
        make_order(state="PAID")
        assert figures(page_text(client, "/admin/dashboard/live"))["paid"] == "1"

    def test_polling_does_not_keep_the_session_alive(
        self, signed_in: Callable[..., Any], clock: Clock
    ) -> None:
        client = signed_in("viewer")
        for _ in range(4):
            clock.advance(10 * 60)
            client.get("/admin/dashboard/live")  # a dashboard left open
            client.get("/admin/dashboard/orders-per-minute.json")
        assert client.get("/admin").status_code == 302

    def test_a_stranger_gets_nothing(self, client: Any) -> None:
        assert client.get("/admin").status_code == 302
        assert "/admin/login" in client.get("/admin").headers["Location"]
        polled = client.get("/admin/dashboard/live", headers={"HX-Request": "true"})
        assert polled.status_code == 401
        assert client.get("/admin/dashboard/orders-per-minute.json").status_code == 302
