"""Browser tests for the Stripe.js stand-in the emulator serves at /js.stripe.com/v3/.

Debian's Chromium, driven by Playwright, opens a test checkout page
(``stripejs_pages/checkout.html``) from a small HTTP server on 127.0.0.1. The page loads
the stand-in from the emulator (another origin, so CORS is exercised for real), mounts
the Payment Element and calls ``stripe.confirmPayment``. PaymentIntents are created and
read back server-side through the official ``stripe`` SDK, so every test checks both
what the buyer sees and what the emulator recorded.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import importlib.util
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import stripe

from tests.conftest import CHROMIUM

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).parent / "stripejs_pages"
SECRET_KEY = "sk_test_stripejs_browser"
PUBLISHABLE_KEY = "pk_test_stripejs_browser"
FUTURE_EXPIRY = f"12 / {(datetime.date.today().year + 5) % 100:02d}"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed"),
]


# --- servers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    """Poll `url` until it answers 200; fail with the emulator's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"the Stripe emulator did not serve {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """`python -m devstack.stripe_emulator` on a free 127.0.0.1 port, stopped afterwards."""
    if importlib.util.find_spec("devstack.stripe_emulator.__main__") is None:
        pytest.skip("devstack.stripe_emulator has no __main__ yet: the emulator is not built")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "emulator.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "devstack.stripe_emulator", "--port", str(port)],
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_for(f"{url}/js.stripe.com/v3/", proc, log)
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves stripejs_pages/, filling {{EMULATOR_URL}} into the HTML."""

    emulator_url = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(PAGES), **kwargs)

    def do_GET(self) -> None:
        path = PAGES / urlparse(self.path).path.lstrip("/")
        if path.suffix != ".html" or not path.is_file():
            super().do_GET()
            return
        body = path.read_text().replace("{{EMULATOR_URL}}", self.emulator_url).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def shop_url(emulator_url: str) -> Iterator[str]:
    """The test pages' origin: a threaded HTTP server on 127.0.0.1, shut down afterwards."""
    handler = type("Handler", (_PageHandler,), {"emulator_url": emulator_url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def sdk(emulator_url: str) -> stripe.StripeClient:
    """The official SDK pointed at the emulator, as the app's gateway uses it."""
    return stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": emulator_url}, max_network_retries=0
    )


# --- browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def desktop(browser: Any) -> Iterator[Any]:
    """One browser context for the module (pages are cheaper than contexts)."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(desktop: Any) -> Iterator[Any]:
    """A fresh tab; fails the test if the page threw an uncaught error."""
    page = desktop.new_page()
    page.set_default_timeout(8000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        page.close()
    assert not errors, f"uncaught errors in the page: {errors}"


# --- helpers ---------------------------------------------------------------------------


def new_intent(sdk: stripe.StripeClient, amount: int = 1999) -> Any:
    return sdk.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "automatic_payment_methods": {"enabled": True},
            "metadata": {"orderId": "ord_browser_test"},
        }
    )


def open_checkout(page: Any, shop_url: str, intent: Any, **query: str) -> None:
    """Open the test checkout for `intent` and wait for the Payment Element's ready event."""
    params = {"pk": PUBLISHABLE_KEY, "cs": intent.client_secret, **query}
    page.goto(f"{shop_url}/checkout.html?{urlencode(params)}")
    page.wait_for_function("window.events && window.events.some(e => e.name === 'ready')")


def card_frame(page: Any, mount: str = "#payment-element") -> Any:
    """The card fields: inside the Element's iframe (the emulator's origin), as at Stripe."""
    return page.frame_locator(f"{mount} iframe")


def fill_card(
    page: Any,
    number: str,
    expiry: str = FUTURE_EXPIRY,
    cvc: str = "123",
    postal: str = "10001",
) -> None:
    card_frame(page).get_by_label("Card number").fill(number)
    card_frame(page).get_by_label("Expiration date").fill(expiry)
    card_frame(page).get_by_label("Security code").fill(cvc)
    card_frame(page).get_by_label("Postal code").fill(postal)


def pay(page: Any) -> dict[str, Any]:
    """Press Pay and answer what confirmPayment resolved with."""
    page.get_by_role("button", name="Pay").click()
    return wait_for_result(page)


def wait_for_result(page: Any) -> dict[str, Any]:
    page.wait_for_function("window.paymentResult !== undefined")
    return dict(page.evaluate("window.paymentResult"))


def three_d_secure_dialog(page: Any) -> Any:
    dialog = page.get_by_role("dialog", name="3D Secure 2 Test Page")
    dialog.wait_for()
    return dialog


def assert_accessible(page: Any, context: str | None = None) -> None:
    """No serious or critical axe-core violations (the bundled, offline axe)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, "\n".join(bad)


def status_of(sdk: stripe.StripeClient, intent: Any) -> Any:
    return sdk.v1.payment_intents.retrieve(intent.id)


# --- tests -----------------------------------------------------------------------------


class TestMount:
    def test_inputs_are_labelled_with_autocomplete_hints(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient, emulator_url: str
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))

        number = card_frame(page).get_by_label("Card number")
        assert number.get_attribute("autocomplete") == "cc-number"
        assert number.get_attribute("inputmode") == "numeric"
        assert (
            card_frame(page).get_by_label("Expiration date").get_attribute("autocomplete")
            == "cc-exp"
        )
        assert (
            card_frame(page).get_by_label("Security code").get_attribute("autocomplete") == "cc-csc"
        )
        assert (
            card_frame(page).get_by_label("Postal code").get_attribute("autocomplete")
            == "postal-code"
        )
        assert card_frame(page).get_by_text("offline Stripe.js stand-in").is_visible()
        # In an iframe from the emulator's origin, as at Stripe; the page has no inputs.
        frame = page.locator("#payment-element iframe")
        assert frame.count() == 1
        assert frame.get_attribute("src").startswith(f"{emulator_url}/js.stripe.com/v3/")
        assert frame.get_attribute("title") == "Secure payment input frame"
        assert page.locator("#payment-element input").count() == 0
        assert card_frame(page).locator("input").count() == 4
        assert page.evaluate("Stripe.emulator.apiBase") == emulator_url

    def test_number_is_grouped_as_typed_and_change_events_follow(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))

        number = card_frame(page).get_by_label("Card number")
        number.press_sequentially("4242424242424242")
        assert number.input_value() == "4242 4242 4242 4242"
        expiry = card_frame(page).get_by_label("Expiration date")
        expiry.press_sequentially("4")
        assert expiry.input_value() == "04 / "  # a month above 1 cannot take a second digit
        expiry.fill("")
        expiry.press_sequentially("12" + FUTURE_EXPIRY[-2:])
        assert expiry.input_value() == FUTURE_EXPIRY
        card_frame(page).get_by_label("Security code").fill("123")
        changes_so_far = "window.events.filter(e => e.name === 'change').map(e => e.event)"
        page.wait_for_function(f"{changes_so_far}.length > 0")
        changes = page.evaluate(changes_so_far)
        assert changes[0] == {
            "elementType": "payment",
            "empty": False,
            "complete": False,
            "collapsed": False,
            "value": {"type": "card"},
        }
        assert not changes[-1]["complete"]  # postal code still missing
        card_frame(page).get_by_label("Postal code").fill("10001")
        # Events cross from the frame by postMessage: wait for the complete one.
        page.wait_for_function(f"{changes_so_far}.some(e => e.complete)")
        last = page.evaluate("window.events.filter(e => e.name === 'change').at(-1).event")
        assert last["complete"] is True
        assert last["empty"] is False

    def test_is_accessible_and_fits_a_phone(
        self, browser: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        context = browser.new_context(viewport={"width": 320, "height": 640})
        try:
            page = context.new_page()
            open_checkout(page, shop_url, new_intent(sdk))
            assert_accessible(page, "#payment-element")
            assert page.evaluate("document.documentElement.scrollWidth") <= 320
            box = card_frame(page).get_by_label("Security code").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 320
            # With every message showing, still accessible.
            page.get_by_role("button", name="Pay").click()
            page.wait_for_function("window.paymentResult !== undefined")
            assert_accessible(page, "#payment-element")
        finally:
            context.close()


class TestValidation:
    def test_empty_submit_shows_every_message_and_focuses_the_number(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)

        result = pay(page)

        assert result["error"]["type"] == "validation_error"
        assert result["error"]["code"] == "incomplete_number"
        assert result["error"]["message"] == "Your card number is incomplete."
        element = card_frame(page)
        for message in (
            "Your card number is incomplete.",
            "Your card's expiration date is incomplete.",
            "Your card's security code is incomplete.",
            "Your postal code is incomplete.",
        ):
            assert element.get_by_role("alert").filter(has_text=message).is_visible()
        number = card_frame(page).get_by_label("Card number")
        assert number.evaluate("el => el === document.activeElement")
        assert number.get_attribute("aria-invalid") == "true"
        error_id = number.get_attribute("aria-describedby")
        assert card_frame(page).locator(f"#{error_id}").inner_text() == (
            "Your card number is incomplete."
        )
        # Nothing reached the emulator.
        assert status_of(sdk, intent).status == "requires_payment_method"

    def test_invalid_number_and_past_expiry(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)

        # Luhn failures show as soon as the number is long enough, before submit.
        card_frame(page).get_by_label("Card number").fill("4242424242424241")
        assert card_frame(page).get_by_text("Your card number is invalid.").is_visible()
        assert card_frame(page).get_by_label("Card number").get_attribute("aria-invalid") == "true"
        card_frame(page).get_by_label("Card number").fill("4242424242424242")
        assert card_frame(page).get_by_text("Your card number is invalid.").count() == 0
        card_frame(page).get_by_label("Expiration date").fill("01 / 20")
        card_frame(page).get_by_label("Security code").fill("12")
        card_frame(page).get_by_label("Postal code").fill("10001")

        result = pay(page)

        assert result["error"]["code"] == "invalid_expiry_year_past"
        assert result["error"]["message"] == "Your card's expiration year is in the past."
        assert (
            card_frame(page)
            .get_by_label("Expiration date")
            .evaluate("el => el === document.activeElement")
        )
        assert card_frame(page).get_by_text("Your card's security code is incomplete.").is_visible()
        assert status_of(sdk, intent).status == "requires_payment_method"

    def test_elements_submit_answers_like_stripe(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))
        card_frame(page).get_by_label("Card number").fill("4242")
        assert page.evaluate("elements.submit()") == {
            "error": {
                "type": "validation_error",
                "code": "incomplete_number",
                "message": "Your card number is incomplete.",
            }
        }
        fill_card(page, "4242424242424242")
        assert page.evaluate("elements.submit()") == {}
        assert page.evaluate("elements.fetchUpdates()") == {}


class TestConfirmPayment:
    def test_success(self, page: Any, shop_url: str, sdk: stripe.StripeClient) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent, email="jenny@example.com")
        fill_card(page, "4242424242424242")

        result = pay(page)

        assert result["paymentIntent"]["id"] == intent.id
        assert result["paymentIntent"]["status"] == "succeeded"
        assert page.locator("#message").inner_text() == "Payment succeeded"
        server = status_of(sdk, intent)
        assert server.status == "succeeded"
        assert server.receipt_email == "jenny@example.com"
        # The PaymentMethod holds the element's fields plus confirmParams.payment_method_data.
        method = sdk.v1.payment_methods.retrieve(server.payment_method)
        assert method.card.last4 == "4242"
        assert method.billing_details.name == "Jenny Rosen"
        assert method.billing_details.email == "jenny@example.com"
        assert method.billing_details.address.postal_code == "10001"

    def test_generic_decline(self, page: Any, shop_url: str, sdk: stripe.StripeClient) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4000000000000002")

        error = pay(page)["error"]

        assert error["type"] == "card_error"
        assert error["code"] == "card_declined"
        assert error["decline_code"] == "generic_decline"
        assert error["message"] == "Your card was declined."
        assert error["payment_intent"]["id"] == intent.id
        assert page.locator("#message").inner_text() == "Your card was declined."
        server = status_of(sdk, intent)
        assert server.status == "requires_payment_method"
        assert server.last_payment_error.decline_code == "generic_decline"

    def test_insufficient_funds_then_retry_on_the_same_intent(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4000000000009995")

        error = pay(page)["error"]

        assert (error["type"], error["decline_code"]) == ("card_error", "insufficient_funds")
        assert error["message"] == "Your card has insufficient funds."
        assert status_of(sdk, intent).status == "requires_payment_method"

        # A declined card does not end the checkout: the buyer tries another card.
        card_frame(page).get_by_label("Card number").fill("4242424242424242")
        assert pay(page)["paymentIntent"]["status"] == "succeeded"
        assert status_of(sdk, intent).status == "succeeded"

    def test_network_failure_is_an_api_connection_error(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4242424242424242")
        page.route("**/v1/payment_methods", lambda route: route.abort())

        error = pay(page)["error"]

        assert error["type"] == "api_connection_error"
        assert status_of(sdk, intent).status == "requires_payment_method"

    def test_redirect_always_goes_to_return_url(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent, redirect="always")
        fill_card(page, "4242424242424242")

        page.get_by_role("button", name="Pay").click()
        page.wait_for_url("**/return.html?**")

        query = parse_qs(urlparse(page.url).query)
        assert query["payment_intent"] == [intent.id]
        assert query["payment_intent_client_secret"] == [intent.client_secret]
        assert query["redirect_status"] == ["succeeded"]
        assert status_of(sdk, intent).status == "succeeded"

    def test_deferred_intent_flow(self, page: Any, shop_url: str, sdk: stripe.StripeClient) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent, flow="deferred")
        fill_card(page, "4242424242424242")

        assert pay(page)["paymentIntent"]["status"] == "succeeded"
        assert status_of(sdk, intent).status == "succeeded"


class TestThreeDSecure:
    def test_complete(self, page: Any, shop_url: str, sdk: stripe.StripeClient) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4000002760003184")
        page.get_by_role("button", name="Pay").click()

        dialog = three_d_secure_dialog(page)
        assert dialog.get_attribute("aria-modal") == "true"
        assert status_of(sdk, intent).status == "requires_action"
        assert_accessible(page)
        dialog.get_by_role("button", name="Complete authentication").click()

        result = wait_for_result(page)
        assert result["paymentIntent"]["status"] == "succeeded"
        assert page.get_by_role("dialog").count() == 0
        assert status_of(sdk, intent).status == "succeeded"

    def test_fail(self, page: Any, shop_url: str, sdk: stripe.StripeClient) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4000002500003155")
        page.get_by_role("button", name="Pay").click()

        three_d_secure_dialog(page).get_by_role("button", name="Fail authentication").click()

        error = wait_for_result(page)["error"]
        assert error["code"] == "payment_intent_authentication_failure"
        assert error["type"] == "invalid_request_error"
        assert error["payment_intent"]["status"] == "requires_payment_method"
        server = status_of(sdk, intent)
        assert server.status == "requires_payment_method"
        assert server.last_payment_error.code == "payment_intent_authentication_failure"

    def test_complete_then_declined(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4000008400001629")
        page.get_by_role("button", name="Pay").click()

        three_d_secure_dialog(page).get_by_role("button", name="Complete authentication").click()

        error = wait_for_result(page)["error"]
        assert error["type"] == "card_error"
        assert error["code"] == "card_declined"
        server = status_of(sdk, intent)
        assert server.status == "requires_payment_method"
        assert server.last_payment_error.code == "card_declined"

    def test_keyboard_only(self, page: Any, shop_url: str, sdk: stripe.StripeClient) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        keyboard = page.keyboard

        keyboard.press("Tab")
        assert (
            card_frame(page)
            .get_by_label("Card number")
            .evaluate("el => el === document.activeElement")
        )
        keyboard.type("4000000000003220")
        keyboard.press("Tab")
        keyboard.type(FUTURE_EXPIRY.replace(" / ", ""))
        keyboard.press("Tab")
        keyboard.type("123")
        keyboard.press("Tab")
        keyboard.type("10001")
        keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "pay"
        keyboard.press("Enter")

        dialog = three_d_secure_dialog(page)
        focused = "document.activeElement.textContent"
        page.wait_for_function(f"{focused} === 'Complete authentication'")
        # Focus stays inside the dialog, both ways round.
        for key, expected in [
            ("Tab", "Fail authentication"),
            ("Tab", "Complete authentication"),
            ("Shift+Tab", "Fail authentication"),
            ("Shift+Tab", "Complete authentication"),
        ]:
            keyboard.press(key)
            assert page.evaluate(focused) == expected
        keyboard.press("Space")

        assert wait_for_result(page)["paymentIntent"]["status"] == "succeeded"
        assert dialog.count() == 0
        assert status_of(sdk, intent).status == "succeeded"


class TestOtherCalls:
    def test_handle_next_action_for_a_server_confirmed_intent(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        sdk.v1.payment_intents.confirm(
            intent.id,
            params={
                "payment_method": "pm_card_threeDSecure2Required",
                "return_url": f"{shop_url}/return.html",
            },
        )
        assert status_of(sdk, intent).status == "requires_action"
        open_checkout(page, shop_url, intent)

        page.evaluate(
            "cs => { window.pending = stripe.handleNextAction({clientSecret: cs})"
            ".then(r => { window.paymentResult = r; }); }",
            intent.client_secret,
        )
        three_d_secure_dialog(page).get_by_role("button", name="Complete authentication").click()

        assert wait_for_result(page)["paymentIntent"]["status"] == "succeeded"
        assert status_of(sdk, intent).status == "succeeded"

    def test_retrieve_payment_intent(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk, amount=4321)
        open_checkout(page, shop_url, intent)

        result = page.evaluate("cs => stripe.retrievePaymentIntent(cs)", intent.client_secret)

        assert result["paymentIntent"]["id"] == intent.id
        assert result["paymentIntent"]["amount"] == 4321
        assert result["paymentIntent"]["status"] == "requires_payment_method"

    def test_confirm_card_payment_with_a_card_element(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        page.evaluate(
            """() => {
                const holder = document.createElement('div');
                holder.id = 'card-element';
                document.querySelector('main').appendChild(holder);
                window.card = stripe.elements().create('card');
                window.card.mount('#card-element');
            }"""
        )
        card = card_frame(page, "#card-element")
        card.get_by_label("Card number").fill("4242424242424242")
        card.get_by_label("Expiration date").fill(FUTURE_EXPIRY)
        card.get_by_label("Security code").fill("123")
        card.get_by_label("Postal code").fill("10001")

        result = page.evaluate(
            "cs => stripe.confirmCardPayment(cs, {payment_method: {card: window.card}})",
            intent.client_secret,
        )

        assert "paymentIntent" in result, result
        assert result["paymentIntent"]["status"] == "succeeded"
        assert status_of(sdk, intent).status == "succeeded"


class TestIframeIsolation:
    def test_the_page_cannot_read_the_card_fields(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))
        fill_card(page, "4242424242424242")

        seen = page.evaluate(
            """() => {
                const frame = document.querySelector('#payment-element iframe');
                let error = null;
                try { frame.contentWindow.document.querySelector('input'); }
                catch (e) { error = e.name; }
                return {
                    contentDocument: frame.contentDocument,
                    error,
                    inputs: document.querySelectorAll('input').length,
                    text: document.body.innerText,
                };
            }"""
        )

        assert seen["contentDocument"] is None  # cross-origin: no document for the page
        assert seen["error"] == "SecurityError"
        assert seen["inputs"] == 0
        assert "4242" not in seen["text"]
        assert card_frame(page).get_by_label("Card number").input_value() == "4242 4242 4242 4242"

    def test_card_details_go_from_the_frame_to_the_emulator_only(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient, emulator_url: str
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)
        fill_card(page, "4242424242424242")
        carrying_card: list[tuple[str, str]] = []
        page.on(
            "request",
            lambda r: (
                carrying_card.append((r.url, r.frame.url))
                if "4242424242424242" in (r.post_data or "")
                else None
            ),
        )

        assert pay(page)["paymentIntent"]["status"] == "succeeded"

        assert len(carrying_card) == 1
        url, frame_url = carrying_card[0]
        assert url == f"{emulator_url}/v1/payment_methods"
        assert frame_url.startswith(f"{emulator_url}/js.stripe.com/v3/elements-inner.html")

    def test_messages_not_from_the_frame_are_ignored(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))
        # The page (or another frame) forges a "complete" change event on the channel.
        page.evaluate(
            """() => {
                const src = document.querySelector('#payment-element iframe').src;
                const channel = JSON.parse(decodeURIComponent(src.split('#')[1])).channel;
                window.postMessage({__stripeEmu: 1, channel, type: 'event', name: 'change',
                                    event: {elementType: 'payment', complete: true, forged: true}},
                                   '*');
            }"""
        )
        card_frame(page).get_by_label("Card number").fill("4242")
        page.wait_for_function("window.events.some(e => e.name === 'change')")

        changes = page.evaluate("window.events.filter(e => e.name === 'change').map(e => e.event)")
        assert not any(c.get("forged") for c in changes)
        assert page.evaluate("elements.submit()")["error"]["code"] == "incomplete_number"


class TestCreateConfirmationToken:
    def test_card_fields_become_a_token_the_server_confirms(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent, flow="deferred")
        fill_card(page, "4242424242424242")

        result = page.evaluate(
            """async () => {
                const submitted = await elements.submit();
                if (submitted.error) return submitted;
                return stripe.createConfirmationToken({elements, params: {
                    return_url: 'https://shop.example/return',
                    shipping: {name: 'Jenny Rosen', address: {line1: '1 Main St',
                               city: 'Springfield', postal_code: '10001', country: 'US'}},
                    payment_method_data: {billing_details: {email: 'jenny@example.com'}},
                }});
            }"""
        )

        token = result["confirmationToken"]
        assert token["id"].startswith("ctoken_")
        assert token["use_stripe_sdk"] is True
        assert token["payment_method_preview"]["card"]["last4"] == "4242"
        assert token["payment_method_preview"]["billing_details"]["email"] == "jenny@example.com"
        assert token["payment_method_preview"]["billing_details"]["address"]["postal_code"] == (
            "10001"
        )
        # The service side: read it, then create and confirm the intent in one call.
        assert sdk.v1.confirmation_tokens.retrieve(token["id"]).shipping.name == "Jenny Rosen"
        pi = sdk.v1.payment_intents.create(
            params={
                "amount": 1999,
                "currency": "usd",
                "automatic_payment_methods": {"enabled": True},
                "confirm": True,
                "confirmation_token": token["id"],
            }
        )
        assert pi.status == "succeeded"
        assert pi.shipping.address.city == "Springfield"

    def test_needs_submit_first_and_reports_validation_errors(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk), flow="deferred")
        integration = page.evaluate(
            "() => stripe.createConfirmationToken({elements}).then(() => null, e => e.name)"
        )
        assert integration == "IntegrationError"
        card_frame(page).get_by_label("Card number").fill("4242")
        assert page.evaluate("elements.submit()")["error"]["code"] == "incomplete_number"

    def test_three_d_secure_after_a_server_confirm_with_the_token(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent, flow="deferred")
        fill_card(page, "4000002760003184")
        token = page.evaluate(
            """async () => {
                await elements.submit();
                return (await stripe.createConfirmationToken({elements})).confirmationToken;
            }"""
        )
        pi = sdk.v1.payment_intents.create(
            params={
                "amount": 1999,
                "currency": "usd",
                "automatic_payment_methods": {"enabled": True},
                "confirm": True,
                "confirmation_token": token["id"],
                "return_url": f"{shop_url}/return.html",
            }
        )
        assert pi.status == "requires_action"

        page.evaluate(
            "cs => { stripe.handleNextAction({clientSecret: cs})"
            ".then(r => { window.paymentResult = r; }); }",
            pi.client_secret,
        )
        three_d_secure_dialog(page).get_by_role("button", name="Complete authentication").click()

        assert wait_for_result(page)["paymentIntent"]["status"] == "succeeded"
        assert sdk.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def open_express(page: Any, shop_url: str, **query: str) -> Any:
    """The express checkout test page, its wallet buttons ready (they are in an iframe)."""
    params = {"pk": PUBLISHABLE_KEY, **query}
    page.goto(f"{shop_url}/express.html?{urlencode(params)}")
    page.wait_for_function("window.log.some(e => e.name === 'ready')")
    return page.frame_locator("#express-checkout iframe")


def log_of(page: Any, name: str) -> list[dict[str, Any]]:
    return list(page.evaluate("n => window.log.filter(e => e.name === n)", name))


def wallet_sheet(page: Any, name: str = "Test Apple Pay") -> Any:
    sheet = page.get_by_role("dialog", name=name)
    sheet.wait_for()
    return sheet


class TestExpressCheckout:
    def test_wallet_buttons_and_ready(self, page: Any, shop_url: str) -> None:
        buttons = open_express(page, shop_url)
        for label in ("Test Apple Pay", "Test Google Pay", "Link"):
            assert buttons.get_by_role("button", name=label).is_visible()
        ready = log_of(page, "ready")[0]
        assert ready["available"]["applePay"] is True
        assert ready["available"]["link"] is True

    def test_full_wallet_payment_emits_stripes_events_and_a_token(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        buttons = open_express(page, shop_url)

        buttons.get_by_role("button", name="Test Apple Pay").click()
        sheet = wallet_sheet(page)
        page.wait_for_function("window.log.some(e => e.name === 'shippingaddresschange')")
        assert log_of(page, "click") == [{"name": "click", "wallet": "apple_pay"}]
        change = log_of(page, "shippingaddresschange")[0]
        assert change["recipient"] == "Jenny Rosen"
        # Only what prices shipping, as at Stripe: no street line before the buyer pays.
        assert change["address"] == {
            "city": "San Francisco",
            "state": "CA",
            "postal_code": "94102",
            "country": "US",
        }
        pay_button = sheet.get_by_role("button", name="Pay $24.99")
        pay_button.wait_for()  # elements.update({amount}) re-priced the sheet
        assert_accessible(page, "[data-stripe-emulator=wallet]")

        sheet.get_by_label("Express — $15.00").check()
        page.wait_for_function("window.log.some(e => e.name === 'shippingratechange')")
        assert log_of(page, "shippingratechange")[0]["rate"]["id"] == "express"
        sheet.get_by_role("button", name="Pay $34.99").click()

        page.wait_for_function("window.tokenResult !== undefined")
        confirm = log_of(page, "confirm")[0]
        assert confirm["wallet"] == "apple_pay"
        assert confirm["shippingAddress"]["address"]["line1"] == "1234 Fake Street"
        assert confirm["shippingRate"]["id"] == "express"
        assert confirm["billingDetails"]["email"] == "jenny.rosen@example.com"
        assert page.get_by_role("dialog").count() == 0
        token = page.evaluate("window.tokenResult")["confirmationToken"]
        # The token carries the wallet's shipping and card; the server prices and confirms.
        server_token = sdk.v1.confirmation_tokens.retrieve(token["id"])
        assert server_token.shipping.name == "Jenny Rosen"
        assert server_token.shipping.address.postal_code == "94102"
        assert server_token.payment_method_preview.card.wallet.type == "apple_pay"
        pi = sdk.v1.payment_intents.create(
            params={
                "amount": 3499,
                "currency": "usd",
                "automatic_payment_methods": {"enabled": True},
                "confirm": True,
                "confirmation_token": token["id"],
            }
        )
        assert pi.status == "succeeded"
        assert pi.shipping.address.line1 == "1234 Fake Street"
        charge = sdk.v1.charges.retrieve(pi.latest_charge)
        assert charge.payment_method_details.card.wallet.type == "apple_pay"

    def test_rejected_address_blocks_paying(self, page: Any, shop_url: str) -> None:
        buttons = open_express(page, shop_url)
        buttons.get_by_role("button", name="Test Google Pay").click()
        sheet = wallet_sheet(page, "Test Google Pay")
        sheet.get_by_role("button", name="Pay $24.99").wait_for()

        sheet.get_by_label("Shipping address").select_option(index=1)  # Ada Lovelace, London

        sheet.get_by_role("alert").filter(has_text="not available").wait_for()
        assert sheet.get_by_role("button", name=re.compile("^Pay")).is_disabled()
        assert log_of(page, "shippingaddresschange")[-1]["address"]["country"] == "GB"
        # Back to a US address: the page accepts it and paying is possible again.
        sheet.get_by_label("Shipping address").select_option(index=0)  # Jenny Rosen, SF
        page.wait_for_function(
            "window.log.filter(e => e.name === 'shippingaddresschange').length >= 3"
        )
        sheet.get_by_role("button", name="Pay $24.99").wait_for()
        assert sheet.get_by_role("button", name="Pay $24.99").is_enabled()

    def test_cancel_and_escape_emit_cancel(self, page: Any, shop_url: str) -> None:
        buttons = open_express(page, shop_url)
        buttons.get_by_role("button", name="Link").click()
        wallet_sheet(page, "Link").get_by_role("button", name="Cancel").click()
        page.wait_for_function("window.log.some(e => e.name === 'cancel')")
        assert page.get_by_role("dialog").count() == 0

        buttons.get_by_role("button", name="Test Apple Pay").click()
        wallet_sheet(page)
        page.keyboard.press("Escape")
        page.wait_for_function("window.log.filter(e => e.name === 'cancel').length === 2")
        assert log_of(page, "confirm") == []
        assert page.evaluate("window.tokenResult") is None

    def test_click_reject_opens_no_sheet(self, page: Any, shop_url: str) -> None:
        buttons = open_express(page, shop_url, reject="click")
        buttons.get_by_role("button", name="Test Apple Pay").click()
        page.wait_for_function("window.log.some(e => e.name === 'click')")
        assert page.get_by_role("dialog").count() == 0

    def test_declining_wallet_card_gives_a_card_error_on_confirm(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        buttons = open_express(page, shop_url)
        buttons.get_by_role("button", name="Test Apple Pay").click()
        sheet = wallet_sheet(page)
        sheet.get_by_label("Card").select_option(label="Visa •••• 0002 (declined)")
        sheet.get_by_role("button", name="Pay $24.99").click()
        page.wait_for_function("window.tokenResult !== undefined")
        token = page.evaluate("window.tokenResult")["confirmationToken"]

        with pytest.raises(stripe.CardError) as err:
            sdk.v1.payment_intents.create(
                params={
                    "amount": 2499,
                    "currency": "usd",
                    "automatic_payment_methods": {"enabled": True},
                    "confirm": True,
                    "confirmation_token": token["id"],
                }
            )
        assert err.value.code == "card_declined"


class TestSavedCards:
    """Wave 3: given a CustomerSession's secret the Payment Element lists the buyer's saved
    cards, and pays with one without a card number being typed."""

    def saved_card(self, sdk: stripe.StripeClient) -> tuple[str, str]:
        customer = sdk.v1.customers.create()
        first = sdk.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": "pm_card_visa",
                "setup_future_usage": "on_session",
                "confirm": True,
            }
        )
        return customer.id, str(first.payment_method)

    def session_secret(self, sdk: stripe.StripeClient, customer: str) -> str:
        session = sdk.v1.customer_sessions.create(
            params={
                "customer": customer,
                "components": {
                    "payment_element": {
                        "enabled": True,
                        "features": {
                            "payment_method_redisplay": "enabled",
                            "payment_method_save": "enabled",
                            "payment_method_remove": "enabled",
                            "payment_method_allow_redisplay_filters": ["always", "limited"],
                        },
                    }
                },
            }
        )
        return str(session.client_secret)

    def test_a_saved_card_pays_without_typing(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        customer, saved = self.saved_card(sdk)
        intent = sdk.v1.payment_intents.create(
            params={
                "amount": 2500,
                "currency": "usd",
                "customer": customer,
                "automatic_payment_methods": {"enabled": True},
            }
        )
        open_checkout(page, shop_url, intent, css=self.session_secret(sdk, customer))

        choice = card_frame(page).get_by_role("radio", name=re.compile(r"Visa ending in 4242"))
        assert choice.is_checked()
        assert_accessible(page)
        assert not card_frame(page).get_by_label("Card number").is_visible()
        result = pay(page)
        assert result["paymentIntent"]["status"] == "succeeded", result
        assert status_of(sdk, intent).payment_method == saved

    def test_new_card_shows_the_fields_again(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        customer, saved = self.saved_card(sdk)
        intent = sdk.v1.payment_intents.create(
            params={"amount": 2500, "currency": "usd", "customer": customer}
        )
        open_checkout(page, shop_url, intent, css=self.session_secret(sdk, customer))

        card_frame(page).get_by_label("New card").check()
        fill_card(page, "4000056655665556")
        result = pay(page)
        assert result["paymentIntent"]["status"] == "succeeded", result
        assert status_of(sdk, intent).payment_method != saved

    def test_the_remove_button_detaches_a_saved_card(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        customer, saved = self.saved_card(sdk)
        intent = sdk.v1.payment_intents.create(
            params={"amount": 2500, "currency": "usd", "customer": customer}
        )
        open_checkout(page, shop_url, intent, css=self.session_secret(sdk, customer))

        card_frame(page).get_by_role("button", name="Remove this card (Visa 4242)").click()
        card_frame(page).get_by_label("Card number").wait_for()
        assert card_frame(page).get_by_label(re.compile(r"Visa ending in 4242")).count() == 0
        assert sdk.v1.payment_methods.retrieve(saved).customer is None
