"""Bad input gets Stripe's error bodies — JSON, the right status and code, no HTML."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer
from tests.conftest import skip_or_fail

from .conftest import PUBLISHABLE_KEY, SECRET_KEY

AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}


def error_of(response: requests.Response) -> dict[str, object]:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}
    assert None not in body["error"].values(), "optional fields must be omitted, not null"
    return body["error"]  # type: ignore[no-any-return]


class TestAuthentication:
    def test_missing_key(self, stripe_emulator: EmulatorServer) -> None:
        response = requests.get(f"{stripe_emulator.url}/v1/payment_intents", timeout=5)
        assert response.status_code == 401
        assert "You did not provide an API key" in str(error_of(response)["message"])

    def test_invalid_key(self, stripe_emulator: EmulatorServer) -> None:
        response = requests.get(
            f"{stripe_emulator.url}/v1/payment_intents",
            headers={"Authorization": "Bearer sk_live_abcdefghijklmnop"},
            timeout=5,
        )
        assert response.status_code == 401
        assert error_of(response)["message"] == "Invalid API Key provided: sk_live_************mnop"

    def test_sdk_raises_authentication_error(self, stripe_emulator: EmulatorServer) -> None:
        bad = stripe.StripeClient(
            "sk_nope", base_addresses={"api": stripe_emulator.url}, max_network_retries=0
        )
        with pytest.raises(stripe.AuthenticationError):
            bad.v1.payment_intents.list()

    def test_publishable_key_where_a_secret_key_is_needed(
        self, stripe_emulator: EmulatorServer
    ) -> None:
        response = requests.post(
            f"{stripe_emulator.url}/v1/payment_intents",
            data={"amount": "1000", "currency": "usd"},
            headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
            timeout=5,
        )
        assert response.status_code == 401
        assert error_of(response)["code"] == "secret_key_required"

    def test_basic_auth_and_stripe_version(self, stripe_emulator: EmulatorServer) -> None:
        response = requests.get(
            f"{stripe_emulator.url}/v1/payment_intents",
            auth=(SECRET_KEY, ""),
            headers={"Stripe-Version": "2023-08-16"},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.headers["Stripe-Version"] == "2023-08-16"
        assert response.headers["Request-Id"].startswith("req_")


class TestParameters:
    @pytest.mark.parametrize(
        ("data", "status", "code", "param"),
        [
            ({"currency": "usd"}, 400, "parameter_missing", "amount"),
            ({"amount": "1000"}, 400, "parameter_missing", "currency"),
            ({"amount": "ten", "currency": "usd"}, 400, "parameter_invalid_integer", "amount"),
            ({"amount": "10.5", "currency": "usd"}, 400, "parameter_invalid_integer", "amount"),
            (
                {"amount": "1000", "currency": "usd", "colour": "red"},
                400,
                "parameter_unknown",
                "colour",
            ),
            (
                {"amount": "1000", "currency": "usd", "payment_method": "pm_nope"},
                404,
                "resource_missing",
                "payment_method",
            ),
        ],
    )
    def test_create_payment_intent(
        self,
        stripe_emulator: EmulatorServer,
        data: dict[str, str],
        status: int,
        code: str,
        param: str,
    ) -> None:
        response = requests.post(
            f"{stripe_emulator.url}/v1/payment_intents", data=data, headers=AUTH, timeout=5
        )
        assert response.status_code == status
        error = error_of(response)
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            code,
            param,
        )
        assert str(error["doc_url"]).startswith("https://stripe.com/docs/error-codes/")

    def test_invalid_boolean_and_enum(self, stripe_emulator: EmulatorServer) -> None:
        for extra, param in (
            ({"confirm": "maybe"}, "confirm"),
            ({"capture_method": "later"}, "capture_method"),
        ):
            response = requests.post(
                f"{stripe_emulator.url}/v1/payment_intents",
                data={"amount": "1000", "currency": "usd", **extra},
                headers=AUTH,
                timeout=5,
            )
            assert response.status_code == 400
            assert error_of(response)["param"] == param

    def test_limit_out_of_range(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.list(params={"limit": 101})
        assert err.value.param == "limit"

    @pytest.mark.parametrize(
        ("path", "noun"),
        [
            ("/v1/payment_intents/pi_nope", "payment_intent"),
            ("/v1/charges/ch_nope", "charge"),
            ("/v1/refunds/re_nope", "refund"),
            ("/v1/events/evt_nope", "event"),
            ("/v1/payment_methods/pm_nope", "PaymentMethod"),
        ],
    )
    def test_unknown_ids(self, stripe_emulator: EmulatorServer, path: str, noun: str) -> None:
        response = requests.get(f"{stripe_emulator.url}{path}", headers=AUTH, timeout=5)
        assert response.status_code == 404
        error = error_of(response)
        assert error["code"] == "resource_missing"
        assert error["message"] == f"No such {noun}: '{path.rsplit('/', 1)[1]}'"

    def test_sdk_invalid_request_error(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.retrieve("pi_missing")
        assert err.value.http_status == 404 and err.value.code == "resource_missing"


class TestUrls:
    @pytest.mark.parametrize(
        ("method", "path"), [("GET", "/v1/nothing"), ("POST", "/v1/charges"), ("GET", "/")]
    )
    def test_unrecognized(self, stripe_emulator: EmulatorServer, method: str, path: str) -> None:
        response = requests.request(method, f"{stripe_emulator.url}{path}", headers=AUTH, timeout=5)
        assert response.status_code == 404
        assert error_of(response)["message"] == (
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/."
        )

    def test_control_errors_are_json(self, stripe_emulator: EmulatorServer) -> None:
        response = requests.post(
            f"{stripe_emulator.url}/_emulator/payment_intents/pi_nope/settle",
            json={"outcome": "failed"},
            timeout=5,
        )
        assert response.status_code == 404 and error_of(response)["code"] == "resource_missing"
        bad = requests.post(
            f"{stripe_emulator.url}/_emulator/payment_intents/pi_nope/settle", data="{", timeout=5
        )
        assert bad.status_code == 400 and error_of(bad)["type"] == "invalid_request_error"
        outcome = requests.post(
            f"{stripe_emulator.url}/_emulator/payment_intents/pi_x/authenticate",
            json={"outcome": "?"},
            timeout=5,
        )
        assert outcome.status_code == 400 and error_of(outcome)["param"] == "outcome"


class TestCors:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/payment_methods",
            "/v1/payment_intents/pi_x/confirm",
            "/v1/payment_intents/pi_x",
            "/_emulator/reset",
        ],
    )
    def test_preflight(self, stripe_emulator: EmulatorServer, path: str) -> None:
        response = requests.options(
            f"{stripe_emulator.url}{path}",
            headers={
                "Origin": "http://shop.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=5,
        )
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        allowed = response.headers["Access-Control-Allow-Headers"]
        for header in ("Authorization", "Content-Type", "Stripe-Version", "Idempotency-Key"):
            assert header in allowed

    def test_responses_carry_the_origin_header(self, stripe_emulator: EmulatorServer) -> None:
        response = requests.get(
            f"{stripe_emulator.url}/v1/payment_intents", headers=AUTH, timeout=5
        )
        assert response.headers["Access-Control-Allow-Origin"] == "*"


class TestStripeJsHook:
    @pytest.mark.parametrize(
        "path",
        ["/js.stripe.com/v3/", "/js.stripe.com/v3/stripe.js", "/js.stripe.com/endive/stripe.js"],
    )
    def test_script_is_served_as_javascript(
        self, stripe_emulator: EmulatorServer, path: str
    ) -> None:
        response = requests.get(f"{stripe_emulator.url}{path}", timeout=5)
        if response.status_code == 404:
            skip_or_fail("the Stripe.js stand-in (stripejs/stripe.js) is not served")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/javascript")

    def test_a_release_train_is_a_lowercase_word(self, stripe_emulator: EmulatorServer) -> None:
        response = requests.get(f"{stripe_emulator.url}/js.stripe.com/Endive1/stripe.js", timeout=5)
        assert response.status_code == 404

    def test_unknown_asset_and_traversal(self, stripe_emulator: EmulatorServer) -> None:
        for name in ("nope.js", "..%2F__init__.py"):
            response = requests.get(f"{stripe_emulator.url}/js.stripe.com/v3/{name}", timeout=5)
            assert response.status_code == 404
            error_of(response)
