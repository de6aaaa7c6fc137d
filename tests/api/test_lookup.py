"""GET /api/checkout/lookup: back from a redirect with Stripe's return-URL parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.api.test_checkout import SUBMIT

LOOKUP = "/api/checkout/lookup"


@pytest.fixture
def place(client: Any, runtime: Any, catalog: Any, submit_body: Any) -> Callable[[str], Any]:
    """Submit through the API and let the worker's use case write the order and intent."""
    from app.services.checkout import create_order_from_submission

    def make(key: str) -> tuple[dict[str, Any], Any]:
        items = [{"sku": "MUG", "quantity": 1}]
        response = client.post(
            SUBMIT, json=submit_body(items=items), headers={"Idempotency-Key": key}
        )
        assert response.status_code == 202
        submitted = response.get_json()
        order = create_order_from_submission(submitted["orderId"], runtime)
        assert order is not None and order.client_secret
        return submitted, order

    return make


def lookup(client: Any, intent: str, secret: str, **extra: str) -> Any:
    query = {"payment_intent": intent, "payment_intent_client_secret": secret, **extra}
    return client.get(f"{LOOKUP}?{urlencode(query)}")


class TestLookup:
    def test_the_intents_secret_answers_the_order_and_its_token(
        self, client: Any, place: Any
    ) -> None:
        submitted, order = place("lookup-key-0001")
        response = lookup(
            client, order.payment_intent_id, order.client_secret, redirect_status="succeeded"
        )
        assert response.status_code == 200
        assert response.get_json() == {
            "orderId": submitted["orderId"],
            "orderNumber": submitted["orderNumber"],
            "state": "PENDING",
            "checkoutToken": submitted["checkoutToken"],
        }
        status = client.get(
            f"/api/checkout/{submitted['orderId']}",
            headers={"X-Checkout-Token": response.get_json()["checkoutToken"]},
        )
        assert status.status_code == 200  # the token works like the submit's

    def test_wrong_secret_unknown_intent_and_another_orders_secret_are_404(
        self, client: Any, place: Any
    ) -> None:
        _, first = place("lookup-key-0001")
        _, second = place("lookup-key-0002")
        # One character off (never the same character: the fake's secret is random hex).
        wrong = first.client_secret[:-1] + ("1" if first.client_secret.endswith("0") else "0")
        attempts = [
            (first.payment_intent_id, wrong),
            (first.payment_intent_id, second.client_secret),  # another order's secret
            (second.payment_intent_id, first.client_secret),
            ("pi_unknown", first.client_secret),
        ]
        bodies = []
        for intent, secret in attempts:
            response = lookup(client, intent, secret)
            assert response.status_code == 404
            bodies.append(response.get_json())
        assert all(body == bodies[0] for body in bodies)  # nothing tells them apart
        assert bodies[0]["error"]["code"] == "not_found"

    def test_an_order_whose_token_was_not_derived_is_404(self, client: Any, place: Any) -> None:
        """Orders from before derived tokens (random ones) cannot be looked up."""
        from app.services.checkout_status import token_hash
        from models import Order

        _, order = place("lookup-key-0001")
        Order.update(checkout_token_hash=token_hash("random-old-token")).execute()
        assert lookup(client, order.payment_intent_id, order.client_secret).status_code == 404

    @pytest.mark.parametrize(
        "query",
        [
            {},
            {"payment_intent": "pi_1"},
            {"payment_intent": "nope", "payment_intent_client_secret": "pi_1_secret_x"},
            {"payment_intent": "pi_1", "payment_intent_client_secret": "pi_1_secret_x",
             "extra": "1"},
        ],
    )  # fmt: skip
    def test_malformed_query_is_validation_failed(
        self, client: Any, runtime: Any, query: dict[str, str]
    ) -> None:
        response = client.get(f"{LOOKUP}?{urlencode(query)}")
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "validation_failed"


class TestLookupRateLimit:
    @pytest.fixture
    def config(self, config: Any) -> Any:
        return config.with_overrides(ratelimit_enabled=True, ratelimit_lookup="3/minute")

    def test_is_rate_limited_per_client(self, client: Any, runtime: Any) -> None:
        answers = [lookup(client, "pi_1", "pi_1_secret_x").status_code for _ in range(4)]
        assert answers == [404, 404, 404, 429]
        limited = lookup(client, "pi_1", "pi_1_secret_x")
        assert limited.get_json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        other = client.get(
            f"{LOOKUP}?{urlencode({'payment_intent': 'pi_1'})}",
            environ_overrides={"REMOTE_ADDR": "10.0.0.9"},
        )
        assert other.status_code == 400  # another client still gets an answer
