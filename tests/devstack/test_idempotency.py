"""Idempotency keys and chaos (rate limits, injected 500s) as the SDK meets them."""

from __future__ import annotations

import threading

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

from .conftest import SECRET_KEY, Control

AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}


def post(
    server: EmulatorServer, path: str, data: dict[str, str], key: str, api_key: str = SECRET_KEY
) -> requests.Response:
    return requests.post(
        f"{server.url}{path}",
        data=data,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key},
        timeout=10,
    )


class TestIdempotencyKeys:
    def test_replay_returns_the_stored_response(self, client: stripe.StripeClient) -> None:
        params = {"amount": 1000, "currency": "usd", "metadata": {"orderId": "9"}}
        first = client.v1.payment_intents.create(
            params=params, options={"idempotency_key": "order-9"}
        )  # type: ignore[arg-type]
        again = client.v1.payment_intents.create(
            params=params, options={"idempotency_key": "order-9"}
        )  # type: ignore[arg-type]
        assert again.id == first.id
        assert again.last_response.headers["Idempotent-Replayed"] == "true"
        assert again.last_response.headers["Original-Request"] == first.last_response.request_id
        assert len(client.v1.payment_intents.list().data) == 1

    def test_replayed_card_error(self, stripe_emulator: EmulatorServer) -> None:
        data = {
            "amount": "1000",
            "currency": "usd",
            "payment_method": "pm_card_chargeDeclined",
            "confirm": "true",
        }
        first = post(stripe_emulator, "/v1/payment_intents", data, "declined-1")
        second = post(stripe_emulator, "/v1/payment_intents", data, "declined-1")
        assert first.status_code == second.status_code == 402
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"

    def test_other_parameters_are_refused(self, client: stripe.StripeClient) -> None:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "k1"}
        )
        with pytest.raises(stripe.IdempotencyError) as err:
            client.v1.payment_intents.create(
                params={"amount": 1001, "currency": "usd"}, options={"idempotency_key": "k1"}
            )
        assert err.value.http_status == 400
        assert err.value.error.type == "idempotency_error"

    def test_other_endpoint_is_refused(self, client: stripe.StripeClient) -> None:
        pi = client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "k2"}
        )
        with pytest.raises(stripe.IdempotencyError):
            client.v1.payment_intents.cancel(pi.id, options={"idempotency_key": "k2"})

    def test_keys_are_scoped_per_api_key(self, stripe_emulator: EmulatorServer) -> None:
        data = {"amount": "1000", "currency": "usd"}
        a = post(stripe_emulator, "/v1/payment_intents", data, "shared")
        b = post(
            stripe_emulator, "/v1/payment_intents", data, "shared", api_key="sk_test_other_account"
        )
        assert a.json()["id"] != b.json()["id"]
        assert "Idempotent-Replayed" not in b.headers

    def test_validation_errors_are_not_stored(self, stripe_emulator: EmulatorServer) -> None:
        bad = post(stripe_emulator, "/v1/payment_intents", {"currency": "usd"}, "fix-me")
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "parameter_missing"
        good = post(
            stripe_emulator, "/v1/payment_intents", {"amount": "1000", "currency": "usd"}, "fix-me"
        )
        assert good.status_code == 200

    def test_concurrent_request_gets_409(
        self, stripe_emulator: EmulatorServer, control: Control
    ) -> None:
        control.post("chaos", {"latencyMs": 400})
        data = {"amount": "1000", "currency": "usd"}
        results: list[requests.Response] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(
                    post(stripe_emulator, "/v1/payment_intents", data, "busy")
                )
            )
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 409]
        conflict = next(r for r in results if r.status_code == 409).json()["error"]
        assert conflict["code"] == "idempotency_key_in_use"
        control.post("chaos", {"latencyMs": 0})
        replay = post(stripe_emulator, "/v1/payment_intents", data, "busy")
        assert replay.headers["Idempotent-Replayed"] == "true"

    def test_sdk_raises_on_409(
        self, stripe_emulator: EmulatorServer, control: Control, client: stripe.StripeClient
    ) -> None:
        control.post("chaos", {"latencyMs": 400})
        blocker = threading.Thread(
            target=post,
            args=(
                stripe_emulator,
                "/v1/payment_intents",
                {"amount": "1000", "currency": "usd"},
                "sdk-busy",
            ),
        )
        blocker.start()
        try:
            import time

            time.sleep(0.1)
            with pytest.raises(stripe.StripeError) as err:
                client.v1.payment_intents.create(
                    params={"amount": 1000, "currency": "usd"},
                    options={"idempotency_key": "sdk-busy"},
                )
            assert err.value.http_status == 409
        finally:
            blocker.join()


class TestChaos:
    def test_rate_limit_then_retry_with_the_same_key(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        control.post("chaos", {"rateLimitPerSecond": 1})
        params = {"amount": 1000, "currency": "usd"}
        limited = None
        for attempt in range(5):
            try:
                client.v1.payment_intents.create(
                    params=params, options={"idempotency_key": f"rl-{attempt}"}
                )  # type: ignore[arg-type]
            except stripe.RateLimitError as exc:
                limited = (exc, f"rl-{attempt}")
                break
        assert limited is not None, "no request was rate limited"
        error, key = limited
        assert error.http_status == 429 and error.error.code == "rate_limit"
        control.post("chaos", {"rateLimitPerSecond": 0})
        retried = client.v1.payment_intents.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]
        assert retried.status == "requires_payment_method"
        assert "Idempotent-Replayed" not in retried.last_response.headers

    def test_the_request_log_counts_each_second_answered_and_refused(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        control.post("chaos", {"rateLimitPerSecond": 2})
        outcomes: list[str] = []
        for attempt in range(12):  # until a second holds a third request
            if "429" in outcomes:
                break
            try:
                client.v1.payment_intents.create(
                    params={"amount": 1000, "currency": "usd"},
                    options={"idempotency_key": f"log-{attempt}"},
                )  # type: ignore[arg-type]
                outcomes.append("ok")
            except stripe.RateLimitError:
                outcomes.append("429")
        log = control.get("requests")
        assert log["rateLimitPerSecond"] == 2
        assert sum(s["answered"] for s in log["seconds"]) == outcomes.count("ok")
        assert sum(s["rateLimited"] for s in log["seconds"]) == outcomes.count("429") >= 1
        assert all(s["answered"] <= 2 for s in log["seconds"])

    def test_injected_500s_are_api_errors_and_not_stored(
        self, client: stripe.StripeClient, control: Control
    ) -> None:
        control.post("chaos", {"failureRate": 1})
        with pytest.raises(stripe.APIError) as err:
            client.v1.payment_intents.create(
                params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "f1"}
            )
        assert err.value.http_status == 500
        control.post("chaos", {"failureRate": 0})
        ok = client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "f1"}
        )
        assert ok.id.startswith("pi_")

    def test_sdk_retries_through_injected_failures(
        self, stripe_emulator: EmulatorServer, control: Control
    ) -> None:
        control.post("chaos", {"failureRate": 0.5, "seed": 7})
        retrying = stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": stripe_emulator.url}, max_network_retries=8
        )
        stripe._http_client.HTTPClient.INITIAL_DELAY = 0.01  # type: ignore[attr-defined]
        try:
            ids = {
                retrying.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}).id
                for _ in range(5)
            }
        finally:
            stripe._http_client.HTTPClient.INITIAL_DELAY = 0.5  # type: ignore[attr-defined]
        assert len(ids) == 5
        assert len(retrying.v1.payment_intents.list(params={"limit": 100}).data) == 5

    def test_chaos_settings_round_trip(
        self, stripe_emulator: EmulatorServer, control: Control
    ) -> None:
        settings = control.post("chaos", {"latencyMs": 5, "duplicateRate": 0.5})
        assert settings["latencyMs"] == 5 and settings["duplicateRate"] == 0.5
        assert control.get("chaos") == settings
        bad = requests.post(
            f"{stripe_emulator.url}/_emulator/chaos", json={"failureRate": 2}, timeout=5
        )
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        unknown = requests.post(
            f"{stripe_emulator.url}/_emulator/chaos", json={"nope": 1}, timeout=5
        )
        assert unknown.status_code == 400
        control.post("reset")
        assert control.get("chaos")["latencyMs"] == 0
