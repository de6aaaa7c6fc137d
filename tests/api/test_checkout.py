"""Quote and submit over HTTP: every bad input gets its code and leaves nothing behind."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

SUBMIT = "/api/checkout/payment-intent"
QUOTE = "/api/checkout/quote"
KEY = {"Idempotency-Key": "key-0000-0001"}


def queued(broker: Any) -> int:
    """Messages waiting on every queue of the stub broker."""
    return sum(queue.qsize() for queue in broker.queues.values())


def leftovers(redis: Any) -> list[str]:
    """Keys a refused submit must not create (anything but the catalog's counters, prices
    and the day's submit counts of the dashboard)."""
    catalog = ("{shop}:avail", "{shop}:price")
    return sorted(k for k in redis.keys("*") if k not in catalog and ":stats:" not in k)


def order_count() -> int:
    from models import Order

    return Order.select().count()


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.fixture
def untouched(runtime: Any, broker: Any, catalog: Any) -> Callable[[], None]:
    """Assert, after a refused request, that no claim, hold, order or message exists."""
    before = runtime.redis.hgetall("{shop}:avail")

    def check() -> None:
        assert leftovers(runtime.redis) == []
        assert runtime.redis.hgetall("{shop}:avail") == before
        assert queued(broker) == 0
        assert order_count() == 0

    return check


class TestQuote:
    def test_prices_the_cart_server_side(self, client: Any, catalog: Any) -> None:
        body = {
            "items": [{"sku": "TEE-M", "quantity": 2}],
            "shippingAddress": {"country": "US", "state": "CA"},
        }
        response = client.post(QUOTE, json=body)
        assert response.status_code == 200
        quote = response.get_json()
        assert quote["lineItems"] == [
            {"sku": "TEE-M", "name": "Tee (M)", "quantity": 2, "unitAmount": 2500, "amount": 5000,
             "unitAmountDecimal": "25.00", "amountDecimal": "50.00", "available": 10}
        ]  # fmt: skip
        assert quote["subtotal"] == 5000
        assert quote["shipping"] == 0  # free over $50
        assert quote["tax"] == 363  # 7.25 % of $50.00 = 3.625 → half-up
        assert quote["total"] == 5363
        assert quote["currency"] == "usd"

    def test_without_address(self, client: Any, catalog: Any) -> None:
        response = client.post(QUOTE, json={"items": [{"sku": "MUG", "quantity": 1}]})
        assert response.status_code == 200
        assert response.get_json()["shipping"] == 500

    def test_unknown_sku_from_the_database(self, client: Any, catalog: Any) -> None:
        response = client.post(
            QUOTE, json={"items": [{"sku": "MUG", "quantity": 1}, {"sku": "NOPE", "quantity": 1}]}
        )
        assert response.status_code == 400
        assert error_of(response)["fields"] == {"items.1.sku": ["Unknown SKU."]}

    def test_bad_country(self, client: Any, catalog: Any) -> None:
        body = {"items": [{"sku": "MUG", "quantity": 1}], "shippingAddress": {"country": "XX"}}
        response = client.post(QUOTE, json=body)
        assert error_of(response)["fields"] == {
            "shippingAddress.country": ["Must be an ISO 3166-1 alpha-2 country code."]
        }


class TestQuoteAddress:
    """The quote takes the submit's address object, every field but ``country`` optional."""

    def test_the_submits_full_address_is_priced(
        self, client: Any, catalog: Any, submit_body: Any
    ) -> None:
        address = submit_body()["shippingAddress"]
        response = client.post(
            QUOTE, json={"items": [{"sku": "TEE-M", "quantity": 2}], "shippingAddress": address}
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["tax"] == 363  # the address's US-CA rate

    def test_a_partial_address_is_priced(self, client: Any, catalog: Any) -> None:
        address = {"country": "US", "state": "CA", "city": "Oakland", "name": "", "line1": " "}
        response = client.post(
            QUOTE, json={"items": [{"sku": "TEE-M", "quantity": 2}], "shippingAddress": address}
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["tax"] == 363

    def test_country_is_still_required(self, client: Any, catalog: Any) -> None:
        body = {"items": [{"sku": "MUG", "quantity": 1}], "shippingAddress": {"city": "Oakland"}}
        response = client.post(QUOTE, json=body)
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["shippingAddress.country"]

    def test_a_given_field_is_checked_as_at_submit(self, client: Any, catalog: Any) -> None:
        address = {"country": "US", "postalCode": "<script>"}
        body = {"items": [{"sku": "MUG", "quantity": 1}], "shippingAddress": address}
        response = client.post(QUOTE, json=body)
        assert error_of(response)["fields"] == {
            "shippingAddress.postalCode": ["Invalid postal code."]
        }


class TestSubmit:
    def test_admits_holds_and_enqueues(
        self, client: Any, runtime: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        response = client.post(SUBMIT, json=submit_body(), headers=KEY)
        assert response.status_code == 202
        body = response.get_json()
        assert set(body) == {
            "orderId", "orderNumber", "checkoutToken", "state", "statusUrl", "holdExpiresAt"
        }  # fmt: skip
        assert body["state"] == "PENDING"
        assert body["statusUrl"] == f"/api/checkout/{body['orderId']}"
        assert "Idempotent-Replayed" not in response.headers
        assert runtime.redis.hgetall("{shop}:avail") == {"TEE-M": "8", "MUG": "4", "GONE": "0"}
        assert queued(broker) == 1
        message = (
            next(iter(broker.queues.values())).queue[0]
            if hasattr(next(iter(broker.queues.values())), "queue")
            else None
        )
        del message

    def test_key_in_the_body_is_accepted(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        response = client.post(SUBMIT, json=submit_body(idempotencyKey="body-key-0001"))
        assert response.status_code == 202

    def test_replay_gives_the_same_body_and_header(
        self, client: Any, runtime: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        first = client.post(SUBMIT, json=submit_body(), headers=KEY)
        again = client.post(SUBMIT, json=submit_body(), headers=KEY)
        assert again.status_code == 202
        # A guest has no credential to prove it submitted: the token stays out (no 2nd copy).
        assert again.get_json() == {**first.get_json(), "checkoutToken": None}
        assert again.headers["Idempotent-Replayed"] == "true"
        assert queued(broker) == 1  # the replay enqueues nothing
        assert runtime.redis.hget("{shop}:avail", "TEE-M") == "8"  # held once

    def test_same_key_other_body_is_422(
        self, client: Any, runtime: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        client.post(SUBMIT, json=submit_body(), headers=KEY)
        other = client.post(SUBMIT, json=submit_body(email="other@example.com"), headers=KEY)
        assert other.status_code == 422
        assert error_of(other)["code"] == "idempotency_key_reused"
        assert queued(broker) == 1
        assert runtime.redis.hget("{shop}:avail", "TEE-M") == "8"

    def test_out_of_stock_lists_the_short_lines(
        self, client: Any, submit_body: Any, untouched: Callable[[], None]
    ) -> None:
        body = submit_body(items=[{"sku": "MUG", "quantity": 6}, {"sku": "TEE-M", "quantity": 1}])
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "out_of_stock"
        assert error["items"] == [{"sku": "MUG", "name": "Mug", "requested": 6, "available": 5}]
        untouched()

    def test_unknown_sku_is_reported_on_its_line(
        self, client: Any, submit_body: Any, untouched: Callable[[], None]
    ) -> None:
        body = submit_body(items=[{"sku": "MUG", "quantity": 1}, {"sku": "NOPE-1", "quantity": 1}])
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == ["items.1.sku"]
        untouched()

    def test_a_refused_submit_does_not_use_up_its_key(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        bad = client.post(SUBMIT, json=submit_body(email="nope"), headers=KEY)
        assert bad.status_code == 400
        good = client.post(SUBMIT, json=submit_body(), headers=KEY)
        assert good.status_code == 202
        assert "Idempotent-Replayed" not in good.headers


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path (``items.0.quantity``) in ``body``; ``...`` deletes it."""
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return body


BAD_FIELDS = [
    ("items.0.quantity", "2", "items.0.quantity"),
    ("items.0.quantity", 2.0, "items.0.quantity"),
    ("items.0.quantity", True, "items.0.quantity"),
    ("items.0.quantity", 0, "items.0.quantity"),
    ("items.0.quantity", -1, "items.0.quantity"),
    ("items.0.quantity", 10**9, "items.0.quantity"),
    ("items.0.quantity", None, "items.0.quantity"),
    ("items.0.sku", "bad sku!", "items.0.sku"),
    ("items.0.sku", 12, "items.0.sku"),
    ("items", [], "items"),
    ("items", "TEE-M", "items"),
    ("email", ..., "email"),
    ("email", "not-an-email", "email"),
    ("shippingAddress", ..., "shippingAddress"),
    ("shippingAddress.country", "XX", "shippingAddress.country"),
    ("shippingAddress.country", "USA", "shippingAddress.country"),
    ("shippingAddress.postalCode", ..., "shippingAddress.postalCode"),
    ("shippingAddress.postalCode", "   ", "shippingAddress.postalCode"),
    ("shippingAddress.name", "", "shippingAddress.name"),
    ("shippingAddress.city", 5, "shippingAddress.city"),
    ("billingAddress", {"country": "US"}, "billingAddress.name"),
]


class TestSubmitValidation:
    @pytest.mark.parametrize(("path", "value", "field"), BAD_FIELDS)
    def test_bad_field_is_validation_failed_on_its_path(
        self,
        client: Any,
        submit_body: Any,
        untouched: Callable[[], None],
        path: str,
        value: Any,
        field: str,
    ) -> None:
        response = client.post(SUBMIT, json=_set(submit_body(), path, value), headers=KEY)
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert error["type"] == "invalid_request_error"
        assert field in error["fields"], error["fields"]
        untouched()

    def test_a_thousand_lines(
        self, client: Any, submit_body: Any, untouched: Callable[[], None]
    ) -> None:
        items = [{"sku": f"SKU-{i}", "quantity": 1} for i in range(1000)]
        response = client.post(SUBMIT, json=submit_body(items=items), headers=KEY)
        assert response.status_code == 400
        assert error_of(response)["fields"] == {"items": ["A cart has 1 to 100 lines."]}
        untouched()

    def test_duplicate_skus_are_refused(
        self, client: Any, submit_body: Any, untouched: Callable[[], None]
    ) -> None:
        items = [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 1}]
        response = client.post(SUBMIT, json=submit_body(items=items), headers=KEY)
        assert list(error_of(response)["fields"]) == ["items.1.sku"]
        untouched()

    def test_unknown_fields_are_refused_on_their_path(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any, untouched: Any
    ) -> None:
        body = submit_body(total=1, discount={"amount": 100})
        body["items"][0]["unitAmount"] = 1
        body["shippingAddress"]["phone"] = "555"
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert set(error["fields"]) == {
            "total", "discount", "items.0.unitAmount", "shippingAddress.phone"
        }  # fmt: skip
        assert error["fields"]["total"] == ["Unknown field."]
        untouched()

    def test_strings_are_trimmed_email_included(
        self, client: Any, runtime: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        from app.services.admission import load_submission

        body = submit_body(email="  buyer@example.com ")
        body["shippingAddress"]["city"] = " San Francisco "
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert response.status_code == 202
        stored = load_submission(runtime.redis, response.get_json()["orderId"])
        assert stored is not None
        assert stored["email"] == "buyer@example.com"
        assert stored["shippingAddress"]["city"] == "San Francisco"

    def test_client_amounts_never_reach_the_order_or_the_intent(
        self, client: Any, runtime: Any, broker: Any, catalog: Any, submit_body: Any, gateway: Any
    ) -> None:
        """I5: amounts a client sends are refused; the worker prices from the database."""
        from app.services.checkout import create_order_from_submission

        priced = submit_body(total=1, amount=1, subtotal=1, currency="jpy")
        for line in priced["items"]:
            line.update(unitAmount=1, amount=1, price={"amount": 1, "currency": "jpy"})
        refused = client.post(SUBMIT, json=priced, headers=KEY)
        assert refused.status_code == 400
        assert {"total", "currency", "items.0.unitAmount", "items.1.price"} <= set(
            error_of(refused)["fields"]
        )
        body = submit_body()
        quote = client.post(QUOTE, json={"items": body["items"]}).get_json()
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert response.status_code == 202
        order = create_order_from_submission(response.get_json()["orderId"], runtime)
        assert order is not None
        assert quote["subtotal"] == 2 * 2500 + 1400
        assert (order.subtotal, order.currency) == (quote["subtotal"], "usd")
        intent = gateway.intents[order.payment_intent_id]
        assert (intent.amount, intent.currency) == (order.total, "usd")
        assert isinstance(intent.amount, int)

    @pytest.mark.parametrize("key", [None, "short", "x" * 256, "has space in it"])
    def test_missing_or_malformed_idempotency_key(
        self, client: Any, submit_body: Any, untouched: Callable[[], None], key: str | None
    ) -> None:
        headers = {} if key is None else {"Idempotency-Key": key}
        response = client.post(SUBMIT, json=submit_body(), headers=headers)
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == ["idempotencyKey"]
        untouched()

    def test_header_and_body_keys_must_agree(
        self, client: Any, submit_body: Any, untouched: Callable[[], None]
    ) -> None:
        body = submit_body(idempotencyKey="body-key-0001")
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert list(error_of(response)["fields"]) == ["idempotencyKey"]
        untouched()


class TestBodies:
    @pytest.mark.parametrize(
        "raw", [b"{", b"not json", b"[1, 2]", b'"a string"', b"null", b'{"a": NaN}', b"\xff\xfe"]
    )
    def test_malformed_json(self, client: Any, untouched: Callable[[], None], raw: bytes) -> None:
        response = client.post(SUBMIT, data=raw, content_type="application/json", headers=KEY)
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_json"
        untouched()

    def test_wrong_content_type(
        self, client: Any, submit_body: Any, untouched: Callable[[], None]
    ) -> None:
        response = client.post(
            SUBMIT, data=json.dumps(submit_body()), content_type="text/plain", headers=KEY
        )
        assert response.status_code == 415
        assert error_of(response)["code"] == "unsupported_media_type"
        untouched()

    def test_five_megabytes(self, client: Any, untouched: Callable[[], None]) -> None:
        raw = b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
        response = client.post(SUBMIT, data=raw, content_type="application/json", headers=KEY)
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"
        untouched()


CARD_BODIES = [
    {"card": {"brand": "visa"}},
    {"cardNumber": "x"},
    {"shippingAddress": {"card_number": "x"}},
    {"items": [{"sku": "MUG", "quantity": 1, "cvc": "123"}]},
    {"meta": {"deep": [{"CVV": "1"}]}},
    {"expiry": "12/30"},
    {"expMonth": 1},
    {"exp_month": 1},
    {"expYear": 2030},
    {"exp_year": 2030},
    {"pan": "x"},
    {"note": "4242 4242 4242 4242"},
    {"shippingAddress": {"line2": "card 4000-0025-0000-3155 pls"}},
    {"ref": 4242424242424242},
    {"list": ["378282246310005"]},
    # Eight characters, sixteen digits: NFKC reads each circled "42" as two.
    {"note": "\u32b7" * 8},
]


class TestCardData:
    @pytest.mark.parametrize("extra", CARD_BODIES)
    def test_card_data_is_rejected_and_not_echoed(
        self,
        client: Any,
        submit_body: Any,
        untouched: Callable[[], None],
        extra: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        body = submit_body()
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key].update(value)
            else:
                body[key] = value
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        text = response.get_data(as_text=True)
        for secret in ("4242", "4000", "3782", "123"):
            assert secret not in text
        logged = caplog.text + capsys.readouterr().out
        assert "4242" not in logged and "0025" not in logged
        untouched()

    def test_rejected_card_number_never_reaches_the_logs(
        self,
        client: Any,
        submit_body: Any,
        untouched: Callable[[], None],
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """I6: everything the app logs at any level is captured, and the number is absent."""
        caplog.set_level(logging.DEBUG)
        body = submit_body(cardNumber="4000002500003155", note="4000 0025 0000 3155")
        body["shippingAddress"]["line2"] = "4000-0025-0000-3155"
        response = client.post(SUBMIT, json=body, headers=KEY)
        assert error_of(response)["code"] == "card_data_rejected"
        captured = capsys.readouterr()
        logged = caplog.text + captured.out + captured.err
        # The capture works: the request's own log line (INFO) is there...
        assert "/api/checkout/payment-intent" in logged and "400" in logged
        # ...and no form of the number is.
        for form in ("4000002500003155", "4000 0025", "4000-0025", "3155"):
            assert form not in logged
        untouched()

    def test_card_data_wins_over_schema_errors(self, client: Any, catalog: Any) -> None:
        response = client.post(SUBMIT, json={"cvc": "123"}, headers=KEY)
        assert error_of(response)["code"] == "card_data_rejected"

    @pytest.mark.parametrize("value", ["4242 4242 4242 4241", "1234567890123", "+1 415 555 0100"])
    def test_non_card_numbers_pass(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any, value: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"]["line2"] = value
        assert client.post(SUBMIT, json=body, headers=KEY).status_code == 202
