"""Stripe's error bodies, as one exception type and a few constructors.

Every failure the emulator reports is a :class:`StripeError`; the app turns it into the
``{"error": {...}}`` body Stripe sends, omitting optional fields instead of nulling them
(the OpenAPI schema marks ``param``, ``code`` and friends optional, not nullable).
"""

from __future__ import annotations

import json
from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """Raised when a request must be answered with one of Stripe's error bodies."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        payment_intent: dict[str, Any] | None = None,
        payment_method: dict[str, Any] | None = None,
        charge: str | None = None,
        stored: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.payment_intent = payment_intent
        self.payment_method = payment_method
        self.charge = charge
        # Stripe saves an idempotent result only once the endpoint began executing:
        # validation failures, rate limits and conflicts are safe to retry.
        self.stored = stored
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe sends for this error."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_BASE + self.code.replace("_", "-")
        optional = {
            "param": self.param,
            "decline_code": self.decline_code,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "charge": self.charge,
        }
        error.update({k: v for k, v in optional.items() if v is not None})
        return {"error": error}


def invalid_request(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    status: int = 400,
    stored: bool = True,
) -> StripeError:
    """An ``invalid_request_error`` with an optional param and code."""
    return StripeError(
        status, "invalid_request_error", message, param=param, code=code, stored=stored
    )


def parameter_missing(param: str) -> StripeError:
    """A required parameter is absent."""
    return invalid_request(
        f"Missing required param: {param}.", param=param, code="parameter_missing", stored=False
    )


def parameter_invalid_integer(param: str, value: object) -> StripeError:
    """A parameter that must be an integer is not one."""
    return invalid_request(
        f"Invalid integer: {value}", param=param, code="parameter_invalid_integer", stored=False
    )


def parameter_invalid(param: str, message: str, code: str | None = None) -> StripeError:
    """A parameter has a value Stripe refuses before the endpoint runs."""
    return invalid_request(message, param=param, code=code, stored=False)


def parameter_unknown(param: str) -> StripeError:
    """The request carries a parameter the endpoint does not know."""
    return invalid_request(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown", stored=False
    )


def invalid_enum(param: str, value: str, allowed: list[str]) -> StripeError:
    """An enum parameter holds a value outside its list."""
    choices = ", ".join(f"`{a}`" for a in allowed)
    return invalid_request(f"Invalid {param}: must be one of {choices}", param=param, stored=False)


def resource_missing(kind: str, object_id: str, param: str) -> StripeError:
    """An id names nothing the emulator holds (404, as Stripe answers)."""
    return invalid_request(
        f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404
    )


def unexpected_state(message: str, intent: dict[str, Any] | None = None) -> StripeError:
    """A PaymentIntent is not in a status that allows the call."""
    return StripeError(
        400,
        "invalid_request_error",
        message,
        code="payment_intent_unexpected_state",
        # A copy: the body must show the intent as it was when the call was refused.
        payment_intent=json.loads(json.dumps(intent)) if intent else None,
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    """No route matches: Stripe's 404 for unknown URLs."""
    return invalid_request(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
        stored=False,
    )


def no_api_key() -> StripeError:
    """The request carries no API key."""
    return invalid_request(
        "You did not provide an API key. You need to provide your API key in the "
        "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
        "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
        "or we can help at https://support.stripe.com/.",
        status=401,
        stored=False,
    )


def invalid_api_key(key: str) -> StripeError:
    """The API key is malformed or not a test-mode key."""
    return invalid_request(f"Invalid API Key provided: {redact_key(key)}", status=401, stored=False)


def secret_key_required() -> StripeError:
    """A publishable key was used where Stripe requires a secret key."""
    return invalid_request(
        "This API call cannot be made with a publishable API key. Please use a secret API "
        "key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
        code="secret_key_required",
        status=401,
        stored=False,
    )


def rate_limited() -> StripeError:
    """Chaos: the per-second request budget is spent (429, never stored)."""
    return invalid_request(
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        status=429,
        stored=False,
    )


def api_error() -> StripeError:
    """Chaos: a random internal error, raised before the endpoint runs."""
    return StripeError(
        500,
        "api_error",
        "An unknown error occurred (injected by the emulator's chaos settings).",
        stored=False,
        headers={"Stripe-Should-Retry": "true"},
    )


def redact_key(key: str) -> str:
    """Show a key the way Stripe's messages do: prefix, stars, last four."""
    if len(key) <= 12:
        return key[:4] + "*" * max(len(key) - 4, 0)
    prefix = key[: key.index("_", 3) + 1] if key.count("_") >= 2 else key[:3]
    return f"{prefix}{'*' * 12}{key[-4:]}"
