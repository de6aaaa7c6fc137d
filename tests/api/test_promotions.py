"""Promotion codes over HTTP: the admin's PUT and GET, the quote's discount and refusals,
the submit's 400 / 409, and the discounted money downstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

QUOTE = "/api/checkout/quote"
SUBMIT = "/api/checkout/payment-intent"
PROMOS = "/api/admin/promotions"
CART = {"items": [{"sku": "TEE-M", "quantity": 2}], "shippingAddress": {"country": "US"}}


@pytest.fixture
def put(client: Any, admin_headers: dict[str, str]) -> Callable[..., Any]:
    def make(code: str, **terms: Any) -> Any:
        return client.put(f"{PROMOS}/{code}", json={"active": True, **terms}, headers=admin_headers)

    return make


def fields_of(response: Any) -> dict[str, list[str]]:
    return response.get_json()["error"]["fields"]


class TestAdmin:
    def test_put_then_list_with_used_and_left(
        self, client: Any, admin_headers: dict[str, str], put: Callable[..., Any]
    ) -> None:
        window = {"startsAt": "2026-03-01T00:00:00+01:00", "endsAt": "2099-01-01T00:00:00Z"}
        created = put("spring10", percentOff=10, maxRedemptions=500, perBuyerLimit=1, **window)
        assert created.status_code == 200, created.get_json()
        assert created.get_json() == {
            "code": "SPRING10", "description": "10% off", "percentOff": 10, "amountOff": None,
            "minSubtotal": None, "startsAt": "2026-02-28T23:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z", "maxRedemptions": 500, "perBuyerLimit": 1,
            "active": True, "used": 0, "left": 500,
        }  # fmt: skip
        put("FIVE", amountOff={"amount": 500, "currency": "usd"}, minSubtotal=2000)
        listed = client.get(PROMOS, headers=admin_headers).get_json()
        assert [p["code"] for p in listed] == ["FIVE", "SPRING10"]
        assert listed[0]["description"] == "5.00 USD off orders of 20.00 USD or more"
        assert listed[0]["left"] is None

    @pytest.mark.parametrize(
        ("terms", "field"),
        [
            ({}, "percentOff"),
            ({"percentOff": 10, "amountOff": {"amount": 1, "currency": "usd"}}, "amountOff"),
            ({"percentOff": 101}, "percentOff"),
            ({"amountOff": {"amount": 100, "currency": "eur"}}, "amountOff.currency"),
            ({"percentOff": 5, "startsAt": "2030-01-02T00:00:00Z",
              "endsAt": "2030-01-01T00:00:00Z"}, "endsAt"),
            ({"percentOff": 5, "startsAt": "2030-01-02T00:00:00"}, "startsAt"),
            ({"percentOff": 5, "maxRedemptions": 0}, "maxRedemptions"),
        ],
    )  # fmt: skip
    def test_bad_terms_are_400_on_their_field(
        self, put: Callable[..., Any], terms: dict[str, Any], field: str
    ) -> None:
        response = put("BAD", **terms)
        assert response.status_code == 400
        assert field in fields_of(response)

    def test_admins_only(self, client: Any, make_token: Any) -> None:
        assert client.get(PROMOS).status_code == 401
        buyer = {"Authorization": "Bearer " + make_token({"sub": "u-1"})}
        assert client.put(f"{PROMOS}/X1", json={"percentOff": 1, "active": True},
                          headers=buyer).status_code == 403  # fmt: skip


class TestQuote:
    def test_a_ten_percent_code_discounts_the_quote(
        self, client: Any, catalog: Any, put: Callable[..., Any]
    ) -> None:
        put("TEN", percentOff=10)
        quote = client.post(QUOTE, json={**CART, "promotionCode": " ten "}).get_json()
        assert (quote["subtotal"], quote["discount"], quote["shipping"]) == (5000, 500, 0)
        assert quote["total"] == 4500
        assert quote["totalsDecimal"]["discount"] == "5.00"
        assert quote["promotion"] == {"code": "TEN", "description": "10% off"}

    def test_without_a_code_promotion_is_null(self, client: Any, catalog: Any) -> None:
        quote = client.post(QUOTE, json=CART).get_json()
        assert (quote["discount"], quote["promotion"]) == (0, None)

    @pytest.mark.parametrize(
        ("terms", "reason"),
        [
            (None, "Unknown promotion code."),
            ({"percentOff": 5, "endsAt": "2020-01-01T00:00:00Z"}, "expired"),
            ({"percentOff": 5, "startsAt": "2099-01-01T00:00:00Z"}, "not valid yet"),
            ({"percentOff": 5, "minSubtotal": 5001}, "at least 50.01 USD"),
            ({"percentOff": 5, "active": False}, "not active"),
        ],
    )
    def test_refusals_are_400_on_promotion_code_with_the_reason(
        self, client: Any, catalog: Any, put: Callable[..., Any], terms: Any, reason: str
    ) -> None:
        if terms is not None:
            put("CODE1", **terms)
        response = client.post(QUOTE, json={**CART, "promotionCode": "CODE1"})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "validation_failed"
        assert reason in fields_of(response)["promotionCode"][0]

    def test_a_used_up_code_is_refused_at_quote(
        self, client: Any, catalog: Any, put: Callable[..., Any], submit_body: Any
    ) -> None:
        put("ONCE", percentOff=5, maxRedemptions=1)
        first = client.post(SUBMIT, json=submit_body(promotionCode="ONCE"),
                            headers={"Idempotency-Key": "k-promo-once"})  # fmt: skip
        assert first.status_code == 202
        response = client.post(QUOTE, json={**CART, "promotionCode": "ONCE"})
        assert "used up" in fields_of(response)["promotionCode"][0]


class TestSubmit:
    def test_discounted_status_order_and_intent(
        self, client: Any, runtime: Any, gateway: Any, catalog: Any, put: Any, submit_body: Any
    ) -> None:
        from app.services.confirmation import place_order

        put("TEN", percentOff=10)
        answer = client.post(SUBMIT, json=submit_body(promotionCode="TEN"),
                             headers={"Idempotency-Key": "k-promo-0001"})  # fmt: skip
        assert answer.status_code == 202, answer.get_json()
        accepted = answer.get_json()
        placed = place_order(accepted["orderId"], runtime)
        assert placed.order is not None
        headers = {"X-Checkout-Token": accepted["checkoutToken"]}
        status = client.get(accepted["statusUrl"], headers=headers).get_json()
        # 64.00 less 6.40; tax per line on the discounted lines: 45.00 → 3.26, 12.60 → 0.91
        assert status["totals"] == {"subtotal": 6400, "discount": 640, "shipping": 0,
                                    "tax": 326 + 91, "total": 6400 - 640 + 417,
                                    "currency": "usd"}  # fmt: skip
        intent = gateway.intents[status["payment"]["intentId"]]
        assert intent.amount == status["totals"]["total"]
        order = client.get(f"/api/orders/{accepted['orderId']}", headers=headers).get_json()
        assert order["promotion"] == {"code": "TEN", "description": "10% off"}

    def test_before_the_worker_the_order_shows_the_code(
        self, client: Any, catalog: Any, put: Any, submit_body: Any
    ) -> None:
        put("TEN", percentOff=10)
        answer = client.post(SUBMIT, json=submit_body(promotionCode="TEN"),
                             headers={"Idempotency-Key": "k-promo-0005"}).get_json()  # fmt: skip
        headers = {"X-Checkout-Token": answer["checkoutToken"]}
        order = client.get(f"/api/orders/{answer['orderId']}", headers=headers).get_json()
        assert order["promotion"] == {"code": "TEN", "description": "10% off"}

    def test_an_unknown_code_is_400_and_holds_nothing(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any
    ) -> None:
        before = runtime.redis.hgetall("{shop}:avail")
        response = client.post(SUBMIT, json=submit_body(promotionCode="NOPE"),
                               headers={"Idempotency-Key": "k-promo-0002"})  # fmt: skip
        assert response.status_code == 400
        assert fields_of(response) == {"promotionCode": ["Unknown promotion code."]}
        assert runtime.redis.hgetall("{shop}:avail") == before

    def test_a_used_up_code_is_409_promotion_unavailable(
        self, client: Any, runtime: Any, catalog: Any, put: Any, submit_body: Any
    ) -> None:
        put("ONCE", percentOff=5, maxRedemptions=1)
        first = client.post(SUBMIT, json=submit_body(promotionCode="ONCE"),
                            headers={"Idempotency-Key": "k-promo-0003"})  # fmt: skip
        assert first.status_code == 202
        before = runtime.redis.hgetall("{shop}:avail")
        response = client.post(SUBMIT, json=submit_body(promotionCode="ONCE"),
                               headers={"Idempotency-Key": "k-promo-0004"})  # fmt: skip
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "promotion_unavailable"
        assert runtime.redis.hgetall("{shop}:avail") == before


class TestHostedCheckout:
    def test_the_session_total_is_the_discounted_total(
        self, client: Any, runtime: Any, gateway: Any, catalog: Any, put: Any, submit_body: Any
    ) -> None:
        from app.services.checkout import create_order_from_submission

        put("TEN", percentOff=10)
        hosted = {
            "ui": "hosted",
            "successUrl": "http://127.0.0.1:5000/done?session_id={CHECKOUT_SESSION_ID}",
            "cancelUrl": "http://127.0.0.1:5000/cart",
        }
        answer = client.post(
            SUBMIT,
            json=submit_body(promotionCode="TEN", shippingOptionId="express", **hosted),
            headers={"Idempotency-Key": "k-promo-hosted"},
        )
        assert answer.status_code == 202, answer.get_json()
        order = create_order_from_submission(answer.get_json()["orderId"], runtime)
        assert order is not None and order.discount == 640 and order.shipping == 1500
        session = gateway.sessions[order.checkout_session_id]
        assert session.amount_total == order.total
