"""The operator's console: server-rendered pages under ``/admin`` for the shop's staff.

An HTTP edge beside ``app.web``, above the same services the admin API calls. Pages are
Jinja templates with htmx (vendored, served from here) for dialogs and live fragments;
sessions live in Redis (``session.py``); every state-changing request carries a CSRF
token; every view names the permission it needs (``roles.py``). ``docs/console.md``
says how to extend it.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from flask import Flask, Response, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError

from app.config import Config
from app.console import auth, catalog, dashboard, operators, orders, webhooks
from app.console.blueprint import bp
from app.console.session import RedisSessionInterface
from app.errors import ServiceError

__all__ = ["bp", "init_console"]
LOGIN_ENDPOINT = "console.login"
# As strict as the checkout page's, stricter: no third-party origin, no inline style.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Imported for their routes on ``bp``.
_VIEW_MODULES = (auth, dashboard, orders, webhooks, operators, catalog)


def init_console(app: Flask, config: Config) -> None:
    """Server-side sessions, CSRF, and the console's blueprint on ``app``."""
    app.session_interface = RedisSessionInterface()
    # The CSRF token is signed with a key of its own, derived from JWT_SECRET (one secret
    # fewer to provision); it lives as long as the session that holds it.
    app.config["WTF_CSRF_SECRET_KEY"] = hmac.new(
        config.jwt_secret.encode("utf-8"), b"console-csrf", hashlib.sha256
    ).digest()
    auth.csrf.init_app(app)  # checked by the console's hook only
    app.register_blueprint(bp)


@bp.app_template_global()
def can(permission: str) -> bool:
    """Templates: whether the signed-in operator may do this (offer the button or not)."""
    return auth.can(permission)


@bp.app_template_global()
def new_idempotency_key() -> str:
    """Templates: a fresh Idempotency-Key for one dialog's form (a resubmit reuses it)."""
    return f"console-{uuid.uuid4()}"


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> tuple[str, int]:
    """A state-changing request without the session's CSRF token: 403."""
    return _error_page(
        403,
        "This form has expired or did not come from the console. Reload the page and try again.",
    ), 403


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(exc: RateLimitExceeded) -> tuple[str, int, dict[str, str]]:
    """Too many sign-in posts from one address (RATELIMIT_ADMIN_LOGIN): 429, as a page."""
    message = "Too many sign-in attempts from your address. Wait a minute and try again."
    return _error_page(429, message), 429, {"Retry-After": "60"}


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    """Errors as a page (or, for htmx, a fragment) with the same status as the API's."""
    if exc.status == 401 and "HX-Request" in request.headers:
        return Response(status=401, headers={"HX-Redirect": f"{bp.url_prefix}/login"})
    return _error_page(exc.status, exc.message), exc.status


def _error_page(status: int, message: str) -> str:
    template = "console/_alert.html" if "HX-Request" in request.headers else "console/error.html"
    return render_template(template, status=status, message=message)


@bp.after_request
def _security_headers(response: Response) -> Response:
    """CSP and friends on every console response; pages are never cached."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response
