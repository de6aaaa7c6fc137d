"""The checkout page in Chromium against the demo stack: paying, 3-D Secure, declines.

Each test asserts on the page and on the server: the order in the database, its hold in
Redis and the charges the Stripe emulator recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import CheckoutPage, Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Screenshots in docs/ are refreshed only on request, so a test run leaves git clean.
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save docs/screenshots/<name>.png when UPDATE_SCREENSHOTS=1."""
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def assert_paid_once(stack: Stack, email: str) -> dict[str, Any]:
    """One PAID order for ``email``, one succeeded charge, its hold confirmed."""
    order = stack.wait_for_order_state(email, "PAID")
    assert len(stack.orders_for(email)) == 1
    assert len(stack.succeeded_charges(order["payment_intent_id"])) == 1
    assert stack.hold_status(order["reservation_id"]) == "CONFIRMED"
    return order


def assert_declined_and_kept(checkout: CheckoutPage, kind: str, text: str) -> dict[str, Any]:
    """The error is shown and focused; the order stays PENDING with its hold."""
    box = checkout.wait_for_error(kind)
    expect(box).to_contain_text(text)
    expect(box).to_be_focused()
    expect(box).to_contain_text("Use another card")
    orders = checkout.stack.orders_for(checkout.email)
    assert [o["state"] for o in orders] == ["PENDING"]
    assert checkout.stack.hold_status(orders[0]["reservation_id"]) == "HELD"
    assert checkout.stack.succeeded_charges(orders[0]["payment_intent_id"]) == []
    return orders[0]


def retry_with(checkout: CheckoutPage, card: str) -> None:
    """The next step the page offers after a decline: another card, same order."""
    checkout.page.get_by_role("button", name="Use another card").click()
    expect(checkout.card_fields().get_by_label("Card number")).to_be_focused()
    checkout.fill_card(card).pay()


class TestPaying:
    def test_card_4242_pays_and_the_order_page_shows_paid(self, checkout: CheckoutPage):
        checkout.open().add("Logo mug").fill_details().fill_card("4242424242424242")
        expect(checkout.page.locator("#total-subtotal")).to_have_text("$14.00")
        screenshot(checkout.page, "checkout")
        checkout.pay()
        order_id = checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        order = assert_paid_once(checkout.stack, checkout.email)
        assert order["id"] == order_id
        expect(checkout.page.locator("#order-number")).to_have_text(f"#{order['order_number']}")
        screenshot(checkout.page, "order-paid")

    def test_long_polls_name_the_version_they_saw(self, checkout: CheckoutPage):
        # Without ?since a change landing between two polls (the client secret, the
        # webhook's PAID) would only show when the server's 20 s wait ran out.
        polls: list[str] = []
        checkout.page.on(
            "request",
            lambda r: polls.append(r.url) if "/api/checkout/" in r.url else None,
        )
        checkout.buy()
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        waiting = [url for url in polls if "wait=20" in url]
        assert waiting, polls
        assert all("since=" in url for url in waiting), waiting

    def test_3d_secure_completed(self, checkout: CheckoutPage):
        checkout.buy("4000002760003184")
        dialog = checkout.page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        screenshot(checkout.page, "3d-secure", full_page=False)  # the modal covers the viewport
        checkout.authenticate("Complete")
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        assert_paid_once(checkout.stack, checkout.email)


class TestDeclines:
    def test_3d_secure_failed_then_4242_succeeds_on_the_same_order(self, checkout: CheckoutPage):
        checkout.buy("4000002760003184").authenticate("Fail")
        first = assert_declined_and_kept(checkout, "authentication", "authentication")
        retry_with(checkout, "4242424242424242")
        checkout.wait_for_order_page()
        order = assert_paid_once(checkout.stack, checkout.email)
        assert order["payment_intent_id"] == first["payment_intent_id"]

    def test_generic_decline_then_retry(self, checkout: CheckoutPage):
        checkout.buy("4000000000000002")
        first = assert_declined_and_kept(checkout, "declined", "Your card was declined")
        screenshot(checkout.page, "declined")
        retry_with(checkout, "4242424242424242")
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        order = assert_paid_once(checkout.stack, checkout.email)
        assert order["payment_intent_id"] == first["payment_intent_id"]
        assert len(checkout.stack.charges(order["payment_intent_id"])) == 2  # failed + paid

    def test_insufficient_funds_shows_stripes_message(self, checkout: CheckoutPage):
        checkout.buy("4000000000009995")
        assert_declined_and_kept(checkout, "declined", "insufficient funds")

    def test_3d_secure_then_decline(self, checkout: CheckoutPage):
        checkout.buy("4000008400001629").authenticate("Complete")
        assert_declined_and_kept(checkout, "declined", "declined")


class TestReturnUrl:
    def test_a_redirect_landing_in_a_fresh_tab_finds_its_order(
        self, checkout: CheckoutPage, browser: Any, stack: Stack
    ):
        """Stripe's return_url parameters alone (no sessionStorage) open the order page."""
        import sqlite3

        checkout.buy()
        order = assert_paid_once(stack, checkout.email)
        with sqlite3.connect(stack.database_path) as conn:
            (secret,) = conn.execute(
                "SELECT client_secret FROM orders WHERE id = ?", (order["id"],)
            ).fetchone()
        context = browser.new_context(base_url=stack.web_url)
        try:
            page = context.new_page()
            page.goto(
                f"/order/{order['id']}?payment_intent={order['payment_intent_id']}"
                f"&payment_intent_client_secret={secret}&redirect_status=succeeded"
            )
            expect(page.locator("#order-state")).to_have_attribute("data-state", "PAID")
            expect(page.locator("#order-number")).to_have_text(f"#{order['order_number']}")
            assert "secret" not in page.url  # taken out of the address bar and history
            assert page.url.endswith("?redirect_status=succeeded")
        finally:
            context.close()
