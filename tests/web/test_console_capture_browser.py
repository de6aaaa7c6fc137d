"""The console's Capture in Chromium: a shop that authorises at checkout
(``CAPTURE_METHOD=manual``) and captures from the order page. Its own demo stack: the
session's stack captures automatically."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import JWT_SECRET, CheckoutPage, Stack, _stack_from, start_demo, stop_demo
from tests.web.test_accessibility_browser import serious_violations
from tests.web.test_console_browser import create_operator, open_order, order_events, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def manual_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A demo stack whose payments are authorised, not captured, at checkout."""
    tmp = tmp_path_factory.mktemp("manual-capture")
    overrides = {
        "JWT_SECRET": JWT_SECRET,
        "CAPTURE_METHOD": "manual",
        "RATELIMIT_CHECKOUT": "1000/minute",
        "RATELIMIT_CONFIRM": "1000/minute",
        "RATELIMIT_TRACK": "1000/minute",
    }
    process, state = start_demo(tmp, overrides)
    try:
        yield _stack_from(state)
    finally:
        code = stop_demo(process)
    assert code == 0, "Ctrl-C stops the demo cleanly:\n" + (tmp / "demo.log").read_text()[-3000:]


def authorized_order(browser: Any, stack: Stack) -> dict[str, Any]:
    """A buyer pays for a mug; with manual capture the order waits AUTHORIZED."""
    context = browser.new_context(base_url=stack.web_url)
    try:
        email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
        CheckoutPage(context.new_page(), stack, email).buy()
        return {**stack.wait_for_order_state(email, "AUTHORIZED"), "email": email}
    finally:
        context.close()


def test_an_operator_captures_an_authorized_order(browser: Any, manual_stack: Stack) -> None:
    order = authorized_order(browser, manual_stack)
    email = create_operator(manual_stack, "operator")
    context = browser.new_context(base_url=manual_stack.web_url)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        sign_in(page, email)
        page.goto("/admin/orders")
        open_order(page, order["order_number"])
        expect(page.locator("#order-state")).to_have_text("AUTHORIZED")
        page.get_by_role("button", name="Capture").click()
        amount = page.get_by_label("Amount")
        expect(amount).to_have_value(f"{order['total'] // 100}.{order['total'] % 100:02d}")
        assert serious_violations(page) == []  # with the dialog open
        page.get_by_role("button", name="Confirm capture").click()
        expect(page.locator("#order-state")).to_have_text("PAID", timeout=30_000)
        manual_stack.wait_for_order_state(order["email"], "PAID")
        events = order_events(manual_stack, order["id"])
        requested = [e for e in events if e["type"] == "CAPTURE_REQUESTED"]
        assert [e["payload"].get("actor") for e in requested] == [f"operator:{email}"]
        charges = manual_stack.succeeded_charges(order["payment_intent_id"])
        assert len(charges) == 1
    finally:
        context.close()
