"""Accessibility: keyboard-only checkout, axe on every page, a phone-sized viewport."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.web.conftest import CARD_FRAME, PAYABLE, CheckoutPage, Stack
from tests.web.test_checkout_browser import assert_paid_once, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the current page."""
    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def tab_to(page: Any, selector: str, limit: int = 80, frame: str | None = None) -> None:
    """Press Tab until the element matching ``selector`` (in the iframe ``frame``) has focus."""
    focused = "(s) => document.activeElement?.matches(s) ?? false"
    for _ in range(limit):
        if frame is None:
            if page.evaluate(focused, selector):
                return
        elif page.evaluate(focused, frame) and page.frame_locator(frame).locator(selector).evaluate(
            "el => el === document.activeElement"
        ):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def wait_for_card_fields(page: Any) -> None:
    page.frame_locator(CARD_FRAME).locator("input").first.wait_for()


class TestKeyboardOnly:
    def test_a_whole_checkout_with_the_keyboard(self, checkout: CheckoutPage):
        page = checkout.page
        checkout.open()
        tab_to(page, 'button[aria-label="Add Logo mug to cart"]')
        page.keyboard.press("Enter")
        wait_for_card_fields(page)
        for selector, text in (
            ("#name", "Ada Lovelace"),
            ("#email", checkout.email),
            ("#line1", "1 Analytical Way"),
            ("#city", "London"),
            ("#postalCode", "94107"),
        ):
            tab_to(page, selector)
            page.keyboard.type(text)
        for selector, text in (
            ('input[autocomplete="cc-number"]', "4242424242424242"),
            ('input[autocomplete="cc-exp"]', "1234"),
            ('input[autocomplete="cc-csc"]', "123"),
        ):
            tab_to(page, selector, frame=CARD_FRAME)
            page.keyboard.type(text)
        postal = page.frame_locator(CARD_FRAME).locator('input[autocomplete="postal-code"]')
        if postal.count():
            tab_to(page, 'input[autocomplete="postal-code"]', frame=CARD_FRAME)
            page.keyboard.type("94107")
        page.wait_for_function(PAYABLE)
        tab_to(page, "#pay")
        page.keyboard.press("Enter")
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        assert_paid_once(checkout.stack, checkout.email)

    def test_errors_take_focus_and_name_the_field(self, checkout: CheckoutPage):
        checkout.open().add("Logo mug").fill_card("4242424242424242")
        checkout.pay()
        box = checkout.wait_for_error("validation")
        expect(box).to_be_focused()
        expect(box).to_contain_text("Email: Email is required.")
        expect(checkout.page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
        box.get_by_role("link", name="Email: Email is required.").click()
        expect(checkout.page.get_by_label("Email")).to_be_focused()


class TestAxe:
    def test_checkout_page(self, checkout: CheckoutPage):
        checkout.open().add("Logo mug").fill_details()
        wait_for_card_fields(checkout.page)
        assert serious_violations(checkout.page) == []

    def test_checkout_page_with_a_promotion_code_and_express_shipping(self, checkout: CheckoutPage):
        """The "Promotion code" field and the shipping choices: axe clean, and the order
        is charged what the page showed."""
        import requests

        stack = checkout.stack
        response = requests.put(
            f"{stack.web_url}api/admin/promotions/AXE10",
            json={"percentOff": 10, "active": True},
            headers={"Authorization": f"Bearer {stack.admin_token()}"},
            timeout=10,
        )
        response.raise_for_status()
        page = checkout.page
        checkout.open().add("Logo mug").fill_details()
        page.get_by_label("Express — ").check()
        page.get_by_label("Promotion code").fill("axe10")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#promotion-status")).to_contain_text("AXE10 applied: 10% off")
        expect(page.locator("#discount-label")).to_have_text("Discount (AXE10)")
        expect(page.locator("#total-discount")).to_have_text("\u2212$1.40")  # a minus sign
        expect(page.get_by_label("Express — ")).to_be_checked()
        wait_for_card_fields(page)
        assert serious_violations(page) == []
        shown = page.locator("#total-total").inner_text()
        checkout.fill_card("4242424242424242").pay()
        checkout.wait_for_order_page()
        order = assert_paid_once(stack, checkout.email)
        assert f"${order['total'] / 100:.2f}" == shown

    def test_checkout_page_showing_an_error(self, checkout: CheckoutPage):
        checkout.buy("4000000000000002")
        checkout.wait_for_error("declined")
        assert serious_violations(checkout.page) == []

    def test_order_page(self, checkout: CheckoutPage):
        checkout.buy()
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        assert serious_violations(checkout.page) == []

    def test_failure_page(self, page: Any, stack: Stack):
        page.goto("/checkout/failed?reason=expired&order=1001")
        expect(page.locator("#failed-message")).to_contain_text("Order #1001")
        assert serious_violations(page) == []


class TestPhoneViewport:
    def test_readable_without_sideways_scrolling(self, browser: Any, stack: Stack):
        context = browser.new_context(
            base_url=stack.web_url, viewport={"width": 375, "height": 667}, is_mobile=True
        )
        try:
            page = context.new_page()
            page.goto("/")
            page.get_by_role("button", name="Add Logo mug to cart").click()
            wait_for_card_fields(page)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
            expect(page.locator("#pay")).to_be_visible()
            screenshot(page, "checkout-phone")
        finally:
            context.close()
