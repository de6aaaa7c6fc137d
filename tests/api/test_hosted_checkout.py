"""``"ui": "hosted"`` at the edge: the return URLs' origins, CHECKOUT_UI, the status's
``checkout`` block and the success page's lookup by ``session_id``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from app.context import CONFIG_EXTENSION
from app.services.checkout import create_order_from_submission
from tests.api.test_checkout import SUBMIT, error_of, leftovers, order_count, queued

LOOKUP = "/api/checkout/lookup"
SHOP = "http://127.0.0.1:5000"  # the test configuration's PUBLIC_URL
HOSTED = {
    "ui": "hosted",
    "successUrl": f"{SHOP}/done?session_id={{CHECKOUT_SESSION_ID}}",
    "cancelUrl": f"{SHOP}/cart",
}


@pytest.fixture
def untouched(runtime: Any, broker: Any, catalog: Any) -> Callable[[], None]:
    """After a refused request: no claim, hold, order or message (as test_checkout's)."""
    before = runtime.redis.hgetall("{shop}:avail")

    def check() -> None:
        assert leftovers(runtime.redis) == []
        assert runtime.redis.hgetall("{shop}:avail") == before
        assert queued(broker) == 0
        assert order_count() == 0

    return check


def configure(app: Any, **changes: Any) -> None:
    """The app's configuration with ``changes`` (FRONTEND_ORIGINS, CHECKOUT_UI)."""
    app.extensions[CONFIG_EXTENSION] = dataclasses.replace(
        app.extensions[CONFIG_EXTENSION], **changes
    )


def submit(client: Any, body: dict[str, Any], key: str = "hosted-key-0001") -> Any:
    return client.post(SUBMIT, json=body, headers={"Idempotency-Key": key})


class TestHostedSubmit:
    def test_a_hosted_submit_gets_a_session_url_and_the_lookup_finds_it(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any
    ) -> None:
        response = submit(client, submit_body(**HOSTED))
        assert response.status_code == 202
        submitted = response.get_json()
        order = create_order_from_submission(submitted["orderId"], runtime)
        assert order is not None

        status = client.get(
            f"/api/checkout/{order.id}", headers={"X-Checkout-Token": submitted["checkoutToken"]}
        ).get_json()
        found = client.get(f"{LOOKUP}?session_id={order.checkout_session_id}")

        assert status["checkout"]["sessionId"] == order.checkout_session_id
        assert status["checkout"]["url"] == order.checkout_url
        assert status["checkout"]["expiresAt"].endswith("Z")
        assert status["payment"]["intentId"] is None
        assert found.status_code == 200
        assert found.get_json() == {
            "orderId": order.id,
            "orderNumber": submitted["orderNumber"],
            "state": "PENDING",
            "checkoutToken": submitted["checkoutToken"],
        }

    @pytest.mark.parametrize(
        ("field", "url"),
        [
            ("successUrl", "https://evil.example/done"),
            ("cancelUrl", "https://evil.example/cart"),
            ("successUrl", "/done"),
            ("cancelUrl", "ftp://127.0.0.1:5000/cart"),
        ],
    )
    def test_a_foreign_or_relative_url_is_400_on_that_field(
        self, client: Any, catalog: Any, submit_body: Any, untouched: Any, field: str, url: str
    ) -> None:
        response = submit(client, submit_body(**{**HOSTED, field: url}))

        assert response.status_code == 400
        error = error_of(response)
        assert (error["code"], list(error["fields"])) == ("validation_failed", [field])
        untouched()

    @pytest.mark.parametrize("missing", ["successUrl", "cancelUrl"])
    def test_hosted_needs_both_urls(
        self, client: Any, catalog: Any, submit_body: Any, missing: str
    ) -> None:
        body = submit_body(**HOSTED)
        del body[missing]
        response = submit(client, body)
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == [missing]

    def test_urls_without_hosted_are_refused(
        self, client: Any, catalog: Any, submit_body: Any
    ) -> None:
        response = submit(client, submit_body(successUrl=HOSTED["successUrl"]))
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["successUrl"]

    def test_an_origin_in_frontend_origins_is_accepted(
        self, app: Any, catalog: Any, submit_body: Any
    ) -> None:
        configure(app, frontend_origins=("https://shop.example",))
        body = submit_body(
            ui="hosted",
            successUrl="https://shop.example/thanks?session_id={CHECKOUT_SESSION_ID}",
            cancelUrl="https://shop.example/cart",
        )
        assert submit(app.test_client(), body).status_code == 202

    def test_hosted_is_refused_when_the_shop_offers_only_elements(
        self, app: Any, catalog: Any, submit_body: Any
    ) -> None:
        configure(app, checkout_ui="elements")
        response = submit(app.test_client(), submit_body(**HOSTED))
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["ui"]


class TestSessionLookup:
    @pytest.mark.parametrize("session_id", ["cs_test_unknown", "cs_live_x"])
    def test_an_unknown_session_is_404(self, client: Any, session_id: str) -> None:
        response = client.get(f"{LOOKUP}?session_id={session_id}")
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"

    def test_a_malformed_session_id_is_400(self, client: Any) -> None:
        response = client.get(f"{LOOKUP}?session_id=pi_123")
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["session_id"]
