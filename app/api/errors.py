"""The one place that turns exceptions into the contract's JSON error body."""

from __future__ import annotations

import math
import time

import peewee
import redis
import structlog
import werkzeug.exceptions
from flask import Flask, Response, current_app, jsonify, request
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

from app.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from app.schemas.card_data import looks_like_pan

log = structlog.get_logger("app.api.errors")
# How much of an unmatched path a 404 repeats.
MAX_PATH_SHOWN = 200


class BadRequest(ServiceError):
    """Raised for any other client error werkzeug detects before a view runs."""

    status = 400
    code = "bad_request"
    type = "invalid_request_error"


def error_response(error: ServiceError) -> Response:
    """The JSON response for a domain error (plus ``Retry-After`` on 429)."""
    response = jsonify(error.body())
    response.status_code = error.status
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allow)
    return response


def _http_error(exc: HTTPException) -> ServiceError:
    """Map werkzeug's own HTTP errors onto the hierarchy."""
    code = exc.code or 500
    if code == 404:
        return NotFound(_not_found_message())
    if code == 405:
        allowed = sorted(getattr(exc, "valid_methods", None) or ())
        return MethodNotAllowed(f"Use {', '.join(allowed) or 'another method'}.", tuple(allowed))
    if code == 413:
        return PayloadTooLarge("The request body is too large.")
    if code == 415:
        return UnsupportedMediaType("Send the body as application/json.")
    if code == 429:
        return RateLimited(retry_after=_retry_after())
    if code < 500:
        return BadRequest(exc.description or "Bad request.")
    return ServiceError("Internal server error.")


def _not_found_message() -> str:
    """Name the method and path no route matched (a doubled ``/api`` prefix shows), never
    a card number in it (I6), nor the query string; a long path is cut."""
    path = request.path
    if looks_like_pan(path):
        return "No such resource."
    if len(path) > MAX_PATH_SHOWN:
        path = path[:MAX_PATH_SHOWN] + "…"
    return f"No such resource: {request.method} {path}."


def _retry_after() -> int:
    """Seconds until the breached rate-limit window resets (at least 1)."""
    limiter = current_app.extensions.get("checkout_limiter")
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return 1
    return max(1, math.ceil(current.reset_at - time.time()))


def _is_unavailable(exc: BaseException) -> bool:
    """True for a dependency outage: Redis or the database cannot be reached, or every
    pooled database connection stayed busy for the pool's whole wait."""
    return isinstance(
        exc,
        redis.ConnectionError
        | redis.TimeoutError
        | peewee.OperationalError
        | MaxConnectionsExceeded,
    )


def register_error_handlers(app: Flask) -> None:
    """Install the handlers: domain errors, HTTP errors, outages, and the rest (500)."""

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            log.error("service_error", code=exc.code, status=exc.status)
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException) -> Response:
        response = error_response(_http_error(exc))
        if isinstance(exc, werkzeug.exceptions.MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if _is_unavailable(exc):
            log.warning("dependency_unavailable", error_class=type(exc).__name__)
            return error_response(ServiceUnavailable("A dependency is unavailable; retry."))
        # The traceback goes to the log only; the client sees a generic message.
        log.exception("unhandled_exception", error_class=type(exc).__name__)
        return error_response(ServiceError("Internal server error."))
