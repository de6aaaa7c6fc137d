"""The operator's console in Chromium: the acceptance path (an operator made with the CLI
signs in, finds a paid order under "Search", refunds it with the prefilled amount, and the
order ends REFUNDED naming them), CSRF, a viewer's page and POST, the lockout, and axe on
the sign-in, orders and order pages."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import ROOT, CheckoutPage, Stack
from tests.web.test_accessibility_browser import serious_violations
from tests.web.test_checkout_browser import assert_paid_once, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
PASSWORD = "browser-console-passphrase"


def create_operator(stack: Stack, role: str) -> str:
    """An operator made as a shop's staff would: ``flask operators create`` with the
    password on standard input. Returns the e-mail."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@shop.example"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{stack.database_path}",
        "REDIS_URL": stack.redis_url,
        "ALLOW_DEV_SECRETS": "1",
    }
    argv = [sys.executable, "-m", "flask", "--app", "wsgi", "operators", "create", email]
    result = subprocess.run(
        [*argv, "--role", role, "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    return email


def paid_order(browser: Any, stack: Stack) -> dict[str, Any]:
    """A buyer pays for a mug on the checkout page; the PAID order's row."""
    context = browser.new_context(base_url=stack.web_url)
    try:
        email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
        CheckoutPage(context.new_page(), stack, email).buy()
        return {**assert_paid_once(stack, email), "email": email}
    finally:
        context.close()


@pytest.fixture
def console(browser: Any, stack: Stack) -> Any:
    """A fresh browser context for an operator (its own cookies)."""
    context = browser.new_context(base_url=stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def open_order(page: Any, number: str) -> None:
    """Find the order under "Search" and open it."""
    page.get_by_label("Search").fill(number)
    page.get_by_label("Search").press("Enter")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()


def order_events(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(stack.database_path) as conn:
        rows = conn.execute(
            "SELECT type, payload FROM order_event WHERE order_id = ? ORDER BY id", (order_id,)
        ).fetchall()
    return [{"type": type_, "payload": json.loads(payload or "{}")} for type_, payload in rows]


def money(minor: int) -> str:
    """USD minor units as the console writes them: ``1250`` -> ``12.50``."""
    return f"{minor // 100}.{minor % 100:02d}"


def refund(page: Any, amount: int | None) -> None:
    """Open the Refund dialog, set the amount (``None`` keeps the prefilled rest), confirm."""
    page.get_by_role("button", name="Refund").click()
    field = page.get_by_label("Amount")
    expect(field).to_be_focused()
    if amount is not None:
        field.fill(money(amount))
    page.get_by_role("button", name="Confirm refund").click()


class TestConsole:
    def test_an_operator_refunds_a_paid_order_found_by_its_number(
        self, browser: Any, stack: Stack, console: Any
    ) -> None:
        order = paid_order(browser, stack)
        email = create_operator(stack, "operator")
        page = console
        page.goto("/admin/login")
        assert serious_violations(page) == []
        sign_in(page, email)
        # The landing page is the dashboard (tests/web/test_console_dashboard_browser.py).
        expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        page.get_by_role("link", name="Orders", exact=True).click()
        expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
        assert serious_violations(page) == []
        open_order(page, order["order_number"])
        assert serious_violations(page) == []
        page.get_by_role("button", name="Refund").focus()
        page.keyboard.press("Enter")  # by keyboard: the dialog opens with focus inside
        amount = page.get_by_label("Amount")
        expect(amount).to_be_focused()
        expect(amount).to_have_value(f"{order['total'] // 100}.{order['total'] % 100:02d}")
        assert serious_violations(page) == []  # with the dialog open
        screenshot(page, "console-refund-dialog")
        page.get_by_role("button", name="Confirm refund").click()
        expect(page.locator("#order-state")).to_have_text("REFUNDED", timeout=30_000)
        stack.wait_for_order_state(order["email"], "REFUNDED")
        actors = [e["payload"].get("actor") for e in order_events(stack, order["id"])]
        assert f"operator:{email}" in actors

    def test_a_viewer_gets_no_refund_and_a_post_without_csrf_is_403(
        self, browser: Any, stack: Stack, console: Any
    ) -> None:
        order = paid_order(browser, stack)
        page = console
        sign_in(page, create_operator(stack, "viewer"))
        open_order(page, order["order_number"])
        expect(page.get_by_role("button", name="Refund")).to_have_count(0)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing sideways
        wider = "() => document.documentElement.scrollWidth > window.innerWidth"
        assert not page.evaluate(wider)
        page.goto("/admin/orders")
        assert not page.evaluate(wider)
        refund_url = f"/admin/orders/{order['id']}/refund"
        form = {"idempotency_key": "console-browser-1", "amount": "1.00"}
        assert page.request.post(refund_url, form=form).status == 403  # no CSRF token
        token = page.locator('meta[name="csrf-token"]').get_attribute("content")
        with_token = page.request.post(refund_url, form={**form, "csrf_token": token})
        assert with_token.status == 403  # the role, now
        assert stack.orders_for(order["email"])[0]["state"] == "PAID"

    def test_an_operator_refunds_part_then_the_rest(
        self, browser: Any, stack: Stack, console: Any
    ) -> None:
        order = paid_order(browser, stack)
        page = console
        sign_in(page, create_operator(stack, "operator"))
        page.goto("/admin/orders")
        screenshot(page, "console-orders")
        open_order(page, order["order_number"])
        screenshot(page, "console-order")
        part = order["total"] // 2
        refund(page, part)
        refunded = page.locator("dt:text-is('Refunded') + dd")
        expect(refunded).to_have_text(f"{money(part)} USD", timeout=30_000)
        expect(page.locator("#order-state")).to_have_text("PAID")
        refund(page, None)  # the rest: the prefilled amount
        expect(page.locator("#order-state")).to_have_text("REFUNDED", timeout=30_000)
        expect(refunded).to_have_text(f"{money(order['total'])} USD")
        stack.wait_for_order_state(order["email"], "REFUNDED")

    def test_five_wrong_passwords_lock_the_account(self, stack: Stack, console: Any) -> None:
        email = create_operator(stack, "operator")
        for _ in range(4):
            sign_in(console, email, "not-the-password")
            expect(console.get_by_role("alert")).to_contain_text("Wrong e-mail or password.")
        sign_in(console, email, "not-the-password")
        expect(console.get_by_role("alert")).to_contain_text("locked for 15 minutes")
        sign_in(console, email)  # the right one, refused while locked
        expect(console.get_by_role("alert")).to_contain_text("locked for 15 minutes")
        assert console.url.endswith("/admin/login")
