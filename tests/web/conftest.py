"""Fixtures for the browser tests: the demo stack on free ports, Chromium, and a view
of the server side (orders in the database, holds in Redis, charges at the emulator).

The stack is the supervisor behind ``make demo`` (web, worker, clock, Stripe emulator,
mail catcher; Redis is the real one on this run's own db index when ``REDIS_URL`` is
set, else the embedded server), started once per session.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.serving import free_port
from tests.conftest import REAL_REDIS_URL
from tests.web.shop_hooks import SECRET as SHOP_HOOK_SECRET
from tests.web.shop_hooks import ShopHookReceiver

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "browser-tests-jwt-secret-0123456789abcdef"
DEMO = [sys.executable, "-m", "devstack.demo", "--free-ports"]
# The mug is what CheckoutPage.buy() buys: the session's browser tests buy more of it
# (paid, never shipped) than the demo seeds (40), so the session stack stocks it up.
MUG_SUPPLY = 1000
# Function strings: Playwright evaluates bare expressions with eval(), which the CSP forbids.
PAYABLE = "() => document.querySelector('#pay').textContent.startsWith('Pay $')"
# The Payment Element's fields live in an iframe from the Stripe origin (here the emulator's).
CARD_FRAME = "#payment-element iframe"


@dataclass
class Stack:
    """Where the demo stack runs, plus server-side views for assertions."""

    web_url: str
    emulator_url: str
    mail_url: str
    redis_url: str
    database_path: str
    # The shop's webhook endpoint the stack delivers to (None for a reused stack).
    shop_hooks: ShopHookReceiver | None = None

    # --- the database: the record of orders ------------------------------------------

    def orders_for(self, email: str) -> list[dict[str, Any]]:
        """Every order placed with ``email`` (id, state, payment and reservation ids)."""
        with sqlite3.connect(self.database_path) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT id, order_number, state, payment_intent_id, reservation_id, total"
                " FROM orders WHERE email = ?",
                (email,),
            ).fetchall()
        return [dict(row) for row in rows]

    def wait_for_order_state(self, email: str, state: str, timeout: float = 30) -> dict[str, Any]:
        """Poll until the single order of ``email`` reaches ``state``."""
        deadline = time.monotonic() + timeout
        while True:
            orders = self.orders_for(email)
            if len(orders) == 1 and orders[0]["state"] == state:
                return orders[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"orders of {email}: {orders}, expected one {state}")
            time.sleep(0.2)

    def wait_for_order_state_of(
        self, order_id: str, state: str, timeout: float = 30
    ) -> dict[str, Any]:
        """Poll until the order ``order_id`` reaches ``state``."""
        deadline = time.monotonic() + timeout
        while True:
            with sqlite3.connect(self.database_path) as conn:
                conn.row_factory = sqlite3.Row
                row = conn.execute(
                    "SELECT id, order_number, state, payment_intent_id, reservation_id, total"
                    " FROM orders WHERE id = ?",
                    (order_id,),
                ).fetchone()
            if row is not None and row["state"] == state:
                return dict(row)
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id}: {row and dict(row)}, expected {state}")
            time.sleep(0.2)

    # --- Redis: holds --------------------------------------------------------------------

    def hold_status(self, reservation_id: str) -> str | None:
        """HELD, CONFIRMED or RELEASED (None when unknown)."""
        import redis

        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            return client.hget(f"{{shop}}:res:{reservation_id}", "status")
        finally:
            client.close()

    # --- the Stripe emulator: charges ------------------------------------------------------

    def charges(self, intent_id: str) -> list[dict[str, Any]]:
        """The charges of a PaymentIntent, as the emulator records them."""
        response = requests.get(
            f"{self.emulator_url}/v1/charges",
            params={"payment_intent": intent_id, "limit": 100},
            auth=("sk_test_emulator", ""),
            timeout=10,
        )
        response.raise_for_status()
        return list(response.json()["data"])

    def succeeded_charges(self, intent_id: str) -> list[dict[str, Any]]:
        """Charges that took money."""
        return [c for c in self.charges(intent_id) if c["status"] == "succeeded"]

    def deliveries(self, event_type: str) -> list[dict[str, Any]]:
        """The emulator's webhook delivery log for one event type."""
        response = requests.get(
            f"{self.emulator_url}/_emulator/deliveries", params={"type": event_type}, timeout=10
        )
        response.raise_for_status()
        return list(response.json()["data"])

    def chaos(self, **settings: Any) -> None:
        """Set the emulator's chaos knobs (e.g. deliveryDelayMs)."""
        requests.post(f"{self.emulator_url}/_emulator/chaos", json=settings, timeout=10)

    def admin_token(self) -> str:
        """An admin JWT for this stack."""
        import jwt

        return jwt.encode(
            {"sub": "browser-tests", "role": "admin", "exp": int(time.time()) + 3600},
            JWT_SECRET,
            "HS256",
        )

    def set_stock(self, sku: str, stock_on_hand: int) -> None:
        """Change a product's stock through the admin API."""
        products = requests.get(f"{self.web_url}api/products", timeout=10).json()
        product = next(p for p in products if p["sku"] == sku)
        body = {
            "name": product["name"],
            "description": product["description"],
            "price": product["price"],
            "stockOnHand": stock_on_hand,
        }
        response = requests.put(
            f"{self.web_url}api/admin/products/{sku}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=10,
        )
        response.raise_for_status()


def start_demo(tmp: Path, env_overrides: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict]:
    """Start ``python -m devstack.demo`` on free ports; return it and its state file."""
    state_file = tmp / "state.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    for key in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        env.pop(key, None)
    env.update(env_overrides)
    with open(tmp / "demo.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [*DEMO, "--var-dir", str(tmp / "var"), "--state-file", str(state_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the demo did not start:\n" + (tmp / "demo.log").read_text()[-4000:])
        time.sleep(0.2)
    return process, json.loads(state_file.read_text())


def stop_demo(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C the demo and wait for it; its exit code."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.fixture(scope="session")
def storefront_port() -> int:
    """The port the React storefront example is served on (its origin passes CORS).

    ``REACT_SHOP_PORT`` fixes it, for a stack reused through ``BROWSER_TESTS_STACK`` that
    was started with ``FRONTEND_ORIGINS=http://127.0.0.1:<that port>``.
    """
    return int(os.environ.get("REACT_SHOP_PORT") or free_port())


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, storefront_port: int
) -> Iterator[Stack]:
    """The demo stack, once per session (each test uses its own buyer email).

    ``BROWSER_TESTS_STACK=<state file>`` reuses a stack already started with
    ``python -m devstack.demo --state-file <state file>`` (handy while editing the page).
    """
    reuse = os.environ.get("BROWSER_TESTS_STACK")
    if reuse:
        yield _stack_from(json.loads(Path(reuse).read_text()))
        return
    tmp = tmp_path_factory.mktemp("demo")
    overrides = {
        "JWT_SECRET": JWT_SECRET,
        # Tests pay many times from one IP; the limiter itself is tested in tests/api.
        "RATELIMIT_CHECKOUT": "1000/minute",
        "RATELIMIT_CONFIRM": "1000/minute",
        # Every browser of the suite is 127.0.0.1: the tracking page and the order page's
        # tracked follow (a guest without a token) share one IP's budget.
        "RATELIMIT_TRACK": "1000/minute",
        # The React storefront (tests/web/test_react_shop_browser.py) calls the API from
        # its own origin; the demo adds the localhost twin.
        "FRONTEND_ORIGINS": f"http://127.0.0.1:{storefront_port}",
    }
    if REAL_REDIS_URL:
        overrides["REDIS_URL"] = request.getfixturevalue("real_redis_url")
    receiver = ShopHookReceiver().start()  # the shop's backend (the console's "Resend")
    overrides |= {"SHOP_WEBHOOK_URLS": receiver.url, "SHOP_WEBHOOK_SECRETS": SHOP_HOOK_SECRET}
    try:
        process, state = start_demo(tmp, overrides)
        try:
            stack = replace(_stack_from(state), shop_hooks=receiver)
            stack.set_stock("MUG-LOGO", MUG_SUPPLY)
            yield stack
        finally:
            code = stop_demo(process)
    finally:
        receiver.stop()
    assert code == 0, "Ctrl-C stops the demo cleanly:\n" + (tmp / "demo.log").read_text()[-3000:]


def _stack_from(state: dict[str, Any]) -> Stack:
    return Stack(
        web_url=state["webUrl"],
        emulator_url=state["emulatorUrl"],
        mail_url=state["mailUrl"],
        redis_url=state["redisUrl"],
        database_path=state["databaseUrl"].removeprefix("sqlite:///"),
    )


@pytest.fixture(scope="session", autouse=True)
def patient_expect() -> None:
    """Playwright's ``expect`` waits up to 20 s in these tests."""
    from playwright.sync_api import expect

    # Steps wait on a worker and webhooks; a cold first message can take seconds. The
    # assertions are about outcomes, never about how fast they come.
    expect.set_options(timeout=20_000)


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A fresh browser context (own sessionStorage) on the checkout page."""
    context = browser.new_context(base_url=stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def buyer_email() -> str:
    """A buyer email of this test's own, to find its orders."""
    return f"buyer-{uuid.uuid4().hex[:10]}@example.com"


class CheckoutPage:
    """The reference checkout page, driven the way a buyer drives it."""

    def __init__(self, page: Any, stack: Stack, email: str) -> None:
        self.page = page
        self.stack = stack
        self.email = email

    def open(self) -> CheckoutPage:
        """Load the page and wait for the catalog."""
        self.page.goto("/")
        self.page.locator("#products li").first.wait_for()
        return self

    def add(self, name: str, times: int = 1) -> CheckoutPage:
        """Press "Add <name> to cart" ``times`` times."""
        for _ in range(times):
            self.page.get_by_role("button", name=f"Add {name} to cart").click()
        return self

    def fill_details(self) -> CheckoutPage:
        """Contact and shipping address (billing stays "same as shipping")."""
        p = self.page
        p.get_by_label("Full name").fill("Ada Lovelace")
        p.get_by_label("Email").fill(self.email)
        shipping = p.locator("#shipping-fields")
        shipping.get_by_label("Address line 1").fill("1 Analytical Way")
        shipping.get_by_label("City").fill("London")
        shipping.get_by_label("Postal code").fill("94107")
        shipping.get_by_label("Country").select_option("US")
        return self

    def fill_card(self, number: str) -> CheckoutPage:
        """Type a test card into the Payment Element."""
        element = self.card_fields()
        element.get_by_label("Card number").wait_for()
        element.get_by_label("Card number").fill(number)
        element.get_by_label("Expiration date").fill("12 / 34")
        element.get_by_label("Security code").fill("123")
        postal = element.get_by_label("Postal code")
        if postal.count():
            postal.fill("94107")
        return self

    def card_fields(self) -> Any:
        """The Payment Element's fields (a frame locator: they are in its iframe)."""
        return self.page.frame_locator(CARD_FRAME)

    @property
    def pay_button(self) -> Any:
        return self.page.locator("#pay")

    def pay(self) -> CheckoutPage:
        """Press Pay once the totals are in."""
        self.page.wait_for_function(PAYABLE)
        self.pay_button.click()
        return self

    def authenticate(self, outcome: str) -> CheckoutPage:
        """Answer the 3-D Secure modal: "Complete" or "Fail"."""
        button = self.page.get_by_role("button", name=f"{outcome} authentication")
        error = self.page.locator("#error-summary:not([hidden])")
        # Whichever comes first: a page error instead of the modal should fail with its text.
        button.or_(error).first.wait_for()
        assert not error.is_visible(), f"no 3-D Secure modal; the page says: {error.inner_text()}"
        button.click()
        return self

    def error(self) -> Any:
        """The error summary (role=alert)."""
        return self.page.locator("#error-summary")

    def wait_for_error(self, kind: str) -> Any:
        """Wait until the error summary shows an error of ``kind``; return it."""
        box = self.error()
        self.page.wait_for_selector(f'#error-summary[data-kind="{kind}"]:not([hidden])')
        return box

    def wait_for_order_page(self) -> str:
        """Wait for the order page; return the order id from its URL."""
        self.page.wait_for_url("**/order/**", timeout=60_000)
        return str(self.page.url.split("/order/")[1].split("?")[0])

    def order_state(self) -> Any:
        return self.page.locator("#order-state")

    def buy(self, card: str = "4242424242424242", product: str = "Logo mug") -> CheckoutPage:
        """The whole happy path up to pressing Pay."""
        return self.open().add(product).fill_details().fill_card(card).pay()


@pytest.fixture
def checkout(page: Any, stack: Stack, buyer_email: str) -> CheckoutPage:
    """The checkout page for this test's buyer."""
    return CheckoutPage(page, stack, buyer_email)
