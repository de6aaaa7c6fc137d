"""The console's Dashboard and Attention pages in Chromium, on the demo stack: the funnel
and the chart follow a new paid order without a reload (and without a CSP violation),
Attention lists a disputed order and leads to it, axe finds nothing serious on either,
and both fit 390 px."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import CheckoutPage, Stack
from tests.web.test_accessibility_browser import serious_violations
from tests.web.test_checkout_browser import screenshot
from tests.web.test_console_browser import create_operator, paid_order, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
DISPUTE_CARD = "4000000000000259"  # pm_card_createDispute: paid, then disputed
WIDER = "() => document.documentElement.scrollWidth > window.innerWidth"
PAID_ABOVE = "(n) => Number(document.querySelector('[data-figure=\"paid\"]').textContent) > n"
NOT_WIDER = "() => document.documentElement.scrollWidth <= window.innerWidth"
WHOLE_NUMBER = re.compile(r"^\d+$")
MARK = "() => { window.notReloaded = true; }"
MARKED = "() => window.notReloaded === true"


@pytest.fixture
def console(browser: Any, stack: Stack) -> Iterator[Any]:
    """An operator's browser context; its console errors (CSP violations) are recorded."""
    context = browser.new_context(base_url=stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()


def csp_violations(page: Any) -> list[str]:
    return [text for text in page.errors if "Content Security Policy" in text]


def wait_for_dispute(stack: Stack, order_id: str, timeout: float = 30) -> None:
    """Poll until the order has its dispute recorded."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(stack.database_path) as conn:
            row = conn.execute("SELECT dispute FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row and row[0] and row[0] != "null":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} has no dispute")
        time.sleep(0.2)


class TestDashboard:
    def test_the_funnel_and_the_chart_follow_a_new_paid_order_live(
        self, browser: Any, stack: Stack, console: Any
    ) -> None:
        page = console
        sign_in(page, create_operator(stack, "viewer"))
        expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        chart = page.locator("#orders-chart")
        expect(chart.locator("canvas")).to_be_visible()
        expect(chart).to_have_attribute("data-drawn", WHOLE_NUMBER)
        paid_before = int(page.locator('[data-figure="paid"]').inner_text())
        drawn_before = int(chart.get_attribute("data-drawn") or "0")
        summary = page.locator("#chart-summary")  # the chart's text alternative
        in_summary_before = int(summary.inner_text().split()[0])
        page.evaluate(MARK)

        paid_order(browser, stack)  # a buyer pays in another browser

        page.wait_for_function(PAID_ABOVE, arg=paid_before, timeout=30_000)
        page.wait_for_function(
            "(n) => Number(document.querySelector('#orders-chart').dataset.drawn) > n",
            arg=drawn_before,
            timeout=30_000,
        )
        assert page.evaluate(MARKED), "the page was reloaded"
        expect(page.locator("#revenue")).not_to_contain_text("Nothing yet")
        assert int(summary.inner_text().split()[0]) > in_summary_before
        assert serious_violations(page) == []
        assert csp_violations(page) == []
        screenshot(page, "console-dashboard")
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_function(NOT_WIDER)  # the chart follows the resize


class TestAttention:
    def test_a_disputed_order_is_listed_and_leads_to_its_page(
        self, browser: Any, stack: Stack, console: Any
    ) -> None:
        context = browser.new_context(base_url=stack.web_url)
        try:
            email = f"buyer-dispute-{time.time_ns()}@example.com"
            CheckoutPage(context.new_page(), stack, email).buy(card=DISPUTE_CARD)
            order = stack.wait_for_order_state(email, "PAID")
        finally:
            context.close()
        wait_for_dispute(stack, order["id"])

        page = console
        sign_in(page, create_operator(stack, "viewer"))
        page.get_by_role("link", name="Attention", exact=True).click()
        expect(page.get_by_role("heading", name="Attention", exact=True)).to_be_visible()
        disputes = page.get_by_role("region", name="Open disputes")
        link = disputes.get_by_role("link", name=order["order_number"])
        expect(link).to_be_visible()
        assert serious_violations(page) == []
        screenshot(page, "console-attention")
        page.set_viewport_size({"width": 390, "height": 844})
        assert not page.evaluate(WIDER)
        link.click()
        expect(page.get_by_role("heading", name=f"Order {order['order_number']}")).to_be_visible()
        page.get_by_role("link", name="Dashboard", exact=True).click()
        stuck = page.locator('[data-figure="stuck"]')
        assert int(stuck.inner_text().split()[0]) >= 1
        assert csp_violations(page) == []
