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


def fill_card(
    page: Any,
    number: str,
    expiry: str = FUTURE_EXPIRY,
    cvc: str = "123",
    postal: str = "10001",
) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiration date").fill(expiry)
    page.get_by_label("Security code").fill(cvc)
    page.get_by_label("Postal code").fill(postal)


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

        number = page.get_by_label("Card number")
        assert number.get_attribute("autocomplete") == "cc-number"
        assert number.get_attribute("inputmode") == "numeric"
        assert page.get_by_label("Expiration date").get_attribute("autocomplete") == "cc-exp"
        assert page.get_by_label("Security code").get_attribute("autocomplete") == "cc-csc"
        assert page.get_by_label("Postal code").get_attribute("autocomplete") == "postal-code"
        assert page.get_by_text("offline Stripe.js stand-in").is_visible()
        # Inside the mount point, not an iframe; the API base came from the <script src>.
        assert page.locator("#payment-element input").count() == 4
        assert page.locator("#payment-element iframe").count() == 0
        assert page.evaluate("Stripe.emulator.apiBase") == emulator_url

    def test_number_is_grouped_as_typed_and_change_events_follow(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))

        number = page.get_by_label("Card number")
        number.press_sequentially("4242424242424242")
        assert number.input_value() == "4242 4242 4242 4242"
        expiry = page.get_by_label("Expiration date")
        expiry.press_sequentially("4")
        assert expiry.input_value() == "04 / "  # a month above 1 cannot take a second digit
        expiry.fill("")
        expiry.press_sequentially("12" + FUTURE_EXPIRY[-2:])
        assert expiry.input_value() == FUTURE_EXPIRY
        page.get_by_label("Security code").fill("123")
        changes = page.evaluate("window.events.filter(e => e.name === 'change').map(e => e.event)")
        assert changes[0] == {
            "elementType": "payment",
            "empty": False,
            "complete": False,
            "collapsed": False,
            "value": {"type": "card"},
        }
        assert not changes[-1]["complete"]  # postal code still missing
        page.get_by_label("Postal code").fill("10001")
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
            box = page.get_by_label("Security code").bounding_box()
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
        element = page.locator("#payment-element")
        for message in (
            "Your card number is incomplete.",
            "Your card's expiration date is incomplete.",
            "Your card's security code is incomplete.",
            "Your postal code is incomplete.",
        ):
            assert element.get_by_role("alert").filter(has_text=message).is_visible()
        number = page.get_by_label("Card number")
        assert number.evaluate("el => el === document.activeElement")
        assert number.get_attribute("aria-invalid") == "true"
        error_id = number.get_attribute("aria-describedby")
        assert page.locator(f"#{error_id}").inner_text() == "Your card number is incomplete."
        # Nothing reached the emulator.
        assert status_of(sdk, intent).status == "requires_payment_method"

    def test_invalid_number_and_past_expiry(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        intent = new_intent(sdk)
        open_checkout(page, shop_url, intent)

        # Luhn failures show as soon as the number is long enough, before submit.
        page.get_by_label("Card number").fill("4242424242424241")
        assert page.get_by_text("Your card number is invalid.").is_visible()
        assert page.get_by_label("Card number").get_attribute("aria-invalid") == "true"
        page.get_by_label("Card number").fill("4242424242424242")
        assert page.get_by_text("Your card number is invalid.").count() == 0
        page.get_by_label("Expiration date").fill("01 / 20")
        page.get_by_label("Security code").fill("12")
        page.get_by_label("Postal code").fill("10001")

        result = pay(page)

        assert result["error"]["code"] == "invalid_expiry_year_past"
        assert result["error"]["message"] == "Your card's expiration year is in the past."
        assert page.get_by_label("Expiration date").evaluate("el => el === document.activeElement")
        assert page.get_by_text("Your card's security code is incomplete.").is_visible()
        assert status_of(sdk, intent).status == "requires_payment_method"

    def test_elements_submit_answers_like_stripe(
        self, page: Any, shop_url: str, sdk: stripe.StripeClient
    ) -> None:
        open_checkout(page, shop_url, new_intent(sdk))
        page.get_by_label("Card number").fill("4242")
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
        page.get_by_label("Card number").fill("4242424242424242")
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
        assert page.get_by_label("Card number").evaluate("el => el === document.activeElement")
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
        card = page.locator("#card-element")
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
