"""The Flask application factory. Importing this package has no side effects."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from app import keys
from app.api import register_blueprints
from app.api.errors import register_error_handlers
from app.api.observability import configure_logging, install_request_hooks
from app.api.requests import BodyLimitedRequest, refuse_nul_parameters
from app.cli import register_commands
from app.config import Config, load_config
from app.context import CONFIG_EXTENSION, DATABASE_EXTENSION, RUNTIME_EXTENSION
from app.runtime import Runtime, build_runtime, install
from models.db import bind_database

# The views whose rate limit is RATELIMIT_CHECKOUT, per client IP, by flask-limiter. The
# submit counts the same limit inside its admission script (admission.SubmitRate).
RATE_LIMITED_ENDPOINTS = ("checkout.quote",)
# The return-URL lookup, limited on its own (RATELIMIT_LOOKUP): it answers a checkout token.
LOOKUP_ENDPOINT = "checkout.lookup"
# The view whose rate limit is RATELIMIT_TRACK, per client IP.
TRACK_ENDPOINT = "orders.track"


def create_app(config: Config | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app: runtime, database binding, blueprints, errors, limits, CLI.

    Without ``runtime`` this builds the real one (``wsgi.py``, the web's entry point):
    Redis, Stripe, mail, and the Dramatiq broker that views enqueue through.
    """
    if runtime is None:
        runtime = build_runtime(config or load_config())
    config = config or runtime.config
    install(runtime)

    app = Flask(__name__, static_folder=None)
    app.request_class = BodyLimitedRequest  # chunked bodies get the size limit too
    if config.trusted_proxy_hops:
        # Only the configured number of proxies may set the client address; more
        # X-Forwarded-For entries than that are the client's own claims and ignored.
        hops = config.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_content_length,
        TESTING=config.testing,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[RUNTIME_EXTENSION] = runtime
    app.extensions[CONFIG_EXTENSION] = config

    configure_logging(testing=config.testing)
    _bind_database(app, config)
    install_request_hooks(app)
    app.before_request(refuse_nul_parameters)
    register_blueprints(app)
    register_error_handlers(app)
    _install_rate_limits(app, config)
    _install_cors(app, config)
    _install_security_headers(app)
    register_commands(app)
    return app


def _bind_database(app: Flask, config: Config) -> None:
    """Bind the models to DATABASE_URL; connections open lazily and close per request."""
    database = bind_database(config.database_url)
    app.extensions[DATABASE_EXTENSION] = database

    @app.teardown_request
    def _close_database(_exc: BaseException | None) -> None:
        # peewee connects on first query (per thread); give the connection back here.
        if not database.is_closed():
            database.close()


def _install_rate_limits(app: Flask, config: Config) -> None:
    """flask-limiter on the checkout endpoints and the lookup: Redis storage in production,
    memory in tests."""
    storage = "memory://" if config.testing else config.redis_url
    limiter = Limiter(
        _client_ip,
        app=app,
        storage_uri=storage,
        enabled=config.ratelimit_enabled,
        headers_enabled=True,
        key_prefix=keys.RATELIMIT_PREFIX,
        # A Redis outage must not take checkout down with the limiter.
        swallow_errors=True,
    )
    app.extensions["checkout_limiter"] = limiter
    # Our limits are all per route, and a limited route checks them in its decorator; the
    # extension's global before_request only serves application-wide limits, which we do
    # not set, yet costs every request (/healthz included) a third of a millisecond.
    app.before_request_funcs[None] = [
        hook
        for hook in app.before_request_funcs.get(None, [])
        if getattr(hook, "__self__", None) is not limiter
    ]
    limits = dict.fromkeys(RATE_LIMITED_ENDPOINTS, config.ratelimit_checkout)
    limits[LOOKUP_ENDPOINT] = config.ratelimit_lookup
    for endpoint, limit in limits.items():
        view = app.view_functions[endpoint]
        limited: Any = limiter.limit(limit)(view)
        app.view_functions[endpoint] = limited
    # Tracking answers who ordered what: number + e-mail guesses are slowed down.
    track: Any = limiter.limit(config.ratelimit_track)(app.view_functions[TRACK_ENDPOINT])
    app.view_functions[TRACK_ENDPOINT] = track


def _client_ip() -> str:
    """The client IP the limit is counted against."""
    return request.remote_addr or "unknown"


def _install_security_headers(app: Flask) -> None:
    """``nosniff`` on every response: JSON, the OpenAPI page, metrics, errors alike."""

    @app.after_request
    def _nosniff(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def _install_cors(app: Flask, config: Config) -> None:
    """Allow the shop's frontends (FRONTEND_ORIGINS) to call the API from the browser."""
    origins = set(config.frontend_origins)
    allowed_headers = "Content-Type, Idempotency-Key, X-Checkout-Token, Authorization, x-auth-token"

    @app.after_request
    def _cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and ("*" in origins or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = allowed_headers
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, OPTIONS"
            response.headers["Access-Control-Expose-Headers"] = "Idempotent-Replayed, Retry-After"
            response.headers["Access-Control-Max-Age"] = "600"
        return response
