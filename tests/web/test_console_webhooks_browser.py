"""The console's Webhooks and Operators pages in Chromium, on the demo stack: an operator
replays a dead letter (it ends processed) and resends a shop webhook delivery (the shop's
endpoint gets it again); an admin creates an operator; axe on both pages."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Stack
from tests.web.test_accessibility_browser import serious_violations
from tests.web.test_checkout_browser import screenshot
from tests.web.test_console_browser import PASSWORD, create_operator, paid_order, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
WIDER = "() => document.documentElement.scrollWidth > window.innerWidth"


@pytest.fixture(scope="module")
def order(browser: Any, stack: Stack) -> dict[str, Any]:
    """One PAID order for the module (its webhook event and shop deliveries)."""
    return paid_order(browser, stack)


@pytest.fixture(scope="module")
def operator(stack: Stack) -> str:
    """One operator (made with the CLI) for the module's Webhooks tests."""
    return create_operator(stack, "operator")


@pytest.fixture
def console(browser: Any, stack: Stack) -> Any:
    """A fresh browser context for one person (its own cookies)."""
    context = browser.new_context(base_url=stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def query(stack: Stack, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(stack.database_path, timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def wait_for(read: Callable[[], Any], want: Any, timeout: float = 30) -> None:
    """Poll the server side until ``read()`` gives ``want`` (the worker is asynchronous)."""
    deadline = time.monotonic() + timeout
    while (got := read()) != want:
        assert time.monotonic() < deadline, f"still {got!r}, wanted {want!r}"
        time.sleep(0.2)


def bury(stack: Stack, order_id: str) -> str:
    """A dead letter for ``order_id``: its processed payment_intent.succeeded stored again
    under a new id, as a row whose handler failed every attempt. Returns the event id."""
    rows = query(
        stack,
        "SELECT payload FROM webhook_event WHERE type = 'payment_intent.succeeded'"
        " AND status = 'processed'",
    )
    payload = next(
        p for (text,) in rows if (p := json.loads(text))["data"]["object"]["metadata"].get(
            "orderId"
        ) == order_id
    )  # fmt: skip
    event_id = f"evt_dead_{uuid.uuid4().hex[:16]}"
    with sqlite3.connect(stack.database_path, timeout=10) as conn:
        conn.execute(
            "INSERT INTO webhook_event (event_id, type, payload, status, attempts, last_error,"
            " created_at) VALUES (?, ?, ?, 'dead', 26, ?, CURRENT_TIMESTAMP)",
            (
                event_id,
                payload["type"],
                json.dumps({**payload, "id": event_id}),
                "PaymentProviderError: the warehouse was down",
            ),
        )
    return event_id


def inbox_status(stack: Stack, event_id: str) -> str:
    ((status,),) = query(stack, "SELECT status FROM webhook_event WHERE event_id = ?", event_id)
    return str(status)


class TestWebhooksPage:
    def test_an_operator_replays_a_dead_letter_and_it_is_processed(
        self, stack: Stack, console: Any, order: dict[str, Any], operator: str
    ) -> None:
        event_id = bury(stack, order["id"])
        page = console
        sign_in(page, operator)
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Stripe inbox")).to_be_visible()
        page.get_by_label("Status").select_option("dead")
        page.get_by_role("button", name="Filter").click()
        row = page.get_by_role("row").filter(has_text=event_id)
        expect(row).to_contain_text("the warehouse was down")
        expect(row.get_by_role("link", name=order["id"])).to_be_visible()
        assert serious_violations(page) == []
        screenshot(page, "console-webhooks")
        row.get_by_role("button", name=f"Replay {event_id}").click()
        expect(row.get_by_role("alert")).to_contain_text("queued")
        wait_for(lambda: inbox_status(stack, event_id), "processed")

    def test_an_operator_resends_a_shop_webhook_delivery(
        self, stack: Stack, console: Any, order: dict[str, Any], operator: str
    ) -> None:
        receiver = stack.shop_hooks
        if receiver is None:
            pytest.skip("a reused stack (BROWSER_TESTS_STACK) has no shop endpoint of ours")

        def delivery() -> tuple[Any, ...]:
            rows = query(
                stack,
                "SELECT d.id, e.event_id, d.status FROM shop_webhook_deliveries d"
                " JOIN shop_events e ON e.id = d.event_id"
                " WHERE e.order_id = ? AND e.type = 'order.paid'",
                order["id"],
            )
            return rows[0] if rows else ()

        wait_for(lambda: delivery()[2:], ("delivered",))
        delivery_id, event_id, _ = delivery()
        assert receiver.count(event_id) == 1
        query(
            stack, "UPDATE shop_webhook_deliveries SET status = 'failed' WHERE id = ?", delivery_id
        )
        page = console
        sign_in(page, operator)
        page.goto("/admin/webhooks/deliveries?status=failed")
        expect(page.get_by_role("heading", name="Shop deliveries")).to_be_visible()
        assert serious_violations(page) == []
        row = page.get_by_role("row").filter(has_text=event_id)
        row.get_by_role("button", name=f"Resend {event_id}").click()
        expect(row.get_by_role("alert")).to_contain_text("queued")
        wait_for(lambda: delivery()[2:], ("delivered",))
        wait_for(lambda: receiver.count(event_id), 2)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing sideways
        for path in ("/admin/webhooks/deliveries", "/admin/webhooks"):
            page.goto(path)
            assert not page.evaluate(WIDER), path


class TestOperatorsPage:
    def test_an_admin_creates_an_operator_who_then_signs_in(
        self, browser: Any, stack: Stack, console: Any
    ) -> None:
        page = console
        sign_in(page, create_operator(stack, "admin"))
        page.get_by_role("link", name="Operators").click()
        expect(page.get_by_role("heading", name="Operators")).to_be_visible()
        assert serious_violations(page) == []
        email = f"new-{uuid.uuid4().hex[:8]}@shop.example"
        form = page.get_by_role("region", name="Create operator")
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Role", exact=True).select_option("viewer")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Create operator").click()
        expect(page.get_by_role("status")).to_contain_text(f"Created {email} (viewer).")
        expect(page.get_by_role("row").filter(has_text=email)).to_contain_text("never")
        assert PASSWORD not in page.content()
        assert serious_violations(page) == []
        screenshot(page, "console-operators")
        assert form.count() == 1
        other = browser.new_context(base_url=stack.web_url)
        try:
            newcomer = other.new_page()
            sign_in(newcomer, email)
            expect(newcomer.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
            expect(newcomer.get_by_role("link", name="Operators")).to_have_count(0)
        finally:
            other.close()
