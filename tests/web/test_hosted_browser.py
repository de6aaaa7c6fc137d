"""Hosted Checkout in Chromium: "Pay on Stripe's page" → the emulator's hosted page →
4242, 3-D Secure, a decline then a retry → back to the shop, the order PAID."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.web.conftest import CheckoutPage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def to_stripes_page(checkout: CheckoutPage) -> Any:
    """Fill the cart and details, press "Pay on Stripe's page", land on the hosted page."""
    checkout.open().add("Logo mug").fill_details()
    page = checkout.page
    button = page.get_by_role("button", name="Pay on Stripe's page")
    expect(button).to_be_enabled()
    button.click()
    emulator = urlsplit(checkout.stack.emulator_url).netloc
    page.wait_for_url(lambda url: urlsplit(url).netloc == emulator, timeout=30_000)
    expect(page.get_by_role("heading", name="Pay $")).to_be_visible()
    return page


def type_card(page: Any, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")
    page.get_by_role("button", name="Pay $").click()


def back_paid(checkout: CheckoutPage) -> None:
    """Back on the shop's order page (through the session lookup), PAID."""
    order_id = checkout.wait_for_order_page()
    expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
    order = checkout.stack.wait_for_order_state(checkout.email, "PAID")
    assert order["id"] == order_id
    assert len(checkout.stack.succeeded_charges(order["payment_intent_id"])) == 1


class TestHostedCheckout:
    def test_4242_pays_on_stripes_page(self, checkout: CheckoutPage) -> None:
        page = to_stripes_page(checkout)
        type_card(page, "4242 4242 4242 4242")
        back_paid(checkout)

    def test_three_d_secure_on_stripes_page(self, checkout: CheckoutPage) -> None:
        page = to_stripes_page(checkout)
        type_card(page, "4000 0000 0000 3220")
        page.get_by_role("button", name="Complete authentication").click()
        back_paid(checkout)

    def test_a_decline_then_a_retry_on_the_same_page(self, checkout: CheckoutPage) -> None:
        page = to_stripes_page(checkout)
        type_card(page, "4000 0000 0000 0002")
        expect(page.get_by_role("alert")).to_contain_text("Your card was declined.")
        assert [o["state"] for o in checkout.stack.orders_for(checkout.email)] == ["PENDING"]
        type_card(page, "4242 4242 4242 4242")
        back_paid(checkout)
