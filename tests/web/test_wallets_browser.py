"""Server-side confirmation and Express Checkout on the reference page, in Chromium.

The page never confirms an intent itself: it sends a ConfirmationToken with the cart
and the worker confirms (3-D Secure through handleNextAction). A test wallet's shipping
address is priced by the server before the sheet shows its total.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import CheckoutPage
from tests.web.test_accessibility_browser import serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def watch(page: Any) -> list[tuple[str, str, str]]:
    """Every POST the page makes: (url, path, body)."""
    seen: list[tuple[str, str, str]] = []
    page.on(
        "request",
        lambda r: seen.append((r.url, r.method, r.post_data or "")) if r.method == "POST" else None,
    )
    return seen


def submitted_with_token(posts: list[tuple[str, str, str]]) -> dict[str, Any]:
    (body,) = [json.loads(b) for url, _, b in posts if url.endswith("/api/checkout/payment-intent")]
    assert body["confirmationTokenId"].startswith("ctoken_")
    # The page never confirms an intent: the server does, with the token.
    assert not [url for url, _, _ in posts if re.search(r"/v1/payment_intents/.+/confirm", url)]
    return body


class TestServerSideConfirmation:
    def test_4242_is_confirmed_by_the_server(self, checkout: CheckoutPage) -> None:
        posts = watch(checkout.page)
        checkout.open().add("Logo mug").fill_details().fill_card("4242424242424242").pay()
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        submitted_with_token(posts)
        (order,) = checkout.stack.orders_for(checkout.email)
        assert order["state"] == "PAID"

    def test_three_d_secure_through_handle_next_action(self, checkout: CheckoutPage) -> None:
        posts = watch(checkout.page)
        checkout.open().add("Logo mug").fill_details().fill_card("4000000000003220").pay()
        checkout.authenticate("complete")
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        submitted_with_token(posts)

    def test_card_fields_are_out_of_the_pages_reach(self, checkout: CheckoutPage) -> None:
        checkout.open().add("Logo mug").fill_details().fill_card("4242424242424242")
        readable = checkout.page.evaluate(
            """() => { try { return document.querySelector('#payment-element iframe')
                         .contentDocument !== null; } catch (e) { return false; } }"""
        )
        assert readable is False
        assert checkout.page.locator("#payment-element input").count() == 0


class TestExpressCheckout:
    def test_wallet_address_is_priced_by_the_server_and_pays(self, checkout: CheckoutPage) -> None:
        page = checkout.page
        posts = watch(page)
        checkout.open().add("Logo mug")
        expect(page.locator("#total-total")).not_to_have_text("")
        wallet = page.frame_locator("#express-checkout iframe")
        wallet.get_by_role("button", name="Test Apple Pay").click()
        sheet = page.get_by_role("dialog", name="Test Apple Pay")
        sheet.wait_for()
        pay = sheet.get_by_role("button", name=re.compile(r"^Pay \$"))
        expect(pay).to_be_enabled()
        us_total = pay.inner_text()
        assert not serious_violations(page), serious_violations(page)

        quotes_before = sum(url.endswith("/api/checkout/quote") for url, _, _ in posts)
        sheet.get_by_label("Shipping address").select_option(index=1)  # London, GB
        expect(pay).not_to_have_text(us_total)  # the server re-priced shipping and tax
        expect(pay).to_be_enabled()
        quotes = [json.loads(b) for url, _, b in posts if url.endswith("/api/checkout/quote")]
        assert len(quotes) > quotes_before
        assert quotes[-1]["shippingAddress"]["country"] == "GB"
        gb_total = pay.inner_text()
        pay.click()

        checkout.wait_for_order_page()
        expect(page.locator("#order-state")).to_have_text("Paid", timeout=30_000)
        body = submitted_with_token(posts)
        assert body["shippingAddress"]["country"] == "GB"
        assert body["email"] == "jenny.rosen@example.com"
        orders = checkout.stack.orders_for("jenny.rosen@example.com")
        paid = [o for o in orders if o["state"] == "PAID"]
        assert paid, orders
        total = int(re.sub(r"[^0-9]", "", gb_total))
        assert any(o["total"] == total for o in paid)

    def test_the_wallet_offers_the_shipping_options_and_pays_the_chosen_one(
        self, checkout: CheckoutPage
    ) -> None:
        page = checkout.page
        posts = watch(page)
        checkout.open().add("Logo mug")
        expect(page.locator("#total-total")).not_to_have_text("")
        page.frame_locator("#express-checkout iframe").get_by_role(
            "button", name="Test Apple Pay"
        ).click()
        sheet = page.get_by_role("dialog", name="Test Apple Pay")
        sheet.wait_for()
        pay = sheet.get_by_role("button", name=re.compile(r"^Pay \$"))
        expect(pay).to_be_enabled()
        standard_total = pay.inner_text()
        sheet.get_by_label(re.compile(r"^Express — ")).check()
        expect(pay).not_to_have_text(standard_total)  # re-priced with express shipping
        quotes = [json.loads(b) for url, _, b in posts if url.endswith("/api/checkout/quote")]
        assert quotes[-1]["shippingOptionId"] == "express"
        pay.click()

        checkout.wait_for_order_page()
        expect(page.locator("#order-state")).to_have_text("Paid", timeout=30_000)
        assert submitted_with_token(posts)["shippingOptionId"] == "express"
