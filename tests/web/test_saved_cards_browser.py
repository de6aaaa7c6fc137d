"""A returning buyer on the reference page (issue 18): a signed-in buyer saves a card on
their first order and pays the second with it, choosing it in the Payment Element
without typing a card number. Chromium against the demo stack."""

from __future__ import annotations

import re
import time
import uuid

import jwt
import pytest
from playwright.sync_api import expect

from tests.web.conftest import JWT_SECRET, CheckoutPage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CONTINUE = "() => document.querySelector('#pay').textContent.startsWith('Continue to payment')"


def sign_in(checkout: CheckoutPage, user_id: str) -> None:
    """What the shop's own sign-in does: the buyer's JWT in sessionStorage."""
    token = jwt.encode({"sub": user_id, "exp": int(time.time()) + 3600}, JWT_SECRET, "HS256")
    checkout.open()
    checkout.page.evaluate("(t) => sessionStorage.setItem('checkout:buyerToken', t)", token)


def continue_to_payment(checkout: CheckoutPage) -> None:
    checkout.page.wait_for_function(CONTINUE)
    checkout.pay_button.click()
    expect(checkout.pay_button).to_have_text(re.compile(r"^Pay \$"))


def test_a_returning_buyer_pays_with_a_saved_card_without_typing_it(
    checkout: CheckoutPage,
) -> None:
    sign_in(checkout, f"user-{uuid.uuid4().hex[:10]}")
    page = checkout.page

    # First order: a new card, saved for next time.
    checkout.open().add("Logo mug").fill_details()
    page.get_by_label("Save this card for next time").check()
    continue_to_payment(checkout)
    checkout.fill_card("4242424242424242")
    checkout.pay_button.click()
    checkout.wait_for_order_page()
    first = checkout.stack.wait_for_order_state(checkout.email, "PAID")

    # Second order: the saved card is offered, chosen, and pays; nothing is typed.
    checkout.open().add("Logo mug").fill_details()
    continue_to_payment(checkout)
    saved = checkout.card_fields().get_by_label("Visa ending in 4242", exact=False)
    expect(saved).to_be_checked()
    expect(checkout.card_fields().get_by_label("Card number")).to_be_hidden()
    checkout.pay_button.click()
    second_id = checkout.wait_for_order_page()
    expect(checkout.order_state()).to_have_text("Paid", timeout=30_000)

    orders = {o["id"]: o for o in checkout.stack.orders_for(checkout.email)}
    assert set(orders) == {first["id"], second_id}
    second = checkout.stack.wait_for_order_state_of(second_id, "PAID")
    [first_charge] = checkout.stack.succeeded_charges(first["payment_intent_id"])
    [second_charge] = checkout.stack.succeeded_charges(second["payment_intent_id"])
    assert second_charge["payment_method"] == first_charge["payment_method"]
