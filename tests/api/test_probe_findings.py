"""The probe's findings (issue 10, item 6) over HTTP: each was a 500, a silent
acceptance or a leak; each answers the documented error now."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest

SUBMIT = "/api/checkout/payment-intent"
QUOTE = "/api/checkout/quote"
TRACK = "/api/orders/track"
WEBHOOK = "/api/webhooks/stripe"


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def submitted(client: Any, submit_body: Any, key: str = "probe-key-0001") -> dict[str, Any]:
    response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": key})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


class TestUnauthenticated500s:
    @pytest.mark.parametrize("name", ["wait", "since"])
    @pytest.mark.parametrize("value", ["²", "①", "٣", "9" * 4400])
    def test_odd_digits_in_the_long_poll_query_are_400(
        self, client: Any, catalog: Any, submit_body: Any, name: str, value: str
    ) -> None:
        created = submitted(client, submit_body)
        response = client.get(
            f"/api/checkout/{created['orderId']}",
            query_string={name: value},
            headers={"X-Checkout-Token": created["checkoutToken"]},
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == [name]

    @pytest.mark.parametrize(
        "timestamp", ["\u00b2", "\u00b9\u00b2\u00b3", "1" * 4400, "-1", "+1", " 1"]
    )
    def test_odd_signature_timestamps_are_signature_invalid(
        self, client: Any, broker: Any, gateway: Any, timestamp: str
    ) -> None:
        body, _ = gateway.signed(gateway.event("payment_intent.succeeded", {"id": "pi_1"}))
        header = f"t={timestamp},v1=abc".encode("latin-1")
        response = client.post(
            WEBHOOK,
            data=body,
            headers=[("Stripe-Signature", header.decode("latin-1"))],
            content_type="application/json",
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "signature_invalid"

    @pytest.mark.parametrize("field", ["name", "line1", "city"])
    def test_lone_surrogate_in_the_submit_address_is_validation_failed(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, field: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"][field] = "Ada \ud800"
        response = client.post(
            SUBMIT,
            data=json.dumps(body),  # ensure_ascii: the surrogate travels as \\ud800
            content_type="application/json",
            headers={"Idempotency-Key": "probe-key-0002"},
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == [f"shippingAddress.{field}"]
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]

    def test_lone_surrogate_in_the_tracking_number_is_validation_failed(
        self, client: Any, runtime: Any
    ) -> None:
        response = client.post(
            TRACK,
            data=json.dumps({"orderNumber": "ORD-\udfff", "email": "a@example.com"}),
            content_type="application/json",
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["orderNumber"]

    def test_lone_surrogate_in_an_admin_product_name_is_validation_failed(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        body = {
            "name": "Mug \ud800",
            "description": "x",
            "price": {"amount": 100, "currency": "usd"},
            "stockOnHand": 1,
        }
        response = client.put(
            "/api/admin/products/MUG2",
            data=json.dumps(body),
            content_type="application/json",
            headers=admin_headers,
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["name"]

    def test_lone_surrogate_in_a_key_is_validation_failed(self, client: Any, runtime: Any) -> None:
        response = client.post(
            QUOTE,
            data='{"items": [{"sku": "MUG", "quantity": 1}], "\\ud800": 1}',
            content_type="application/json",
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "validation_failed"


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass Luhn."""
    for check in "0123456789":
        digits = prefix + check
        total = 0
        for position, char in enumerate(reversed(digits)):
            value = int(char)
            if position % 2:
                value = value * 2 - 9 if value > 4 else value * 2
            total += value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def logged_text(caplog: Any, capsys: Any) -> str:
    """Everything logged at any level (the caller set caplog to DEBUG before)."""
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err


class TestCardDataThroughHeaders:
    @pytest.mark.parametrize(
        "key", ["4111111111111111", "4111-1111-1111-1111", "ref4111111111111111"]
    )
    def test_card_number_as_idempotency_key_is_refused_and_never_stored(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, key: str
    ) -> None:
        response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": key})
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        assert "1111" not in response.get_data(as_text=True)
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]

    def test_card_number_as_idempotency_key_in_the_body_is_refused(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any
    ) -> None:
        # In the body the guard always caught it; the header must be refused alike.
        body = submit_body(idempotencyKey="4111111111111111")
        response = client.post(SUBMIT, json=body)
        assert error_of(response)["code"] == "card_data_rejected"

    def test_card_number_as_refund_idempotency_key_is_refused(
        self, client: Any, runtime: Any, paid_order: Any, admin_headers: Any
    ) -> None:
        response = client.post(
            f"/api/admin/orders/{paid_order.id}/refunds",
            headers={**admin_headers, "Idempotency-Key": "4111111111111111"},
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        assert runtime.redis.keys("{shop}:idem:refund:*") == []

    @pytest.mark.parametrize("value", ["6011111111111117", "6011 1111 1111 1117"])
    def test_card_number_as_request_id_is_never_logged(
        self, client: Any, runtime: Any, caplog: Any, capsys: Any, value: str
    ) -> None:
        caplog.set_level(logging.DEBUG)
        capsys.readouterr()
        response = client.get("/healthz", headers={"X-Request-Id": value})
        assert response.status_code == 200
        logged = logged_text(caplog, capsys)
        assert '"request_id"' in logged  # the request's log line is there...
        assert value not in logged and "1117" not in logged  # ...without the number

    def test_a_plain_request_id_is_kept(self, client: Any, caplog: Any, capsys: Any) -> None:
        caplog.set_level(logging.DEBUG)
        capsys.readouterr()
        client.get("/healthz", headers={"X-Request-Id": "req-abc-123"})
        assert '"request_id": "req-abc-123"' in logged_text(caplog, capsys)


WIDER_CARD_FORMS = [
    "4111.1111.1111.1111",
    "4111  1111  1111  1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
    "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
    "4111 - 1111 - 1111 - 1111",
]


class TestWiderCardGuard:
    @pytest.mark.parametrize("value", WIDER_CARD_FORMS)
    def test_card_number_with_other_separators_is_refused(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, value: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"]["line2"] = value
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "probe-key-0003"})
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]

    @pytest.mark.parametrize(
        "value", ["Flat 12/34, 5 Main St.", "2024/01/31", "4242 4242 4242 4241", "+1 415 555 0100"]
    )
    def test_ordinary_text_still_passes(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any, value: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"]["line2"] = value
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "probe-key-0004"})
        assert response.status_code == 202


class TestAdminFieldsThatAreNotCardData:
    def test_luhn_valid_tracking_number_is_accepted_at_fulfilment_start(
        self, client: Any, runtime: Any, paid_order: Any, admin_headers: Any
    ) -> None:
        tracking = luhn_complete("92748963438592")  # 15 digits, passes Luhn
        response = client.post(
            f"/api/admin/orders/{paid_order.id}/fulfillment",
            json={"action": "start", "carrier": "UPS", "trackingNumber": tracking},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.get_json()
        started = [e for e in response.get_json()["events"] if e["type"] == "FULFILLMENT_STARTED"]
        assert started[0]["payload"]["trackingNumber"] == tracking

    def test_card_data_elsewhere_in_an_admin_body_is_still_refused(
        self, client: Any, runtime: Any, paid_order: Any, admin_headers: Any
    ) -> None:
        response = client.post(
            f"/api/admin/orders/{paid_order.id}/fulfillment",
            json={"action": "start", "carrier": "4111111111111111"},
            headers=admin_headers,
        )
        assert error_of(response)["code"] == "card_data_rejected"

    def test_tracking_number_stays_guarded_on_public_routes(
        self, client: Any, catalog: Any, submit_body: Any
    ) -> None:
        body = submit_body(trackingNumber="4111111111111111")
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "probe-key-0005"})
        assert error_of(response)["code"] == "card_data_rejected"


LIMIT = 64 * 1024


def chunked(client: Any, url: str, body: bytes, **kwargs: Any) -> Any:
    """POST ``body`` without Content-Length, as a chunked request reaches the app
    (gunicorn sets ``wsgi.input_terminated`` and leaves CONTENT_LENGTH out)."""
    return client.post(
        url,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked", **kwargs.pop("headers", {})},
        environ_overrides={"wsgi.input_terminated": True},
        **kwargs,
    )


def padded_quote(size: int) -> bytes:
    """A valid quote body of exactly ``size`` bytes (whitespace pads it: unknown fields
    are refused)."""
    head = b'{"items": [{"sku": "MUG", "quantity": 1}]'
    tail = b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


class TestChunkedBodies:
    def test_chunked_body_over_the_limit_is_413_not_cut(self, client: Any, catalog: Any) -> None:
        """The first 64 KiB are a valid body; the rest used to be silently ignored."""
        body = padded_quote(LIMIT) + b" " * 10_000
        response = chunked(client, QUOTE, body)
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"

    def test_same_as_with_content_length(self, client: Any, catalog: Any) -> None:
        body = padded_quote(LIMIT) + b" " * 10_000
        response = client.post(QUOTE, data=body, content_type="application/json")
        assert error_of(response)["code"] == "payload_too_large"

    @pytest.mark.parametrize("size", [1_000, LIMIT])
    def test_chunked_body_within_the_limit_is_read_whole(
        self, client: Any, catalog: Any, size: int
    ) -> None:
        response = chunked(client, QUOTE, padded_quote(size))
        assert response.status_code == 200, response.get_json()

    def test_chunked_webhook_over_the_limit_is_413(self, client: Any, gateway: Any) -> None:
        event = gateway.event("payment_intent.succeeded", {"id": "pi_1", "pad": "x" * LIMIT})
        body, header = gateway.signed(event)
        response = chunked(client, WEBHOOK, body, headers={"Stripe-Signature": header})
        assert response.status_code == 413


class TestAdminCursors:
    @pytest.mark.parametrize(
        "value", [[2**63], [-(2**63) - 1], [10**30], [[1]], [1.5], ["1"], [True]]
    )
    def test_bad_webhook_event_cursors_are_400_on_cursor(
        self, client: Any, runtime: Any, admin_headers: Any, value: list[Any]
    ) -> None:
        from app.services.admin import encode_cursor

        response = client.get(
            "/api/admin/webhook-events",
            query_string={"cursor": encode_cursor(value)},
            headers=admin_headers,
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["cursor"]

    @pytest.mark.parametrize(
        "value",
        [
            ["2026-01-01T00:00:00", [1]],
            ["2026-01-01T00:00:00", {"a": 1}],
            ["2026-01-01T00:00:00", 2**63],
            [["2026-01-01T00:00:00"], "o-1"],
            [2**63, "o-1"],
            ["2026-01-01T00:00:00", None],
        ],
    )
    def test_bad_order_cursors_are_400_on_cursor(
        self, client: Any, runtime: Any, admin_headers: Any, value: list[Any]
    ) -> None:
        from app.services.admin import encode_cursor

        response = client.get(
            "/api/admin/orders",
            query_string={"cursor": encode_cursor(value)},
            headers=admin_headers,
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["cursor"]


class TestStripeMaximum:
    @pytest.fixture
    def pricey(self, runtime: Any) -> None:
        from app.services.catalog import ProductInput, upsert_product

        upsert_product(runtime.redis, ProductInput("GOLD", "Gold", "Heavy.", 1_000_000, "usd", 500))

    def test_quote_over_stripes_maximum_is_refused(self, client: Any, pricey: None) -> None:
        response = client.post(QUOTE, json={"items": [{"sku": "GOLD", "quantity": 100}]})
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "validation_failed"
        assert list(error["fields"]) == ["items"]
        assert "999999.99 USD" in error["message"]

    def test_submit_over_stripes_maximum_is_refused_and_leaves_nothing(
        self, client: Any, runtime: Any, broker: Any, pricey: None, submit_body: Any
    ) -> None:
        body = submit_body(items=[{"sku": "GOLD", "quantity": 100}])
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "probe-key-0006"})
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["items"]
        assert sorted(k for k in runtime.redis.keys("*") if ":stats:" not in k) == [
            "{shop}:avail",
            "{shop}:price",
        ]
        assert runtime.redis.hget("{shop}:avail", "GOLD") == "500"

    def test_just_under_the_maximum_is_accepted(self, client: Any, pricey: None) -> None:
        # 99 x 1,000,000 + 7.25 % tax = 106,177,500 is over; 93 units stay under.
        response = client.post(QUOTE, json={"items": [{"sku": "GOLD", "quantity": 93}]})
        assert response.status_code == 200
        assert response.get_json()["total"] <= 99_999_999


class TestJwtClaims:
    ADMIN_ORDERS = "/api/admin/orders"

    def bearer(self, claims: dict[str, Any], secret: str) -> dict[str, str]:
        import jwt

        return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}

    def test_token_without_exp_is_401(self, client: Any, config: Any) -> None:
        headers = self.bearer({"sub": "a", "role": "admin"}, config.jwt_secret)
        response = client.get(self.ADMIN_ORDERS, headers=headers)
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"

    def test_token_with_a_future_exp_is_accepted(self, client: Any, config: Any) -> None:
        claims = {"sub": "a", "role": "admin", "exp": int(time.time()) + 60}
        response = client.get(self.ADMIN_ORDERS, headers=self.bearer(claims, config.jwt_secret))
        assert response.status_code == 200

    def test_configured_issuer_and_audience_are_required(self, runtime: Any, config: Any) -> None:
        from app import create_app

        strict = config.with_overrides(jwt_issuer="https://id.shop", jwt_audience="checkout")
        client = create_app(strict, runtime=runtime).test_client()
        exp = int(time.time()) + 60
        base = {"sub": "a", "role": "admin", "exp": exp}
        cases = [
            ({**base}, 401),
            ({**base, "iss": "https://id.shop"}, 401),
            ({**base, "aud": "checkout"}, 401),
            ({**base, "iss": "https://evil", "aud": "checkout"}, 401),
            ({**base, "iss": "https://id.shop", "aud": "other"}, 401),
            ({**base, "iss": "https://id.shop", "aud": "checkout"}, 200),
            ({**base, "iss": "https://id.shop", "aud": ["x", "checkout"]}, 200),
        ]
        for claims, status in cases:
            response = client.get(self.ADMIN_ORDERS, headers=self.bearer(claims, config.jwt_secret))
            assert response.status_code == status, claims

    def test_issuer_and_audience_come_from_the_environment(self) -> None:
        from app.config import load_config

        config = load_config(
            {"JWT_ISSUER": "https://id.shop", "JWT_AUDIENCE": "checkout"}, dotenv=False
        )
        assert (config.jwt_issuer, config.jwt_audience) == ("https://id.shop", "checkout")
        assert load_config({}, dotenv=False).jwt_issuer is None


class TestResponseHeaders:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/api/products"),
            ("get", "/api/checkout/nope"),
            ("post", QUOTE),
            ("get", "/openapi.json"),
            ("get", "/docs"),
            ("get", "/metrics"),
            ("get", "/healthz"),
            ("get", "/no/such/path"),
            ("delete", QUOTE),
        ],
    )
    def test_nosniff_on_every_response(
        self, client: Any, runtime: Any, method: str, path: str
    ) -> None:
        response = getattr(client, method)(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    def test_docs_page_has_a_strict_csp_that_allows_its_own_style(self, client: Any) -> None:
        import base64
        import hashlib
        import re

        response = client.get("/docs")
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy or "'none'" in policy
        assert "frame-ancestors 'none'" in policy
        style = re.search(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S)
        assert style is not None
        digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy

    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            ("put", "/api/admin/webhook-events", {"GET", "HEAD", "OPTIONS"}),
            # /api/orders/<orderId> answers GET on the same path
            ("delete", "/api/orders/track", {"GET", "HEAD", "OPTIONS", "POST"}),
            ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ],
    )
    def test_405_names_the_allowed_methods(
        self, client: Any, method: str, path: str, allowed: set[str]
    ) -> None:
        response = getattr(client, method)(path)
        assert response.status_code == 405
        assert error_of(response)["code"] == "method_not_allowed"
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


class TestMetricsAccess:
    def metrics_client(self, runtime: Any, token: str | None) -> Any:
        from app import create_app

        config = runtime.config.with_overrides(metrics_token=token)
        return create_app(config, runtime=runtime).test_client()

    def test_without_a_token_only_loopback_may_read(self, runtime: Any) -> None:
        client = self.metrics_client(runtime, None)
        assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
        ipv6 = client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
        assert ipv6.status_code == 200
        public = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
        assert public.status_code == 403
        assert error_of(public)["code"] == "forbidden"
        assert b"checkout_" not in public.get_data()

    def test_with_a_token_the_bearer_is_required_from_anywhere(self, runtime: Any) -> None:
        client = self.metrics_client(runtime, "metrics-secret-0123456789")
        remote = {"REMOTE_ADDR": "203.0.113.7"}
        assert client.get("/metrics").status_code == 401  # loopback needs it too
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/metrics", headers=wrong, environ_base=remote).status_code == 401
        right = {"Authorization": "Bearer metrics-secret-0123456789"}
        response = client.get("/metrics", headers=right, environ_base=remote)
        assert response.status_code == 200
        assert b"checkout_http_requests_total" in response.get_data()

    def test_token_comes_from_the_environment(self) -> None:
        from app.config import load_config

        assert load_config({"METRICS_TOKEN": "t0k"}, dotenv=False).metrics_token == "t0k"
        assert load_config({}, dotenv=False).metrics_token is None


class TestTrackRateLimit:
    def test_tracking_guesses_hit_a_429(self, runtime: Any) -> None:
        from app import create_app

        config = runtime.config.with_overrides(ratelimit_enabled=True, ratelimit_track="3/minute")
        client = create_app(config, runtime=runtime).test_client()
        body = {"orderNumber": "ORD-00000000", "email": "guess@example.com"}
        codes = [client.post(TRACK, json=body).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        other = client.post(TRACK, json=body, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert other.status_code == 404

    def test_track_limit_has_a_default_and_an_environment_variable(self) -> None:
        from app.config import Config, load_config

        assert Config().ratelimit_track
        assert load_config({"RATELIMIT_TRACK": "5/hour"}, dotenv=False).ratelimit_track == "5/hour"


class TestHeaderGuardFalsePositives:
    def test_uuid_idempotency_keys_are_never_taken_for_card_numbers(self) -> None:
        """Shops use UUIDs as keys: their all-digit hex groups must not trip the guard."""
        import random
        import uuid

        from app.schemas.card_data import header_looks_like_pan, looks_like_pan

        rng = random.Random(10)
        keys = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20_000)]
        assert [k for k in keys if header_looks_like_pan(f"e2e-{k}")] == []
        # The body guard's free separators would have refused some of them.
        assert any(looks_like_pan(k) for k in keys)

    def test_hex_uuid_keys_are_never_taken_for_card_numbers(self) -> None:
        """``uuid4().hex``: about one in 500 holds a Luhn-valid run of 13+ digits between
        hex letters (the chaos suite's buyers met it); such a run is not a card number."""
        import random
        import uuid

        from app.schemas.card_data import header_looks_like_pan, looks_like_pan

        rng = random.Random(11)
        keys = [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(20_000)]
        assert [k for k in keys if header_looks_like_pan(k)] == []
        assert any(looks_like_pan(k) for k in keys)  # the body guard would refuse some

    @pytest.mark.parametrize(
        "key",
        [
            "4111111111111111",
            "x-4111-1111-1111-1111",
            "3782 822463 10005",
            "4111.1111.1111.1111",
            "order-4111111111111111",
            "4111111111111111_retry",
        ],
    )
    def test_card_layouts_are_still_caught_in_headers(self, key: str) -> None:
        from app.schemas.card_data import header_looks_like_pan

        assert header_looks_like_pan(key)


class TestStripeMaximumAfterAPriceChange:
    """The submit's total check reads the prices the catalog wrote, not a per-process
    copy: a price raised a moment ago is checked by the next submit on every process."""

    def test_the_next_submit_sees_the_new_price(
        self, client: Any, runtime: Any, broker: Any, submit_body: Any, admin_headers: Any
    ) -> None:
        def sync(amount: int) -> None:
            price = {"amount": amount, "currency": "usd"}
            product = {"sku": "GOLD", "name": "Gold", "price": price, "stockOnHand": 500}
            response = client.put(
                "/api/admin/products", json={"products": [product]}, headers=admin_headers
            )
            assert response.status_code == 200, response.get_json()

        body = submit_body(items=[{"sku": "GOLD", "quantity": 100}])
        sync(100)
        first = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "price-key-001"})
        assert first.status_code == 202  # 100 x 1.00 USD
        sync(1_000_000)
        again = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "price-key-002"})
        assert again.status_code == 400  # 100 x 10,000.00 USD: over Stripe's maximum
        assert list(error_of(again)["fields"]) == ["items"]
        assert "999999.99 USD" in error_of(again)["message"]
        assert runtime.redis.hget("{shop}:avail", "GOLD") == "400"  # nothing more held
