"""The one exception hierarchy. Each maps to the contract's JSON error body.

The Flask error handler (``app.api.errors``) turns any :class:`ServiceError` into::

    {"error": {"type": ..., "code": ..., "message": ..., "fields"?: ..., "items"?: ...}}

Services and actors raise these; nothing else invents error codes.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Raised when a request cannot be served; the base of every domain error."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "api_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body of the HTTP contract."""
        error: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(ServiceError):
    """Raised when input is well-formed JSON but breaks a rule; ``fields`` says where."""

    status = 400
    code = "validation_failed"
    type = "invalid_request_error"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, **({"fields": fields} if fields else {}))
        self.fields = fields or {}


class MalformedJSON(InvalidRequest):
    """Raised when a body is not parseable JSON (or not a JSON object)."""

    code = "malformed_json"


class MalformedEvent(MalformedJSON):
    """Raised when a signed Stripe event lacks the shape its type needs (a worker records
    it in the inbox as failed; retrying cannot help)."""


class CardDataRejected(InvalidRequest):
    """Raised when a body carries something that looks like card data (SAQ-A, I6)."""

    code = "card_data_rejected"


class SignatureInvalid(InvalidRequest):
    """Raised when a webhook's Stripe-Signature is missing, wrong or stale."""

    code = "signature_invalid"


class Unauthorized(ServiceError):
    """Raised when a request needs a valid JWT and has none."""

    status = 401
    code = "unauthorized"
    type = "authentication_error"


class SignInRefused(Unauthorized):
    """Raised when an operator's e-mail and password do not match an enabled account."""


class AccountLocked(Unauthorized):
    """Raised when too many wrong passwords have locked an operator's sign-in for a while
    (the right password is refused too until the lock ends)."""


class Forbidden(ServiceError):
    """Raised when a valid JWT lacks the role an endpoint needs."""

    status = 403
    code = "forbidden"
    type = "authentication_error"


class NotFound(ServiceError):
    """Raised when a resource does not exist or the caller may not know it exists."""

    status = 404
    code = "not_found"
    type = "invalid_request_error"


class MethodNotAllowed(ServiceError):
    """Raised when a route exists for the path but not for the method; ``allow`` lists
    the methods it does take (sent as the ``Allow`` header)."""

    status = 405
    code = "method_not_allowed"
    type = "invalid_request_error"

    def __init__(self, message: str = "Method not allowed.", allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allow = allow


class OutOfStock(ServiceError):
    """Raised when a hold cannot be taken; ``items`` lists the short lines."""

    status = 409
    code = "out_of_stock"
    type = "invalid_request_error"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__("Some items are not available in the requested quantity.", items=items)
        self.items = items


class PromotionUnavailable(ServiceError):
    """Raised when a submit's promotion code has no redemption left (for everyone, or for
    this buyer): nothing was held or redeemed."""

    status = 409
    code = "promotion_unavailable"
    type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"promotionCode": [message]})


class InvalidState(ServiceError):
    """Raised when an order transition or action is not allowed from its current state."""

    status = 409
    code = "invalid_state"
    type = "invalid_request_error"


class InsufficientStock(InvalidState):
    """Raised when a stock adjustment would take more units than are free: what is held
    or sold stays, so the product's available count may not go below zero."""

    code = "insufficient_stock"


class MalformedRequest(ServiceError):
    """Raised (by the WSGI server's error hook, gunicorn.conf.py) when the bytes received
    are not an HTTP request it can read: a bad request line, header or chunked framing."""

    status = 400
    code = "bad_request"
    type = "invalid_request_error"


class UriTooLong(MalformedRequest):
    """Raised (by the WSGI server's error hook) when the request line exceeds its limit."""

    status = 414
    code = "uri_too_long"


class HeaderFieldsTooLarge(MalformedRequest):
    """Raised (by the WSGI server's error hook) when there are too many or too long headers."""

    status = 431
    code = "header_fields_too_large"


class PayloadTooLarge(ServiceError):
    """Raised when a request body exceeds the configured size limit."""

    status = 413
    code = "payload_too_large"
    type = "invalid_request_error"


class UnsupportedMediaType(ServiceError):
    """Raised when a body is not sent as application/json."""

    status = 415
    code = "unsupported_media_type"
    type = "invalid_request_error"


class IdempotencyKeyReused(ServiceError):
    """Raised when an Idempotency-Key is replayed with a different request body."""

    status = 422
    code = "idempotency_key_reused"
    type = "idempotency_error"


class RateLimited(ServiceError):
    """Raised when a client exceeds its rate limit; ``retry_after`` feeds Retry-After."""

    status = 429
    code = "rate_limited"
    type = "rate_limit_error"

    def __init__(self, message: str = "Too many requests.", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(ServiceError):
    """Raised when a dependency (Redis, the database, the broker) cannot be reached."""

    status = 503
    code = "service_unavailable"
    type = "api_error"


class TaxUnavailable(ServiceError):
    """Raised when the tax service (Stripe Tax) cannot price a cart now: the quote answers
    503 rather than a wrong total, and the worker's pricing is retried."""

    status = 503
    code = "tax_unavailable"
    type = "api_error"


class PaymentProviderError(ServiceError):
    """Raised by the payment gateway; ``retryable`` tells actors whether to retry."""

    status = 502
    code = "payment_provider_error"
    type = "api_error"

    def __init__(self, message: str, *, retryable: bool, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.provider_code = provider_code
