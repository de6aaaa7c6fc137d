"""Issue 15's edge guards over HTTP: each input below was stored, echoed, exported or
answered with a 500; each is refused (or replaced) with the documented error now."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

SUBMIT = "/api/checkout/payment-intent"
QUOTE = "/api/checkout/quote"
WEBHOOK = "/api/webhooks/stripe"


def error_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def post_signed(client: Any, body: bytes, header: str) -> Any:
    return client.post(
        WEBHOOK, data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )


def logged_text(caplog: Any, capsys: Any) -> str:
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err


# Item 5: every separator a buyer's paste or a script can put between digit groups.
SEPARATED_CARDS = [
    "4242\n4242\n4242\n4242",
    "4242\r\n4242\r\n4242\r\n4242",
    "4242\u20134242\u20134242\u20134242",  # en dash
    "4242\u00ad4242\u00ad4242\u00ad4242",  # soft hyphen
    "4242\u200b4242\u200b4242\u200b4242",  # zero-width space
    "4242,4242,4242,4242",
    "4242+4242+4242+4242",
    "4242:4242:4242:4242",
    "4242    4242    4242    4242",
    "4242 4242 4242 4242 12/27",  # the expiry after it no longer hides it
    "#1 4242-4242-4242-4242",
    ", ".join(str(n) for n in range(1, 40)) + ": 4242 4242 4242 4242",  # a long run's end
]


class TestCardNumbersWithAnySeparator:
    @pytest.mark.parametrize("value", SEPARATED_CARDS)
    def test_refused_in_the_body_and_never_echoed(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, value: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"]["line2"] = value
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "guard-key-0001"})
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        assert "4242" not in response.get_data(as_text=True)
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]

    @pytest.mark.parametrize(
        "value",
        [
            "Sizes 36, 37, 38, 39, 40, 41, 42, 43, 44",
            "2024-01-31 / 2024-02-28",
            "4242 4242 4242 4241",
            "Tel: +1 (415) 555-0100, +1 (415) 555-0101",
        ],
    )
    def test_ordinary_numbers_still_pass(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any, value: str
    ) -> None:
        body = submit_body()
        body["shippingAddress"]["line2"] = value
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "guard-key-0002"})
        assert response.status_code == 202, response.get_json()


class TestCardNumbersInHeaders:
    @pytest.mark.parametrize(
        "key", ["4242:4242:4242:4242:abc", "378282246310005", "4242+4242+4242+4242"]
    )
    def test_submit_key_is_refused_and_never_stored(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, key: str
    ) -> None:
        response = client.post(SUBMIT, json=submit_body(), headers={"Idempotency-Key": key})
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]

    def test_refund_key_is_refused(
        self, client: Any, runtime: Any, paid_order: Any, admin_headers: Any
    ) -> None:
        response = client.post(
            f"/api/admin/orders/{paid_order.id}/refunds",
            headers={**admin_headers, "Idempotency-Key": "4242:4242:4242:4242:abc"},
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "card_data_rejected"
        assert runtime.redis.keys("{shop}:idem:refund:*") == []

    def test_request_id_with_colons_is_replaced(
        self, client: Any, runtime: Any, caplog: Any, capsys: Any
    ) -> None:
        caplog.set_level(logging.DEBUG)
        capsys.readouterr()
        assert client.get("/healthz", headers={"X-Request-Id": "4111:1111:1111:1111"}).status_code
        logged = logged_text(caplog, capsys)
        assert '"request_id"' in logged
        assert "4111:1111" not in logged and "1111:1111" not in logged

    def test_hex_tokens_are_still_keys(self) -> None:
        """Commit 7042756's rule: a digit run inside a 32+ char hex token is the token's."""
        from app.schemas.card_data import header_looks_like_pan

        assert not header_looks_like_pan("ab4111111111111111cdef0123456789abcdef")
        assert not header_looks_like_pan("req:2026:01:31:abc")


class TestMethodLabels:
    @pytest.mark.parametrize("method", ["FOO", "4111111111111111"])
    def test_invented_methods_share_one_label_and_are_not_logged(
        self, client: Any, runtime: Any, caplog: Any, capsys: Any, method: str
    ) -> None:
        caplog.set_level(logging.DEBUG)
        capsys.readouterr()
        response = client.open("/healthz", method=method)
        assert response.status_code == 405
        logged = logged_text(caplog, capsys)
        assert '"request"' in logged and method not in logged
        metrics = client.get("/metrics").get_data(as_text=True)
        assert method not in metrics
        assert 'method="other"' in metrics

    def test_many_invented_methods_add_no_series(self, client: Any, runtime: Any) -> None:
        client.open("/healthz", method="M0")
        before = client.get("/metrics").get_data(as_text=True).count("\n")
        for n in range(1, 50):
            client.open("/healthz", method=f"M{n}")
        after = client.get("/metrics").get_data(as_text=True).count("\n")
        assert after == before

    def test_known_methods_keep_their_names(self, client: Any, runtime: Any) -> None:
        client.delete("/healthz")
        assert 'method="DELETE"' in client.get("/metrics").get_data(as_text=True)


class TestMetricsContentType:
    def test_charset_is_given_once(self, client: Any, runtime: Any) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST

        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["Content-Type"].count("charset") == 1
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST


class TestDuplicateKeys:
    def test_a_repeated_key_is_malformed_json(self, client: Any, catalog: Any) -> None:
        raw = '{"items": [{"sku": "TEE-M", "quantity": 1, "quantity": 2}]}'
        response = client.post(QUOTE, data=raw, content_type="application/json")
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_json"

    def test_a_repeated_top_level_key_is_malformed_json(self, client: Any, catalog: Any) -> None:
        items = '[{"sku": "TEE-M", "quantity": 1}]'
        raw = f'{{"items": {items}, "items": {items}}}'
        response = client.post(QUOTE, data=raw, content_type="application/json")
        assert error_of(response)["code"] == "malformed_json"

    def test_a_signed_event_with_a_repeated_key_is_malformed_json(
        self, client: Any, broker: Any, gateway: Any
    ) -> None:
        body = b'{"id": "evt_1", "id": "evt_2", "type": "x.y", "data": {"object": {}}}'
        body, header = gateway.signed(body)
        response = post_signed(client, body, header)
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_json"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


class TestDeepBodies:
    @pytest.mark.parametrize("depth", [65, 900, 3000])
    def test_a_deep_body_is_malformed_json(self, client: Any, catalog: Any, depth: int) -> None:
        raw = '{"items": ' + nested(depth) + "}"
        response = client.post(QUOTE, data=raw, content_type="application/json")
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_json"

    @pytest.mark.parametrize("depth", [65, 900, 3000])
    def test_a_deep_signed_event_is_malformed_json(
        self, client: Any, broker: Any, gateway: Any, depth: int
    ) -> None:
        raw = '{"id": "evt_deep", "type": "x.y", "data": {"object": {"a": ' + nested(depth) + "}}}"
        body, header = gateway.signed(raw.encode())
        response = post_signed(client, body, header)
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_json"
        assert broker.queues.get("default") is None or broker.queues["default"].qsize() == 0


class TestOddEventIdsAndTypes:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("id", "evt_\x00"),
            ("id", "evt_\ud800"),
            ("id", "evt_" + "x" * 252),
            ("id", "evt 1"),
            ("type", "payment_intent.\x00"),
            ("type", "payment_intent.\ud800"),
            ("type", "t" * 101),
        ],
    )
    def test_refused_at_the_edge(
        self, client: Any, broker: Any, gateway: Any, field: str, value: str
    ) -> None:
        event = gateway.event("payment_intent.succeeded", {"id": "pi_1", "metadata": {}})
        event[field] = value
        body, header = gateway.signed(json.dumps(event).encode())
        response = post_signed(client, body, header)
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_json"

    def test_the_longest_allowed_id_gets_an_inbox_row(
        self, client: Any, runtime: Any, broker: Any, gateway: Any, worker: Any
    ) -> None:
        from models import WebhookEvent

        event = gateway.event("payment_intent.succeeded", {"id": "pi_1", "metadata": {}})
        event["id"] = "evt_" + "x" * 251
        body, header = gateway.signed(event)
        response = post_signed(client, body, header)
        assert response.status_code == 200
        broker.join("default")
        worker.join()
        row = WebhookEvent.get(WebhookEvent.event_id == event["id"])
        # No order of ours: recorded and ignored, never an error.
        assert row.type == event["type"] and row.status == "ignored"

    def test_the_longest_allowed_type_is_acknowledged(
        self, client: Any, runtime: Any, broker: Any, gateway: Any
    ) -> None:
        from tests.api.test_webhooks import queued

        event = gateway.event("x" * 100, {"id": "pi_1", "metadata": {}})
        body, header = gateway.signed(event)
        response = post_signed(client, body, header)
        # No handler reads such a type: 200 at the edge, nothing queued.
        assert response.status_code == 200
        assert queued(broker) == []


class TestOrderCursors:
    @pytest.mark.parametrize("last_id", ["o-\x00", "o-\ud800"])
    def test_odd_text_in_a_cursor_is_400_on_cursor(
        self, client: Any, runtime: Any, admin_headers: Any, last_id: str
    ) -> None:
        from app.services.admin import encode_cursor

        response = client.get(
            "/api/admin/orders",
            query_string={"cursor": encode_cursor(["2026-01-01T00:00:00", last_id])},
            headers=admin_headers,
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["cursor"]

    def test_odd_text_in_the_cursor_timestamp_is_400_on_cursor(
        self, client: Any, runtime: Any, admin_headers: Any
    ) -> None:
        from app.services.admin import encode_cursor

        response = client.get(
            "/api/admin/orders",
            query_string={"cursor": encode_cursor(["2026-01-01T00:00:00\ud800", "o-1"])},
            headers=admin_headers,
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["cursor"]


class TestCountryCodes:
    @pytest.mark.parametrize("country", ["\u0131t", "u\u017f", "\uff35\uff33"])
    def test_only_ascii_letters(self, client: Any, catalog: Any, country: str) -> None:
        body = {"items": [{"sku": "TEE-M", "quantity": 1}], "shippingAddress": {"country": country}}
        response = client.post(QUOTE, json=body)
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["shippingAddress.country"]

    def test_lower_case_ascii_still_passes(self, client: Any, catalog: Any) -> None:
        body = {"items": [{"sku": "TEE-M", "quantity": 1}], "shippingAddress": {"country": "it"}}
        assert client.post(QUOTE, json=body).status_code == 200


class TestEmails:
    @pytest.mark.parametrize("email", ["a@[127.0.0.1]", "a@[IPv6:::1]", "a@localhost"])
    def test_no_ip_literal_or_single_label_domains(
        self, client: Any, runtime: Any, catalog: Any, submit_body: Any, email: str
    ) -> None:
        response = client.post(
            SUBMIT, json=submit_body(email=email), headers={"Idempotency-Key": "guard-key-0003"}
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["email"]
        assert sorted(runtime.redis.keys("*")) == ["{shop}:avail", "{shop}:price"]

    def test_an_ordinary_address_passes(
        self, client: Any, broker: Any, catalog: Any, submit_body: Any
    ) -> None:
        body = submit_body(email="ada.l+shop@mail.example.co.uk")
        response = client.post(SUBMIT, json=body, headers={"Idempotency-Key": "guard-key-0004"})
        assert response.status_code == 202


class TestImageUrls:
    @pytest.mark.parametrize(
        "url", ["/\\evil.example/x.png", "\\\\evil.example/x.png", "/\\/evil.example/x.png"]
    )
    def test_backslash_paths_are_refused(
        self, client: Any, runtime: Any, admin_headers: Any, url: str
    ) -> None:
        body = {"name": "Mug", "price": {"amount": 900, "currency": "usd"}, "stockOnHand": 1}
        response = client.put(
            "/api/admin/products/MUG-2", json={**body, "imageUrl": url}, headers=admin_headers
        )
        assert response.status_code == 400
        assert list(error_of(response)["fields"]) == ["imageUrl"]

    @pytest.mark.parametrize("url", ["/images/mug.png", "https://cdn.example/mug.png"])
    def test_own_paths_and_absolute_urls_pass(
        self, client: Any, runtime: Any, admin_headers: Any, url: str
    ) -> None:
        body = {"name": "Mug", "price": {"amount": 900, "currency": "usd"}, "stockOnHand": 1}
        response = client.put(
            "/api/admin/products/MUG-2", json={**body, "imageUrl": url}, headers=admin_headers
        )
        assert response.status_code == 200, response.get_json()
