"""Pricing over HTTP: decimal twins and ``discount`` in every amount object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

QUOTE = "/api/checkout/quote"
SUBMIT = "/api/checkout/payment-intent"
TWIN_LINE = {"sku": "TEE-M", "unitAmountDecimal": "25.00", "amountDecimal": "50.00"}
# 2 TEE-M (2 x 25.00) + 1 MUG (14.00) to US-CA: free shipping over 50.00, 7.25 % tax.
ORDER_TOTALS = {
    "subtotal": "64.00",
    "discount": "0.00",
    "shipping": "0.00",
    "tax": "4.65",  # per line, half up: 3.625 → 3.63, 1.015 → 1.02
    "total": "68.65",
}


@pytest.fixture
def placed(
    client: Any, runtime: Any, catalog: Any, submit_body: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """A submit (202 body) whose order the worker has written."""
    from app.services.checkout import create_order_from_submission

    response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "k-price-1"})
    assert response.status_code == 202
    body = response.get_json()
    assert create_order_from_submission(body["orderId"], runtime) is not None
    return body


def assert_twins(body: dict[str, Any]) -> None:
    """``totalsDecimal`` and the lines' twins of the placed order's body."""
    assert body["totals"]["discount"] == 0
    assert body["totalsDecimal"] == ORDER_TOTALS
    lines = {line["sku"]: line for line in body["lineItems"]}
    assert lines["MUG"]["unitAmountDecimal"] == "14.00"
    assert lines["TEE-M"]["amountDecimal"] == "50.00"


class TestDecimalTwins:
    def test_the_quote_carries_them(self, client: Any, catalog: Any) -> None:
        body = {
            "items": [{"sku": "TEE-M", "quantity": 2}],
            "shippingAddress": {"country": "US", "state": "CA"},
        }
        quote = client.post(QUOTE, json=body).get_json()
        assert quote["discount"] == 0
        assert quote["totalsDecimal"] == {
            "subtotal": "50.00",
            "discount": "0.00",
            "shipping": "0.00",
            "tax": "3.63",
            "total": "53.63",
        }
        line = quote["lineItems"][0]
        assert {k: line[k] for k in TWIN_LINE} == TWIN_LINE

    def test_the_checkout_status_carries_them(self, client: Any, placed: dict[str, Any]) -> None:
        headers = {"X-Checkout-Token": placed["checkoutToken"]}
        assert_twins(client.get(placed["statusUrl"], headers=headers).get_json())

    def test_the_status_from_the_database_carries_them(
        self, client: Any, runtime: Any, placed: dict[str, Any]
    ) -> None:
        runtime.redis.delete(f"{{shop}}:co:{placed['orderId']}")
        headers = {"X-Checkout-Token": placed["checkoutToken"]}
        assert_twins(client.get(placed["statusUrl"], headers=headers).get_json())

    def test_the_order_and_the_track_answer_carry_them(
        self, client: Any, placed: dict[str, Any]
    ) -> None:
        headers = {"X-Checkout-Token": placed["checkoutToken"]}
        assert_twins(client.get(f"/api/orders/{placed['orderId']}", headers=headers).get_json())
        track = {"orderNumber": placed["orderNumber"], "email": "buyer@example.com"}
        assert_twins(client.post("/api/orders/track", json=track).get_json())

    def test_before_the_worker_the_twins_are_null(
        self, client: Any, catalog: Any, submit_body: Callable[..., dict[str, Any]]
    ) -> None:
        response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "k-price-2"})
        body = response.get_json()
        status = client.get(body["statusUrl"], headers={"X-Checkout-Token": body["checkoutToken"]})
        assert status.get_json()["totals"] is None
        assert status.get_json()["totalsDecimal"] is None

    def test_the_shop_webhook_body_carries_them(self, placed: dict[str, Any]) -> None:
        from models import ShopEvent

        event = ShopEvent.get(ShopEvent.type == "order.created")
        assert_twins(event.body["data"]["order"])


class TestShippingOptions:
    CART = {"items": [{"sku": "MUG", "quantity": 1}], "shippingAddress": {"country": "US"}}

    def test_the_quote_lists_the_destinations_options(self, client: Any, catalog: Any) -> None:
        quote = client.post(QUOTE, json=self.CART).get_json()
        assert [(o["id"], o["amount"], o["amountDecimal"]) for o in quote["shippingOptions"]] == [
            ("standard", 500, "5.00"),
            ("express", 1500, "15.00"),
        ]
        assert quote["shippingOptions"][0]["deliveryEstimate"] == {"minDays": 3, "maxDays": 5}
        assert (quote["shippingOptionId"], quote["shipping"]) == ("standard", 500)

    def test_the_quote_prices_the_chosen_option(self, client: Any, catalog: Any) -> None:
        quote = client.post(QUOTE, json={**self.CART, "shippingOptionId": "express"}).get_json()
        assert (quote["shippingOptionId"], quote["shipping"], quote["total"]) == (
            "express",
            1500,
            1400 + 1500,
        )

    def test_an_option_not_offered_is_400_on_its_field(self, client: Any, catalog: Any) -> None:
        response = client.post(QUOTE, json={**self.CART, "shippingOptionId": "pigeon"})
        assert response.status_code == 400
        assert list(response.get_json()["error"]["fields"]) == ["shippingOptionId"]

    def test_the_submit_ships_by_the_chosen_option(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Callable[..., Any]
    ) -> None:
        from app.services.checkout import create_order_from_submission

        body = submit_body(shippingOptionId="express")
        answer = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "k-ship-1"})
        assert answer.status_code == 202
        order = create_order_from_submission(answer.get_json()["orderId"], runtime)
        assert order is not None
        assert (order.shipping, order.shipping_option) == (1500, "express")
        view = client.get(
            f"/api/orders/{order.id}",
            headers={"X-Checkout-Token": answer.get_json()["checkoutToken"]},
        ).get_json()
        assert view["shippingOptionId"] == "express"
        assert view["totals"]["total"] == 6400 + 1500 + 465

    def test_a_submit_with_an_option_not_offered_holds_nothing(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Callable[..., Any]
    ) -> None:
        before = runtime.redis.hgetall("{shop}:avail")
        body = submit_body(shippingOptionId="pigeon")
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "k-ship-2"})
        assert response.status_code == 400
        assert list(response.get_json()["error"]["fields"]) == ["shippingOptionId"]
        assert runtime.redis.hgetall("{shop}:avail") == before
        assert not runtime.redis.keys("{shop}:idem:*")
