"""The signed-in buyer's endpoints (app/api/me.py) and ``savePaymentMethod`` at submit:
saved cards (list, delete — 404 for another buyer's), orders newest first in keyset pages,
and the CustomerSession secret in a JWT buyer's checkout status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.errors import PaymentProviderError
from app.services import customers
from app.services.checkout import create_order_from_submission

SUBMIT = "/api/checkout/payment-intent"


@pytest.fixture
def buyer(make_token: Callable[..., str]) -> Callable[[str], dict[str, str]]:
    """Authorization headers for a buyer by user id."""
    return lambda user_id: {"Authorization": "Bearer " + make_token({"sub": user_id})}


def submit(client: Any, body: dict[str, Any], key: str, headers: dict[str, str]) -> Any:
    return client.post(SUBMIT, json=body, headers={"Idempotency-Key": key, **headers})


def saved_card_of(runtime: Any, gateway: Any, user_id: str) -> str:
    customer = customers.ensure_customer(user_id, gateway)
    return str(gateway.save_card(customer).id)


class TestSavePaymentMethod:
    def test_without_a_jwt_it_is_400_on_the_field(
        self, client: Any, catalog: Any, submit_body: Any
    ) -> None:
        response = submit(client, submit_body(savePaymentMethod=True), "k-save-guest-01", {})
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "validation_failed"
        assert "savePaymentMethod" in error["fields"]
        # The refusal did not use up the key.
        assert submit(client, submit_body(), "k-save-guest-01", {}).status_code == 202

    def test_false_without_a_jwt_is_fine(self, client: Any, catalog: Any, submit_body: Any) -> None:
        body = submit_body(savePaymentMethod=False)
        assert submit(client, body, "k-save-false-01", {}).status_code == 202

    @pytest.mark.parametrize("value", ["true", 1, None])
    def test_only_a_json_boolean(
        self, client: Any, catalog: Any, submit_body: Any, buyer: Any, value: Any
    ) -> None:
        body = submit_body(savePaymentMethod=value)
        response = submit(client, body, "k-save-strict-01", buyer("u-1"))
        assert response.status_code == 400
        assert "savePaymentMethod" in response.get_json()["error"]["fields"]

    def test_with_a_jwt_the_intent_saves_for_the_customer(
        self, client: Any, catalog: Any, submit_body: Any, buyer: Any, runtime: Any, gateway: Any
    ) -> None:
        body = submit_body(savePaymentMethod=True)
        response = submit(client, body, "k-save-jwt-01", buyer("u-1"))
        assert response.status_code == 202
        order_id = response.get_json()["orderId"]
        order = create_order_from_submission(order_id, runtime)
        intent = gateway.intents[order.payment_intent_id]
        assert intent.customer == customers.customer_of("u-1")
        assert intent.setup_future_usage == "on_session"


class TestStatusOfAJwtBuyer:
    def test_carries_the_customer_session_secret(
        self, client: Any, catalog: Any, submit_body: Any, buyer: Any, runtime: Any
    ) -> None:
        headers = buyer("u-1")
        body = submit(client, submit_body(), "k-status-jwt-01", headers).get_json()
        before = client.get(body["statusUrl"], headers=headers).get_json()
        assert before["payment"]["customerSessionClientSecret"] is None
        create_order_from_submission(body["orderId"], runtime)
        after = client.get(body["statusUrl"], headers=headers).get_json()
        assert after["payment"]["customerSessionClientSecret"].startswith("cuss_secret_")

    def test_from_the_order_row_it_is_null(
        self, client: Any, catalog: Any, submit_body: Any, buyer: Any, runtime: Any
    ) -> None:
        """The read model expired: the order row answers, and a session lives 30 min."""
        from app import keys

        headers = buyer("u-1")
        body = submit(client, submit_body(), "k-status-row-01", headers).get_json()
        create_order_from_submission(body["orderId"], runtime)
        runtime.redis.delete(keys.checkout(body["orderId"]))
        status = client.get(body["statusUrl"], headers=headers).get_json()
        assert status["payment"]["customerSessionClientSecret"] is None
        assert status["payment"]["clientSecret"]

    def test_a_guest_status_has_no_such_field(
        self, client: Any, catalog: Any, submit_body: Any, runtime: Any
    ) -> None:
        body = submit(client, submit_body(), "k-status-guest-01", {}).get_json()
        create_order_from_submission(body["orderId"], runtime)
        status = client.get(
            body["statusUrl"], headers={"X-Checkout-Token": body["checkoutToken"]}
        ).get_json()
        assert "customerSessionClientSecret" not in status["payment"]


class TestPaymentMethods:
    def test_a_jwt_is_required(self, client: Any, runtime: Any) -> None:
        for response in (
            client.get("/api/me/payment-methods"),
            client.delete("/api/me/payment-methods/pm_x"),
            client.get("/api/me/orders"),
        ):
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "unauthorized"

    def test_none_before_the_first_checkout(self, client: Any, runtime: Any, buyer: Any) -> None:
        response = client.get("/api/me/payment-methods", headers=buyer("u-new"))
        assert response.status_code == 200
        assert response.get_json() == []

    def test_lists_the_buyers_cards(
        self, client: Any, runtime: Any, gateway: Any, buyer: Any
    ) -> None:
        card = saved_card_of(runtime, gateway, "u-1")
        saved_card_of(runtime, gateway, "u-2")
        listed = client.get("/api/me/payment-methods", headers=buyer("u-1")).get_json()
        assert listed == [
            {"id": card, "brand": "visa", "last4": "4242", "expMonth": 12, "expYear": 2034}
        ]

    def test_deletes_their_own_and_not_anothers(
        self, client: Any, runtime: Any, gateway: Any, buyer: Any
    ) -> None:
        mine = saved_card_of(runtime, gateway, "u-1")
        theirs = saved_card_of(runtime, gateway, "u-2")
        refused = client.delete(f"/api/me/payment-methods/{theirs}", headers=buyer("u-1"))
        assert refused.status_code == 404
        assert refused.get_json()["error"]["code"] == "not_found"
        assert theirs in gateway.saved_cards
        deleted = client.delete(f"/api/me/payment-methods/{mine}", headers=buyer("u-1"))
        assert deleted.status_code == 204
        assert mine not in gateway.saved_cards
        again = client.delete(f"/api/me/payment-methods/{mine}", headers=buyer("u-1"))
        assert again.status_code == 404

    @pytest.mark.parametrize("pm_id", ["pm_nope", "not-a-pm", "pm_" + "x" * 300])
    def test_unknown_or_malformed_ids_are_404(
        self, client: Any, runtime: Any, gateway: Any, buyer: Any, pm_id: str
    ) -> None:
        saved_card_of(runtime, gateway, "u-1")
        response = client.delete(f"/api/me/payment-methods/{pm_id}", headers=buyer("u-1"))
        assert response.status_code == 404

    def test_a_customer_deleted_at_stripe_has_no_cards(
        self, client: Any, runtime: Any, gateway: Any, buyer: Any
    ) -> None:
        saved_card_of(runtime, gateway, "u-1")
        gateway.delete_customer(customers.customer_of("u-1"))
        response = client.get("/api/me/payment-methods", headers=buyer("u-1"))
        assert response.status_code == 200
        assert response.get_json() == []

    def test_stripe_unavailable_is_503(
        self, client: Any, runtime: Any, gateway: Any, buyer: Any
    ) -> None:
        saved_card_of(runtime, gateway, "u-1")
        gateway.fail_next("list_saved_cards", PaymentProviderError("busy", retryable=True))
        response = client.get("/api/me/payment-methods", headers=buyer("u-1"))
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"

    def test_unknown_query_fields_are_refused(self, client: Any, runtime: Any, buyer: Any) -> None:
        response = client.get("/api/me/payment-methods?x=1", headers=buyer("u-1"))
        assert response.status_code == 400


class TestMyOrders:
    def place(self, client: Any, submit_body: Any, runtime: Any, headers: Any, n: int) -> str:
        body = submit(client, submit_body(), f"k-mine-{n:04d}-x", headers).get_json()
        create_order_from_submission(body["orderId"], runtime)
        return str(body["orderId"])

    def test_newest_first_in_keyset_pages(
        self, client: Any, catalog: Any, submit_body: Any, runtime: Any, buyer: Any
    ) -> None:
        mine = [self.place(client, submit_body, runtime, buyer("u-1"), n) for n in range(3)]
        self.place(client, submit_body, runtime, buyer("u-2"), 9)
        self.place(client, submit_body, runtime, {}, 10)
        first = client.get("/api/me/orders?limit=2", headers=buyer("u-1")).get_json()
        assert [o["orderId"] for o in first["data"]] == mine[::-1][:2]
        assert first["data"][0]["state"] == "PENDING"
        assert first["data"][0]["totals"]["total"] > 0
        assert first["nextCursor"]
        second = client.get(
            f"/api/me/orders?limit=2&cursor={first['nextCursor']}", headers=buyer("u-1")
        ).get_json()
        assert [o["orderId"] for o in second["data"]] == [mine[0]]
        assert second["nextCursor"] is None

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "cursor=bogus", "x=1"])
    def test_bad_queries_are_400(self, client: Any, runtime: Any, buyer: Any, query: str) -> None:
        response = client.get(f"/api/me/orders?{query}", headers=buyer("u-1"))
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "validation_failed"


class TestDocumented:
    """The bodies conform to the OpenAPI document (its schemas are closed)."""

    def validate(self, body: Any, name: str) -> None:
        import jsonschema

        from app.api.openapi import build_spec
        from tests.oas import oas30

        spec = build_spec()
        schema = {"$ref": f"#/components/schemas/{name}", "components": oas30(spec["components"])}
        jsonschema.Draft7Validator(schema).validate(body)

    def test_status_orders_and_cards(
        self,
        client: Any,
        catalog: Any,
        submit_body: Any,
        runtime: Any,
        gateway: Any,
        buyer: Any,
    ) -> None:
        headers = buyer("u-1")
        body = submit(client, submit_body(), "k-doc-jwt-0001", headers).get_json()
        create_order_from_submission(body["orderId"], runtime)
        self.validate(client.get(body["statusUrl"], headers=headers).get_json(), "CheckoutStatus")
        self.validate(client.get("/api/me/orders", headers=headers).get_json(), "MyOrderPage")
        saved_card_of(runtime, gateway, "u-1")
        [card] = client.get("/api/me/payment-methods", headers=headers).get_json()
        self.validate(card, "SavedCard")


class TestCors:
    def test_a_shop_frontend_may_delete_a_saved_card(self, runtime: Any) -> None:
        from app import create_app

        config = runtime.config.with_overrides(frontend_origins=("https://shop.example",))
        client = create_app(config, runtime=runtime).test_client()
        preflight = client.options(
            "/api/me/payment-methods/pm_1",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
