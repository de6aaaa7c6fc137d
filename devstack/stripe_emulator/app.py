"""The Flask application factory: the blueprints, CORS and the error handlers.

The ``/v1`` request pipeline the endpoints run in lives in :mod:`.pipeline`.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .api import bp as api_bp
from .assets import bp as stripejs_bp
from .assets import trains as stripejs_trains_bp
from .control import bp as control_bp
from .customers_api import bp as customers_bp
from .emulator import Emulator
from .errors import StripeError, unrecognized_url
from .hosted import bp as hosted_bp
from .pipeline import json_error
from .tax_api import bp as tax_bp

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Stripe-Version, Idempotency-Key, "
    "Stripe-Account, X-Stripe-Client-User-Agent",
    "Access-Control-Expose-Headers": "Request-Id, Idempotent-Replayed, Original-Request, "
    "Idempotency-Key, Stripe-Version, Stripe-Should-Retry",
    "Access-Control-Max-Age": "600",
}


def create_app(emu: Emulator | None = None) -> Flask:
    """Build the Flask app around an emulator (a fresh one when none is given)."""
    app = Flask(__name__)
    app.extensions["stripe_emulator"] = emu or Emulator()
    app.register_blueprint(api_bp)
    app.register_blueprint(customers_bp)
    app.register_blueprint(tax_bp)
    app.register_blueprint(control_bp)
    app.register_blueprint(stripejs_bp)
    app.register_blueprint(hosted_bp)
    app.register_blueprint(stripejs_trains_bp)

    @app.before_request
    def preflight() -> Response | None:
        # Browsers preflight the Stripe.js stand-in's cross-origin calls; no key needed.
        if request.method == "OPTIONS":
            return Response(status=204)
        return None

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers.extend(CORS_HEADERS)
        return response

    @app.errorhandler(StripeError)
    def stripe_error(exc: StripeError) -> Response:
        return json_error(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code in (404, 405):
            return json_error(unrecognized_url(request.method, request.path))
        status = exc.code or 500
        return json_error(StripeError(status, "invalid_request_error", exc.description or exc.name))

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        log.exception("stripe emulator: unhandled error")
        return json_error(
            StripeError(500, "api_error", "An unknown error occurred in the emulator.")
        )

    return app
