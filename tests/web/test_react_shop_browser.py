"""The React storefront example (examples/react-shop) in Chromium against the demo stack.

The app is built once per session with ``npm ci`` + ``vite build`` (reused while its
inputs do not change), baked with this stack's URLs, served from its own origin (so every
API call is cross-origin, through FRONTEND_ORIGINS) and driven as a buyer would: 4242 to
PAID, 3-D Secure, a decline then a retry on the same order, and a sold-out line shown
before Pay. Each test asserts on the server too: the order in the database, its hold in
Redis, the charges at the Stripe emulator. No request may leave for stripe.com.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from devstack.demo import STRIPE_JS_RELEASE_TRAIN
from tests.web import storefront
from tests.web.conftest import MUG_SUPPLY, Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

STRIPE_HOST = re.compile(r"(^|\.)stripe\.com$")


@pytest.fixture(scope="session")
def npm() -> str:
    """npm, checked before the stack starts (skipped without Node; failed under CI=true)."""
    return storefront.require_node()


@pytest.fixture(scope="session")
def shop_url(npm: str, stack: Stack, storefront_port: int) -> Iterator[str]:
    """The storefront's origin: built for this stack, served from dist/, catalog synced."""
    train = STRIPE_JS_RELEASE_TRAIN
    dist = storefront.build(
        npm,
        {
            "VITE_API_URL": stack.web_url.rstrip("/"),
            "VITE_STRIPE_PUBLISHABLE_KEY": "pk_test_emulator",
            # The URL make demo prints: the release @stripe/stripe-js expects.
            "VITE_STRIPE_JS_URL": f"{stack.emulator_url}/js.stripe.com/{train}/stripe.js",
        },
    )
    # The shop syncs its catalog (images are paths on the storefront's origin).
    catalog = json.loads((storefront.SHOP / "catalog.json").read_text())
    put_products(stack, [keep_mug_supply(product) for product in catalog["products"]])
    with storefront.serve(dist, storefront_port) as origin:
        yield origin


def keep_mug_supply(product: dict[str, Any]) -> dict[str, Any]:
    """The example's catalog, but the session's mug supply (conftest.MUG_SUPPLY) kept:
    other browser suites buy mugs before and after this one."""
    return {**product, "stockOnHand": MUG_SUPPLY} if product["sku"] == "MUG-LOGO" else product


def put_products(stack: Stack, products: list[dict[str, Any]]) -> None:
    response = requests.put(
        f"{stack.web_url}api/admin/products",
        json={"products": products},
        headers={"Authorization": f"Bearer {stack.admin_token()}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


class Shop:
    """The storefront, driven the way a buyer drives it."""

    def __init__(self, page: Any, stack: Stack, email: str) -> None:
        self.page = page
        self.stack = stack
        self.email = email

    def open(self) -> Shop:
        self.page.goto("/")
        self.page.locator(".product").first.wait_for()
        return self

    def add(self, name: str, times: int = 1) -> Shop:
        for _ in range(times):
            self.page.get_by_role("button", name=f"Add {name} to cart").click()
        return self

    def to_checkout(self) -> Shop:
        self.page.get_by_role("link", name=re.compile(r"^Cart \(")).click()
        self.page.locator("#total").wait_for()
        return self

    def fill_details(self) -> Shop:
        p = self.page
        p.get_by_label("Email").fill(self.email)
        p.get_by_label("Full name").fill("Ada Lovelace")
        p.get_by_label("Address line 1").fill("1 Analytical Way")
        p.get_by_label("City").fill("London")
        p.get_by_label("Postal code").fill("94107")
        p.get_by_label("Country").select_option("US")
        return self

    def fill_card(self, number: str) -> Shop:
        """The Payment Element's fields are in its iframe, from the emulator's origin."""
        card = self.page.frame_locator("#payment-element iframe")
        card.get_by_label("Card number").fill(number)
        card.get_by_label("Expiration date").fill("12 / 34")
        card.get_by_label("Security code").fill("123")
        postal = card.get_by_label("Postal code")
        if postal.count():
            postal.fill("94107")
        return self

    def pay(self) -> Shop:
        self.page.get_by_role("button", name=re.compile(r"^Pay \$")).click()
        return self

    def buy(self, card: str, product: str = "Logo mug") -> Shop:
        return self.open().add(product).to_checkout().fill_details().fill_card(card).pay()

    def wait_for_paid_order_page(self) -> str:
        """The order page, once it shows PAID (the webhook's doing); its order id."""
        self.page.wait_for_url(re.compile(r"/orders/[^/?]+$"), timeout=30_000)
        expect(self.page.locator("#order-state")).to_have_attribute("data-state", "PAID")
        return str(self.page.url.rsplit("/orders/", 1)[1])


@pytest.fixture
def shop(shop_url: str, browser: Any, stack: Stack, buyer_email: str) -> Iterator[Shop]:
    """A fresh context on the storefront; fails the test if anything asked for stripe.com."""
    context = browser.new_context(base_url=shop_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    to_stripe: list[str] = []

    def guard(route: Any) -> None:
        if STRIPE_HOST.search(urlsplit(route.request.url).hostname or ""):
            to_stripe.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    page = context.new_page()
    warnings: list[str] = []
    page.on("console", lambda message: message.type == "warning" and warnings.append(message.text))
    yield Shop(page, stack, buyer_email)
    context.close()
    assert to_stripe == [], "the storefront must not reach Stripe offline"
    # The stand-in announces the Stripe.js release @stripe/stripe-js expects.
    assert not [w for w in warnings if "was loaded on the page" in w], warnings


def assert_paid_once(stack: Stack, email: str, order_id: str) -> dict[str, Any]:
    order = stack.wait_for_order_state(email, "PAID")
    assert order["id"] == order_id
    assert len(stack.succeeded_charges(order["payment_intent_id"])) == 1
    assert stack.hold_status(order["reservation_id"]) == "CONFIRMED"
    return order


def test_catalog_shows_images_and_filters_by_category(shop: Shop):
    shop.open()
    mug = shop.page.locator(".product", has_text="Logo mug")
    expect(mug.locator("img")).to_have_attribute("src", "/images/mug.svg")
    # Loaded and decoded (not a broken image). The images load lazily: other suites add
    # products to the session's catalog, which can push the mug below the fold.
    mug.scroll_into_view_if_needed()
    image = mug.locator("img").element_handle()
    shop.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image)
    expect(mug).to_contain_text("$14.00")
    expect(mug).to_contain_text("Kiln Works · Home")
    shop.page.get_by_role("group", name="Categories").get_by_role("button", name="Home").click()
    categories = shop.page.locator(".product .meta").all_inner_texts()
    assert categories and all(text.endswith("Home") for text in categories), categories
    poster = shop.page.get_by_role("button", name="Add Limited poster to cart")
    shop.page.get_by_role("button", name="All").click()
    expect(poster).to_be_disabled()  # sold out (available: 0) is listed, not sellable


def test_4242_pays_and_the_order_page_follows_it_to_paid(shop: Shop):
    shop.open().add("Logo mug", times=2).to_checkout()
    expect(shop.page.locator("#subtotal")).to_have_text("$28.00")
    shop.fill_details().fill_card("4242424242424242").pay()
    order_id = shop.wait_for_paid_order_page()
    order = assert_paid_once(shop.stack, shop.email, order_id)
    expect(shop.page.locator("#order-number")).to_have_text(f"#{order['order_number']}")
    expect(shop.page.get_by_role("link", name=re.compile(r"^Cart \("))).to_have_text("Cart (0)")

    # Tracking, without the checkout token: order number + email.
    shop.page.get_by_role("link", name="Track this order later").click()
    shop.page.get_by_label("Email").fill(shop.email)
    shop.page.get_by_role("button", name="Track").click()
    expect(shop.page.locator("#tracking-state")).to_have_text("Paid")
    expect(shop.page.locator("#tracking .progress .reached")).to_have_count(2)  # PENDING, PAID


def test_3d_secure_completed(shop: Shop):
    shop.buy("4000002760003184")
    expect(shop.page.get_by_role("dialog")).to_be_visible()
    shop.page.get_by_role("button", name="Complete authentication").click()
    order_id = shop.wait_for_paid_order_page()
    assert_paid_once(shop.stack, shop.email, order_id)


def test_a_decline_then_a_retry_pays_the_same_order(shop: Shop):
    shop.buy("4000000000000002")
    error = shop.page.locator("#payment-error")
    expect(error).to_contain_text("Your card was declined")
    expect(error).to_be_focused()
    (first,) = shop.stack.orders_for(shop.email)
    assert first["state"] == "PENDING"
    assert shop.stack.hold_status(first["reservation_id"]) == "HELD"
    assert shop.stack.succeeded_charges(first["payment_intent_id"]) == []

    shop.fill_card("4242424242424242").pay()
    order_id = shop.wait_for_paid_order_page()
    order = assert_paid_once(shop.stack, shop.email, order_id)
    assert (order["id"], order["payment_intent_id"]) == (first["id"], first["payment_intent_id"])
    assert len(shop.stack.charges(order["payment_intent_id"])) == 2  # declined + paid


def test_a_sold_out_line_is_shown_before_pay(shop: Shop):
    sku = f"LAMP-{uuid.uuid4().hex[:8].upper()}"
    name = f"Desk lamp {sku[-4:]}"
    lamp = {
        "sku": sku,
        "name": name,
        "price": {"amount": 3900, "currency": "usd"},
        "stockOnHand": 1,
        "imageUrl": "/images/mug.svg",
        "category": "Home",
    }
    put_products(shop.stack, [lamp])
    shop.open().add(name).add("Logo mug")

    # Meanwhile another buyer takes the last lamp (their submit holds it).
    other = requests.post(
        f"{shop.stack.web_url}api/checkout/payment-intent",
        json={
            "items": [{"sku": sku, "quantity": 1}],
            "email": f"other-{shop.email}",
            "shippingAddress": {
                "name": "Grace Hopper",
                "line1": "2 Compiler Rd",
                "city": "Arlington",
                "postalCode": "22201",
                "country": "US",
            },
        },
        headers={"Idempotency-Key": f"react-shop-{uuid.uuid4()}"},
        timeout=10,
    )
    assert other.status_code == 202, other.text

    shop.to_checkout().fill_details()
    sold_out = shop.page.locator("#sold-out")
    expect(sold_out).to_contain_text(f"{name} is sold out.")
    pay = shop.page.get_by_role("button", name=re.compile(r"^Pay \$"))
    expect(pay).to_be_disabled()
    assert shop.stack.orders_for(shop.email) == []  # the quote told, nothing was submitted

    sold_out.get_by_role("button", name=f"Remove {name}").click()
    expect(sold_out).to_be_hidden()
    expect(shop.page.locator("#subtotal")).to_have_text("$14.00")  # the mug alone
    expect(pay).to_have_text(f"Pay {shop.page.locator('#total').inner_text()}")
    expect(pay).to_be_enabled()


def test_a_signed_in_buyer_pays_the_next_order_with_a_saved_card(shop: Shop):
    """Issue 18: the storefront passes the CustomerSession secret to Elements, so the
    second order is paid with the first order's card, chosen without typing."""
    import time

    import jwt

    from tests.web.conftest import JWT_SECRET

    user = f"react-{uuid.uuid4().hex[:10]}"
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, JWT_SECRET, "HS256")
    shop.open()
    shop.page.evaluate("(t) => sessionStorage.setItem('shop:buyerToken', t)", token)
    proceed = shop.page.get_by_role("button", name=re.compile(r"^Continue to payment"))

    shop.open().add("Logo mug").to_checkout().fill_details()
    shop.page.get_by_label("Save this card for next time").check()
    proceed.click()
    shop.fill_card("4242424242424242").pay()
    shop.wait_for_paid_order_page()
    first = shop.stack.wait_for_order_state(shop.email, "PAID")

    shop.open().add("Logo mug").to_checkout().fill_details()
    proceed.click()
    card = shop.page.frame_locator("#payment-element iframe")
    expect(card.get_by_label("Visa ending in 4242", exact=False)).to_be_checked()
    expect(card.get_by_label("Card number")).to_be_hidden()
    shop.pay()
    second_id = shop.wait_for_paid_order_page()
    second = shop.stack.wait_for_order_state_of(second_id, "PAID")
    [first_charge] = shop.stack.succeeded_charges(first["payment_intent_id"])
    [second_charge] = shop.stack.succeeded_charges(second["payment_intent_id"])
    assert second_charge["payment_method"] == first_charge["payment_method"]


def test_pay_on_stripes_page_redirects_and_comes_back_paid(shop: Shop):
    shop.open().add("Logo mug").to_checkout().fill_details()
    shop.page.get_by_role("button", name="Pay on Stripe's page").click()
    emulator = urlsplit(shop.stack.emulator_url).netloc
    shop.page.wait_for_url(lambda url: urlsplit(url).netloc == emulator, timeout=30_000)
    shop.page.get_by_label("Card number").fill("4242 4242 4242 4242")
    shop.page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
    shop.page.get_by_label("CVC").fill("123")
    shop.page.get_by_role("button", name=re.compile(r"^Pay \$")).click()
    order_id = shop.wait_for_paid_order_page()  # through /checkout/return?session_id=…
    assert_paid_once(shop.stack, shop.email, order_id)
    expect(shop.page.get_by_role("link", name=re.compile(r"^Cart \("))).to_have_text("Cart (0)")
