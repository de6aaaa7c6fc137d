"""What goes wrong in real life: refreshes, double clicks, a dropped connection, stock
running out, a slow webhook. One order and at most one charge, whatever the buyer does.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import PAYABLE, CheckoutPage
from tests.web.test_checkout_browser import assert_paid_once

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def wait_until_payable_or_done(checkout: CheckoutPage) -> bool:
    """After a reload: True when the page went on to the order page by itself."""
    checkout.page.wait_for_function(
        "() => location.pathname.startsWith('/order/') ||"
        " (document.querySelector('#pay') && document.querySelector('#pay').textContent"
        ".startsWith('Pay $') && document.querySelector('#payment-element iframe'))",
        timeout=30_000,
    )
    return "/order/" in checkout.page.url


class TestNoDuplicates:
    def test_refresh_right_after_pay_makes_one_order_and_one_charge(self, checkout: CheckoutPage):
        checkout.buy()
        checkout.page.reload()
        if not wait_until_payable_or_done(checkout):
            # The form and cart came back from sessionStorage; only the card is typed again.
            expect(checkout.page.get_by_label("Email")).to_have_value(checkout.email)
            checkout.fill_card("4242424242424242").pay()
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        assert_paid_once(checkout.stack, checkout.email)

    def test_double_click_on_pay_charges_once(self, checkout: CheckoutPage):
        checkout.open().add("Logo mug").fill_details().fill_card("4242424242424242")
        checkout.page.wait_for_function(PAYABLE)
        checkout.pay_button.dblclick()
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        assert_paid_once(checkout.stack, checkout.email)

    def test_network_cut_during_submit_then_retry_continues_the_same_order(
        self, checkout: CheckoutPage
    ):
        cut: list[str] = []

        def drop_the_answer(route: Any) -> None:
            # The request reaches the server (the order is admitted), the answer is lost.
            if not cut:
                route.fetch()
                cut.append(route.request.headers["idempotency-key"])
                route.abort("internetdisconnected")
            else:
                route.continue_()

        checkout.page.route("**/api/checkout/payment-intent", drop_the_answer)
        checkout.buy()
        box = checkout.wait_for_error("network")
        expect(box).to_be_focused()
        expect(box).to_contain_text("couldn't reach the shop")
        assert len(checkout.stack.orders_for(checkout.email)) <= 1
        checkout.page.get_by_role("button", name="Try again").click()
        checkout.wait_for_order_page()
        expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        assert_paid_once(checkout.stack, checkout.email)


class TestStock:
    def test_out_of_stock_names_the_item_and_adjusting_the_cart_recovers(
        self, checkout: CheckoutPage
    ):
        stack = checkout.stack
        stack.set_stock("CAP-NAVY", 10)
        try:
            checkout.open().add("Navy cap", times=2).fill_details().fill_card("4242424242424242")
            stack.set_stock("CAP-NAVY", 1)  # someone else bought the rest meanwhile
            checkout.pay()
            box = checkout.wait_for_error("out_of_stock")
            expect(box).to_be_focused()
            expect(box).to_contain_text("Navy cap: you asked for 2, only 1 left")
            assert stack.orders_for(checkout.email) == []
            checkout.page.get_by_role("button", name="Update my cart").click()
            expect(checkout.page.get_by_label("Quantity of Navy cap")).to_have_value("1")
            checkout.fill_card("4242424242424242").pay()
            checkout.wait_for_order_page()
            assert_paid_once(stack, checkout.email)
        finally:
            stack.set_stock("CAP-NAVY", 10)


class TestWebhookDrivesTheOrder:
    def test_order_page_reaches_paid_only_after_the_webhook(self, checkout: CheckoutPage):
        stack = checkout.stack
        stack.chaos(deliveryDelayMs=5000)
        try:
            # With server-side confirmation the worker learns a frictionless card's outcome
            # from Stripe's own answer; after 3-D Secure only the browser and Stripe know
            # it, and the order must wait for the signed webhook.
            checkout.buy("4000000000003220").authenticate("Complete")
            checkout.wait_for_order_page()
            # The charge is made, the webhook is held back: the order is still PENDING.
            expect(checkout.page.locator("#state-detail")).to_contain_text("payment went through")
            expect(checkout.order_state()).to_have_text("Pending")
            order = stack.orders_for(checkout.email)[0]
            assert order["state"] == "PENDING"
            assert len(stack.succeeded_charges(order["payment_intent_id"])) == 1
            expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)
        finally:
            stack.chaos(deliveryDelayMs=0)
        order = assert_paid_once(stack, checkout.email)
        delivered = [
            d
            for d in stack.deliveries("payment_intent.succeeded")
            if 200 <= (d.get("statusCode") or 0) < 300
        ]
        assert delivered, "PAID came from a delivered payment_intent.succeeded webhook"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict:
    import json

    return {
        "status": status,
        "content_type": "application/json",
        "headers": headers or {},
        "body": json.dumps(body),
    }


class TestOneErrorExperience:
    """Answers the stack does not give on demand, played back through Playwright routing."""

    @pytest.mark.parametrize(
        ("answer", "kind", "title", "next_step", "button"),
        [
            (
                _json(
                    429,
                    {"error": {"type": "rate_limit_error", "code": "rate_limited", "message": "x"}},
                    {"Retry-After": "30"},
                ),
                "rate_limited",
                "Too many attempts",
                "wait 30 seconds",
                "Try again",
            ),
            (
                _json(
                    503,
                    {"error": {"type": "api_error", "code": "service_unavailable", "message": "x"}},
                ),
                "server",
                "Something went wrong on our side",
                "Try again in a few minutes",
                "Try again",
            ),
            (
                {"status": 502, "content_type": "text/html", "body": "<h1>Bad gateway</h1>"},
                "server",
                "Something went wrong on our side",
                "not been charged",
                "Try again",
            ),
        ],
        ids=["rate-limited", "unavailable", "proxy-error"],
    )
    def test_submit_failures_explain_and_offer_the_next_step(
        self,
        checkout: CheckoutPage,
        answer: dict,
        kind: str,
        title: str,
        next_step: str,
        button: str,
    ):
        checkout.page.route("**/api/checkout/payment-intent", lambda route: route.fulfill(**answer))
        checkout.buy()
        box = checkout.wait_for_error(kind)
        expect(box).to_be_focused()
        expect(box.get_by_role("heading")).to_have_text(title)
        expect(box).to_contain_text(next_step)
        expect(box.get_by_role("button", name=button)).to_be_visible()
        assert checkout.stack.orders_for(checkout.email) == []

    def test_an_expired_hold_says_so_and_starts_again(self, checkout: CheckoutPage):
        def expired(route: Any) -> None:
            response = route.fetch()
            body = response.json()
            body.update(state="CANCELED", error=None)
            route.fulfill(**_json(200, body))

        checkout.page.route("**/api/checkout/*?wait=*", expired)
        checkout.buy()
        box = checkout.wait_for_error("hold_expired")
        expect(box).to_contain_text("Your reservation expired")
        checkout.page.unroute("**/api/checkout/*?wait=*")
        box.get_by_role("button", name="Start again").click()
        expect(box).to_be_hidden()
        assert checkout.page.evaluate("sessionStorage.getItem('checkout:attempt')") is None


class TestFlashSaleQueue:
    def test_while_the_payment_is_set_up_the_buyer_sees_the_queue(
        self, checkout: CheckoutPage
    ) -> None:
        queued = [3, 1]

        def in_queue(route: Any) -> None:
            if route.request.method != "GET" or not queued:
                route.continue_()
                return
            body = route.fetch().json()
            # Played back as still being set up (a fast payment may already be PAID).
            body.update(state="PENDING", error=None)
            body["payment"].update(status="creating", clientSecret=None, intentId=None)
            body["queue"] = {"position": queued.pop(0), "etaSeconds": 1}
            route.fulfill(**_json(200, body))

        announced: list[str] = []
        checkout.page.route("**/api/checkout/*-*", in_queue)
        checkout.page.expose_function("recordAnnouncement", lambda text: announced.append(text))
        checkout.open()
        # Keep every text the live region announces, however briefly it shows.
        checkout.page.evaluate(
            """() => new MutationObserver(() => window.recordAnnouncement(
              document.getElementById('status').textContent)
            ).observe(document.getElementById('status'), {childList: true, subtree: true,
              characterData: true})"""
        )
        checkout.add("Logo mug").fill_details().fill_card("4242424242424242").pay()
        checkout.wait_for_order_page()
        assert "3 buyers are ahead of you. Your payment goes through in about 1 s." in announced
        assert "1 buyer is ahead of you. Your payment goes through in about 1 s." in announced


class TestOrderPageEndings:
    def test_an_order_that_ends_canceled_leads_to_the_failure_page(self, checkout: CheckoutPage):
        checkout.buy()
        order_id = checkout.wait_for_order_page()

        def canceled(route: Any) -> None:
            body = route.fetch().json()
            body.update(state="CANCELED", error=None)
            route.fulfill(**_json(200, body))

        # The hold's expiry is minutes away; play its outcome back instead of waiting.
        checkout.page.route(f"**/api/checkout/{order_id}?wait=*", canceled)
        checkout.page.reload()
        checkout.page.wait_for_url("**/checkout/failed?**")
        expect(checkout.page.locator("#failed-message")).to_contain_text("reservation expired")
        expect(checkout.page.locator("#failed-message")).to_contain_text("not been charged")
        expect(checkout.page.get_by_role("link", name="Back to the shop")).to_be_visible()
