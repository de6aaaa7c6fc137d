"""Identity from the JWT (app/api/auth.py): a token that is sent must be valid, on every
endpoint (issue 18: an expired buyer JWT used to become a silent guest checkout)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

SUBMIT = "/api/checkout/payment-intent"
QUOTE_BODY = {"items": [{"sku": "TEE-M", "quantity": 1}]}


@pytest.fixture
def bad_tokens(make_token: Callable[..., str]) -> dict[str, dict[str, str]]:
    """Headers carrying an expired, a forged and a malformed buyer token."""
    expired = make_token({"sub": "u-1", "exp": int(time.time()) - 60})
    forged = make_token({"sub": "u-1"}, secret="not-the-servers-secret-at-all")
    return {
        "expired": {"Authorization": f"Bearer {expired}"},
        "forged": {"x-auth-token": forged},
        "malformed": {"Authorization": "Bearer not-a-jwt"},
    }


class TestBuyerTokens:
    @pytest.mark.parametrize("kind", ["expired", "forged", "malformed"])
    def test_a_bad_token_on_submit_is_401_not_a_guest_checkout(
        self, client: Any, catalog: Any, submit_body: Any, bad_tokens: Any, kind: str
    ) -> None:
        headers = {"Idempotency-Key": f"k-auth-{kind}-01", **bad_tokens[kind]}
        response = client.post(SUBMIT, json=submit_body(), headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"

    def test_the_expired_token_is_told_apart(
        self, client: Any, catalog: Any, submit_body: Any, bad_tokens: Any
    ) -> None:
        headers = {"Idempotency-Key": "k-auth-expired-02", **bad_tokens["expired"]}
        error = client.post(SUBMIT, json=submit_body(), headers=headers).get_json()["error"]
        assert "expired" in error["message"]

    def test_a_refused_token_does_not_use_up_the_key(
        self, client: Any, catalog: Any, submit_body: Any, bad_tokens: Any, make_token: Any
    ) -> None:
        key = {"Idempotency-Key": "k-auth-retry-0001"}
        refused = client.post(SUBMIT, json=submit_body(), headers={**key, **bad_tokens["expired"]})
        assert refused.status_code == 401
        fresh = {"Authorization": "Bearer " + make_token({"sub": "u-1"})}
        accepted = client.post(SUBMIT, json=submit_body(), headers={**key, **fresh})
        assert accepted.status_code == 202
        assert "Idempotent-Replayed" not in accepted.headers

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("get", "/api/products", None),
            ("post", "/api/checkout/quote", QUOTE_BODY),
            ("get", "/api/orders/ord_unknown", None),
            ("get", "/api/checkout/ord_unknown", None),
        ],
    )
    def test_every_endpoint_refuses_it(
        self, client: Any, catalog: Any, bad_tokens: Any, method: str, path: str, body: Any
    ) -> None:
        response = getattr(client, method)(path, json=body, headers=bad_tokens["expired"])
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"

    def test_without_a_token_the_guest_checkout_stands(
        self, client: Any, catalog: Any, submit_body: Any
    ) -> None:
        headers = {"Idempotency-Key": "k-auth-guest-0001"}
        assert client.post(SUBMIT, json=submit_body(), headers=headers).status_code == 202
        assert client.get("/api/products").status_code == 200
