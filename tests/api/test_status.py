"""Checkout status, order view and tracking: access rules, long-poll, DB fallback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import jsonify

from app import keys
from app.services import checkout_status, order_views
from app.services.checkout_status import token_hash
from tests.fakes import count_waiter_calls

SUBMIT = "/api/checkout/payment-intent"


@pytest.fixture
def submitted(client: Any, catalog: Any, submit_body: Callable[..., dict[str, Any]]) -> Any:
    """A 202 submit body (read model only: no worker runs here)."""
    response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "k-status-1"})
    assert response.status_code == 202
    return response.get_json()


def make_order(
    order_id: str = "11111111-2222-3333-4444-555555555555",
    token: str = "tok-secret",
    user_id: str | None = None,
    state: str = "PAID",
) -> Any:
    """An order row with two audit events and a refund, written straight to the DB."""
    from models import Order, OrderEvent, Refund

    order = Order.create(
        id=order_id,
        order_number="ORD-TEST0001",
        idempotency_key=f"idem-{order_id}",
        state=state,
        email="Buyer@Example.com",
        user_id=user_id,
        line_items=[
            {"sku": "MUG", "name": "Mug", "quantity": 1, "unitAmount": 1400, "amount": 1400}
        ],
        subtotal=1400,
        shipping=500,
        tax=0,
        total=1900,
        currency="usd",
        shipping_address={"name": "A", "country": "US"},
        payment_intent_id="pi_123",
        client_secret="pi_123_secret_x",
        payment_status="succeeded",
        reservation_id="res-1",
        checkout_token_hash=token_hash(token),
    )
    OrderEvent.create(order=order, type="ORDER_CREATED", payload={"n": 1})
    OrderEvent.create(order=order, type="PAYMENT_SUCCEEDED", payload={"n": 2})
    Refund.create(id="rf-1", order=order, amount=100, idempotency_key="rf-key-1")
    return order


class TestCheckoutStatus:
    def test_token_holder_reads_the_read_model(self, client: Any, submitted: Any) -> None:
        response = client.get(
            submitted["statusUrl"], headers={"X-Checkout-Token": submitted["checkoutToken"]}
        )
        assert response.status_code == 200
        body = response.get_json()
        assert body["orderId"] == submitted["orderId"]
        assert body["orderNumber"] == submitted["orderNumber"]
        assert body["state"] == "PENDING"
        assert body["payment"] == {
            "status": "creating",
            "intentId": None,
            "clientSecret": None,
            "captureMethod": "automatic",
        }
        assert body["holdExpiresAt"] == submitted["holdExpiresAt"]
        assert body["error"] is None

    @pytest.mark.parametrize("headers", [{}, {"X-Checkout-Token": "wrong"}])
    def test_missing_or_wrong_token_is_404(
        self, client: Any, submitted: Any, headers: dict[str, str]
    ) -> None:
        response = client.get(submitted["statusUrl"], headers=headers)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"

    def test_unknown_order_is_the_same_404(self, client: Any, runtime: Any) -> None:
        response = client.get("/api/checkout/nope", headers={"X-Checkout-Token": "x"})
        assert response.status_code == 404

    def test_admin_may_read(self, client: Any, submitted: Any, admin_headers: Any) -> None:
        assert client.get(submitted["statusUrl"], headers=admin_headers).status_code == 200

    def test_buyer_jwt_may_read_own_order(
        self, client: Any, catalog: Any, submit_body: Any, make_token: Any
    ) -> None:
        own = {"x-auth-token": make_token({"user": {"id": "u-7"}})}
        other = {"Authorization": "Bearer " + make_token({"sub": "u-8"})}
        forged = {"Authorization": "Bearer " + make_token({"sub": "u-7"}, secret="wrong")}
        headers = {"Idempotency-Key": "k-jwt-0001", **own}
        body = client.post(SUBMIT, json=submit_body(), headers=headers).get_json()
        assert client.get(body["statusUrl"], headers=own).status_code == 200
        assert client.get(body["statusUrl"], headers=other).status_code == 404
        # A forged token is refused outright (issue 18), never read as "no token".
        assert client.get(body["statusUrl"], headers=forged).status_code == 401

    def test_wait_returns_when_the_worker_publishes(
        self, client: Any, runtime: Any, submitted: Any
    ) -> None:
        order_id = submitted["orderId"]

        def publish_later() -> None:
            time.sleep(0.2)
            checkout_status.publish(
                runtime.redis, order_id, paymentStatus="requires_payment_method",
                intentId="pi_1", clientSecret="pi_1_secret",
            )  # fmt: skip

        threading.Thread(target=publish_later).start()
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        body = client.get(f"{submitted['statusUrl']}?wait=5&since=1", headers=headers).get_json()
        assert body["payment"] == {
            "status": "requires_payment_method", "intentId": "pi_1", "clientSecret": "pi_1_secret",
            "captureMethod": "automatic",
        }  # fmt: skip
        assert body["version"] == 2

    def test_waiters_beyond_the_cap_are_429_and_leave_room_when_done(
        self, runtime: Any, catalog: Any, submit_body: Callable[..., dict[str, Any]]
    ) -> None:
        from app import create_app

        config = runtime.config.with_overrides(longpoll_max_per_order=1)
        client = create_app(config, runtime=runtime).test_client()
        submit = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": "k-cap-one"})
        assert submit.status_code == 202, submit.get_json()
        submitted = submit.get_json()
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        url = f"{submitted['statusUrl']}?wait=3&since=1"
        first: dict[str, Any] = {}
        waiting = threading.Thread(target=lambda: first.update(r=client.get(url, headers=headers)))
        waiting.start()
        # Counted against the caps, not only listening (the feed knows a waiter before
        # its round trip to the counters): the second must find the cap taken.
        counter = keys.waiters("order", submitted["orderId"])
        deadline = time.monotonic() + 5
        while not runtime.redis.get(counter) and time.monotonic() < deadline:
            time.sleep(0.01)
        second = client.get(url, headers=headers)
        checkout_status.publish(runtime.redis, submitted["orderId"], paymentStatus="processing")
        waiting.join(timeout=10)
        assert second.status_code == 429
        assert second.get_json()["error"]["code"] == "rate_limited"
        assert second.headers["Retry-After"] == "1"
        assert first["r"].status_code == 200
        assert client.get(url.replace("since=1", "since=2"), headers=headers).status_code == 200

    def test_a_woken_answer_reads_and_enters_in_one_round_trip_then_takes(
        self, client: Any, runtime: Any, submitted: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        order_id = submitted["orderId"]
        calls = count_waiter_calls(monkeypatch)
        publish = lambda: checkout_status.publish(  # noqa: E731
            runtime.redis, order_id, paymentStatus="processing"
        )
        timer = threading.Timer(0.3, publish)
        timer.start()
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        body = client.get(f"{submitted['statusUrl']}?wait=10&since=1", headers=headers).get_json()
        timer.join()
        assert (body["version"], body["payment"]["status"]) == (2, "processing")
        # The first read entered the caps (the token's holder, nothing newer); the wake-up
        # read and left: no locate, no separate watch or leave. (The feed's first
        # subscription may wake the waiter once more: a take that finds nothing new.)
        assert calls[0] == "waiters open" and set(calls[1:]) == {"waiters take"}
        assert runtime.redis.keys(keys.waiters("*", "*")) == []

    def test_a_long_poll_since_no_version_is_a_plain_read(
        self, client: Any, runtime: Any, submitted: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = count_waiter_calls(monkeypatch)
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        started = time.monotonic()
        body = client.get(f"{submitted['statusUrl']}?wait=25&since=0", headers=headers).get_json()
        assert time.monotonic() - started < 5
        assert (body["version"], body["payment"]["status"]) == (1, "creating")
        # Every read model starts at version 1: nothing to wait for, no caps entered (and
        # the read rides the queue estimate's round trip).
        assert calls == []

    def test_a_jwt_buyers_long_poll_is_counted_under_the_user(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, make_token: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:  # fmt: skip
        own = {"x-auth-token": make_token({"user": {"id": "u-7"}})}
        headers = {"Idempotency-Key": "k-jwt-wait-1", **own}
        body = client.post(SUBMIT, json=submit_body(), headers=headers).get_json()
        counted: list[Any] = []

        def publish_later() -> None:
            counted.append(runtime.redis.get(keys.waiters("credential", "user:u-7")))
            checkout_status.publish(runtime.redis, body["orderId"], paymentStatus="processing")

        calls = count_waiter_calls(monkeypatch)
        timer = threading.Timer(0.3, publish_later)
        timer.start()
        answer = client.get(f"{body['statusUrl']}?wait=10", headers=own).get_json()
        timer.join()
        assert answer["payment"]["status"] == "processing"
        assert counted == ["1"]
        assert calls[:2] == ["waiters open", "waiters watch"]
        assert runtime.redis.keys(keys.waiters("*", "*")) == []

    def test_at_a_cap_access_is_checked_first(
        self, runtime: Any, catalog: Any, submit_body: Callable[..., dict[str, Any]]
    ) -> None:
        from app import create_app

        config = runtime.config.with_overrides(longpoll_max_per_ip=0)
        client = create_app(config, runtime=runtime).test_client()
        submitted = client.post(
            SUBMIT, json=submit_body(), headers={"Idempotency-Key": "k-cap-auth"}
        ).get_json()
        url = f"{submitted['statusUrl']}?wait=3"
        assert client.get(url, headers={"X-Checkout-Token": "wrong"}).status_code == 404
        refused = client.get(url, headers={"X-Checkout-Token": submitted["checkoutToken"]})
        assert refused.status_code == 429
        assert runtime.redis.keys(keys.waiters("*", "*")) == []

    def test_while_creating_the_queue_position_and_eta_show(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Callable[..., Any]
    ) -> None:
        bodies = [
            client.post(
                SUBMIT, json=submit_body(), headers={"Idempotency-Key": f"k-queue-{n}x"}
            ).get_json()
            for n in range(3)
        ]
        last = bodies[-1]
        headers = {"X-Checkout-Token": last["checkoutToken"]}
        status = client.get(last["statusUrl"], headers=headers).get_json()
        assert status["payment"]["status"] == "creating"
        # Two buyers ahead; at the test-mode budget of 23 intents a second, about a second.
        assert status["queue"] == {"position": 2, "etaSeconds": 1}
        checkout_status.publish(
            runtime.redis, last["orderId"], paymentStatus="requires_payment_method"
        )
        assert "queue" not in client.get(last["statusUrl"], headers=headers).get_json()

    def test_wait_with_an_old_version_answers_at_once(
        self, client: Any, runtime: Any, submitted: Any
    ) -> None:
        checkout_status.publish(runtime.redis, submitted["orderId"], paymentStatus="processing")
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        body = client.get(f"{submitted['statusUrl']}?wait=25&since=1", headers=headers).get_json()
        assert body["payment"]["status"] == "processing"

    @pytest.mark.parametrize("query", ["wait=26", "wait=-1", "wait=abc", "since=x"])
    def test_bad_wait_is_validation_failed(self, client: Any, submitted: Any, query: str) -> None:
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        response = client.get(f"{submitted['statusUrl']}?{query}", headers=headers)
        assert response.status_code == 400
        assert list(response.get_json()["error"]["fields"]) == [query.split("=")[0]]

    def test_declined_attempt_shows_the_error(
        self, client: Any, runtime: Any, submitted: Any
    ) -> None:
        error = {"code": "card_declined", "declineCode": "generic_decline", "message": "Declined."}
        checkout_status.publish(
            runtime.redis,
            submitted["orderId"],
            paymentStatus="requires_payment_method",
            error=error,
        )
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        body = client.get(submitted["statusUrl"], headers=headers).get_json()
        assert body["error"] == error
        assert body["state"] == "PENDING"

    def test_falls_back_to_the_database(self, client: Any, runtime: Any) -> None:
        order = make_order(state="PENDING")
        response = client.get(
            f"/api/checkout/{order.id}", headers={"X-Checkout-Token": "tok-secret"}
        )
        assert response.status_code == 200
        body = response.get_json()
        assert body["state"] == "PENDING"
        assert body["payment"]["clientSecret"] == "pi_123_secret_x"
        assert body["totals"]["total"] == 1900
        assert client.get(f"/api/checkout/{order.id}").status_code == 404

    def test_a_read_model_recreated_by_a_publish_after_its_loss_defers_to_the_database(
        self, client: Any, runtime: Any
    ) -> None:
        # Redis flushed (or the model expired), then a webhook published PAID: the hash
        # holds state and version only, no token hash. Found by tests/chaos: the buyer
        # of a PAID order got 404.
        order = make_order(state="PAID")
        checkout_status.publish(runtime.redis, order.id, state="PAID", paymentStatus="succeeded")
        headers = {"X-Checkout-Token": "tok-secret"}
        response = client.get(f"/api/checkout/{order.id}", headers=headers)
        assert response.status_code == 200
        assert response.get_json()["state"] == "PAID"
        assert client.get(f"/api/orders/{order.id}", headers=headers).status_code == 200
        assert client.get(f"/api/checkout/{order.id}").status_code == 404

    @pytest.mark.parametrize("error", [None, {"code": "card_declined", "message": "Refusée €"}])
    def test_the_body_is_jsonifys_bytes(
        self, app: Any, client: Any, runtime: Any, submitted: Any, error: Any
    ) -> None:
        # orjson encodes it; jsonify's bytes are the contract (non-ASCII escaped, compact).
        checkout_status.publish(
            runtime.redis,
            submitted["orderId"],
            paymentStatus="requires_payment_method",
            error=error,
        )
        order = make_order(state="PENDING")
        for order_id, token in (
            (submitted["orderId"], submitted["checkoutToken"]),
            (order.id, "tok-secret"),
        ):
            response = client.get(f"/api/checkout/{order_id}", headers={"X-Checkout-Token": token})
            with app.app_context():
                located = order_views.locate_checkout(runtime.redis, order_id)
                expected = order_views.checkout_body(runtime.redis, located)
                assert response.data == jsonify(expected).get_data()
            assert response.mimetype == "application/json"


class TestOrderView:
    def test_order_from_the_database_with_events_oldest_first(
        self, client: Any, runtime: Any
    ) -> None:
        order = make_order()
        response = client.get(f"/api/orders/{order.id}", headers={"X-Checkout-Token": "tok-secret"})
        assert response.status_code == 200
        body = response.get_json()
        assert [e["type"] for e in body["events"]] == ["ORDER_CREATED", "PAYMENT_SUCCEEDED"]
        assert body["events"][0]["payload"] == {"n": 1}
        assert body["paymentIntentId"] == "pi_123"
        assert body["reservationId"] == "res-1"
        assert body["amountRefunded"] == 0
        assert [r["refundId"] for r in body["refunds"]] == ["rf-1"]

    def test_order_access_rules(
        self, client: Any, runtime: Any, admin_headers: Any, make_token: Any
    ) -> None:
        order = make_order(user_id="u-1")
        url = f"/api/orders/{order.id}"
        assert client.get(url).status_code == 404
        assert client.get(url, headers={"X-Checkout-Token": "nope"}).status_code == 404
        assert client.get(url, headers=admin_headers).status_code == 200
        buyer = {"Authorization": "Bearer " + make_token({"sub": "u-1"})}
        assert client.get(url, headers=buyer).status_code == 200

    def test_before_the_worker_the_read_model_answers(self, client: Any, submitted: Any) -> None:
        headers = {"X-Checkout-Token": submitted["checkoutToken"]}
        response = client.get(f"/api/orders/{submitted['orderId']}", headers=headers)
        assert response.status_code == 200
        body = response.get_json()
        assert body["state"] == "PENDING"
        assert body["events"] == []
        assert body["email"] == "buyer@example.com"
        assert body["reservationId"]
        assert client.get(f"/api/orders/{submitted['orderId']}").status_code == 404


class TestTrack:
    def test_public_view_on_match(self, client: Any, runtime: Any) -> None:
        make_order()
        body = {"orderNumber": "ord-test0001", "email": " buyer@example.COM "}
        response = client.post("/api/orders/track", json=body)
        assert response.status_code == 200
        body = response.get_json()
        assert body["orderNumber"] == "ORD-TEST0001"
        assert [e["type"] for e in body["events"]] == ["ORDER_CREATED", "PAYMENT_SUCCEEDED"]
        assert all(set(e) == {"ts", "type"} for e in body["events"])
        assert body["email"] == "Buyer@Example.com"  # echoed as stored
        assert "paymentIntentId" not in body and "orderId" not in body

    def test_progress_shows_the_states_reached_and_those_ahead(
        self, client: Any, runtime: Any
    ) -> None:
        from app.services.state_machine import transition

        order = make_order(state="PENDING")
        transition(order, "PAID", reason="payment_succeeded")
        body = {"orderNumber": "ORD-TEST0001", "email": "buyer@example.com"}
        progress = client.post("/api/orders/track", json=body).get_json()["progress"]
        assert [(p["state"], p["reachedAt"] is not None) for p in progress] == [
            ("PENDING", True), ("PAID", True), ("FULFILLING", False), ("FULFILLED", False),
        ]  # fmt: skip
        assert progress[0]["reachedAt"] <= progress[1]["reachedAt"]
        assert progress[1]["reachedAt"].endswith("Z")

    @pytest.mark.parametrize(
        ("moves", "expected"),
        [
            ([], [("PENDING", True), ("PAID", False), ("FULFILLING", False),
                  ("FULFILLED", False)]),
            (["CANCELED"], [("PENDING", True), ("CANCELED", True)]),
            (["PAID", "FULFILLING", "FULFILLED"], [("PENDING", True), ("PAID", True),
                                                   ("FULFILLING", True), ("FULFILLED", True)]),
            (["PAID", "REFUNDED"], [("PENDING", True), ("PAID", True), ("REFUNDED", True)]),
        ],
    )  # fmt: skip
    def test_progress_after_each_path(
        self, client: Any, runtime: Any, moves: list[str], expected: list[Any]
    ) -> None:
        from app.services.state_machine import transition

        order = make_order(state="PENDING")
        for state in moves:
            order = transition(order, state, reason="test")
        body = {"orderNumber": "ORD-TEST0001", "email": "buyer@example.com"}
        answer = client.post("/api/orders/track", json=body).get_json()
        assert answer["state"] == (moves[-1] if moves else "PENDING")
        assert [(p["state"], p["reachedAt"] is not None) for p in answer["progress"]] == expected

    @pytest.mark.parametrize(
        "body",
        [
            {"orderNumber": "ORD-TEST0001", "email": "someone@example.com"},
            {"orderNumber": "ORD-NOPE", "email": "buyer@example.com"},
        ],
    )
    def test_mismatch_is_404(self, client: Any, runtime: Any, body: dict[str, str]) -> None:
        make_order()
        response = client.post("/api/orders/track", json=body)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"

    def test_bad_body_is_validation_failed(self, client: Any, runtime: Any) -> None:
        response = client.post("/api/orders/track", json={"orderNumber": 5})
        assert response.status_code == 400
        assert set(response.get_json()["error"]["fields"]) == {"orderNumber", "email"}
