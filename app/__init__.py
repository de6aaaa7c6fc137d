"""The Flask application factory. Importing this package has no side effects."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from app import keys
from app.api import register_blueprints
from app.api.auth import refuse_invalid_token
from app.api.errors import register_error_handlers
from app.api.observability import HeaderHook, configure_logging, install_request_hooks
from app.api.requests import BodyLimitedRequest, refuse_nul_parameters
from app.cli import register_commands
from app.config import Config, load_config
from app.console import init_console
from app.context import CONFIG_EXTENSION, DATABASE_EXTENSION, RUNTIME_EXTENSION
from app.runtime import WEB_STRIPE_WAIT_SECONDS, Runtime, build_runtime, install
from models.db import bind_database

# The views whose rate limit is RATELIMIT_CHECKOUT, per client IP, by flask-limiter. The
# submit counts the same limit inside its admission script (admission.SubmitRate).
RATE_LIMITED_ENDPOINTS = ("checkout.quote",)
# The return-URL lookup, limited on its own (RATELIMIT_LOOKUP): it answers a checkout token.
LOOKUP_ENDPOINT = "checkout.lookup"
# The view whose rate limit is RATELIMIT_TRACK, per client IP.
TRACK_ENDPOINT = "orders.track"
# A buyer's payment retry: RATELIMIT_CONFIRM per client IP, RATELIMIT_CONFIRM_ORDER per order.
CONFIRM_ENDPOINT = "checkout.confirm"
# Console sign-in: RATELIMIT_ADMIN_LOGIN per client IP, posts and page views each.
ADMIN_LOGIN_ENDPOINT = "console.login"


class CheckoutApp(Flask):
    """Flask with our request class, deciding once per hook whether it must be awaited."""

    request_class = BodyLimitedRequest  # chunked bodies get the size limit too

    def __init__(self, import_name: str, **kwargs: Any) -> None:
        super().__init__(import_name, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # Flask asks ``inspect`` whether every hook and view is a coroutine function on
        # every request (seven times for /healthz); a function's answer never changes.
        sync = self._sync.get(func)
        if sync is None:
            sync = self._sync[func] = super().ensure_sync(func)
        return sync


def create_app(config: Config | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app: runtime, database binding, blueprints, errors, limits, CLI.

    Without ``runtime`` this builds the real one (``wsgi.py``, the web's entry point):
    Redis, Stripe, mail, and the Dramatiq broker that views enqueue through.
    """
    if runtime is None:
        runtime = build_runtime(
            config or load_config(require_secrets=True), stripe_wait=WEB_STRIPE_WAIT_SECONDS
        )
    config = config or runtime.config
    install(runtime)

    app = CheckoutApp(__name__, static_folder=None)
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
    install_request_hooks(app, _response_headers(config))
    app.before_request(refuse_nul_parameters)
    app.before_request(refuse_invalid_token)
    register_blueprints(app)
    init_console(app, config)
    register_error_handlers(app)
    _install_rate_limits(app, config)
    register_commands(app)
    return app


def _bind_database(app: Flask, config: Config) -> None:
    """Bind the models to DATABASE_URL; connections open lazily and close per request."""
    database = bind_database(
        config.database_url,
        pool_size=config.database_pool_size,
        prepared_statements=config.database_prepared_statements,
    )
    app.extensions[DATABASE_EXTENSION] = database

    @app.teardown_request
    def _close_database(_exc: BaseException | None) -> None:
        # peewee connects on first query (per thread); give the connection back here.
        if not database.is_closed():
            database.close()


def _install_rate_limits(app: Flask, config: Config) -> None:
    """flask-limiter on the checkout endpoints and the lookup: Redis storage in production,
    memory in tests."""
    storage = "memory://" if config.testing else config.limiter_storage_uri
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
    endpoints = (
        *RATE_LIMITED_ENDPOINTS,
        LOOKUP_ENDPOINT,
        TRACK_ENDPOINT,
        CONFIRM_ENDPOINT,
        ADMIN_LOGIN_ENDPOINT,
    )
    _scope_limiter_hooks(app, limiter, frozenset(endpoints))
    limits = dict.fromkeys(RATE_LIMITED_ENDPOINTS, config.ratelimit_checkout)
    limits[LOOKUP_ENDPOINT] = config.ratelimit_lookup
    for endpoint, limit in limits.items():
        view = app.view_functions[endpoint]
        limited: Any = limiter.limit(limit)(view)
        app.view_functions[endpoint] = limited
    # Tracking answers who ordered what: number + e-mail guesses are slowed down.
    track: Any = limiter.limit(config.ratelimit_track)(app.view_functions[TRACK_ENDPOINT])
    app.view_functions[TRACK_ENDPOINT] = track
    # A retry queues a Stripe call on the fleet's shared budget. The per-order count takes
    # only callers who may pay the order: a stranger's 404 cannot use up a buyer's retries.
    confirm: Any = limiter.limit(config.ratelimit_confirm)(app.view_functions[CONFIRM_ENDPOINT])
    confirm = limiter.limit(
        config.ratelimit_confirm_order, key_func=_order_of_request, deduct_when=_order_answered
    )(confirm)
    app.view_functions[CONFIRM_ENDPOINT] = confirm
    # Guessing passwords from one address is slowed here (one account's lockout is apart);
    # the page's views are counted apart (per_method): each stores a session for its CSRF
    # token, and one address must not fill Redis with them.
    login: Any = limiter.limit(config.ratelimit_admin_login, per_method=True)(
        app.view_functions[ADMIN_LOGIN_ENDPOINT]
    )
    app.view_functions[ADMIN_LOGIN_ENDPOINT] = login


def _scope_limiter_hooks(app: Flask, limiter: Limiter, endpoints: frozenset[str]) -> None:
    """flask-limiter hooks itself into every request; ours need it on the limited views only.

    Our limits are all per route, checked by their decorators. The extension's global
    ``before_request`` serves only application-wide limits, which we do not set: dropped.
    Its ``after_request`` (the X-RateLimit headers, the confirm's per-order deduction) and
    ``teardown_request`` (its per-request context's reset) have nothing to do where no
    limit was checked, so they run for the ``endpoints`` with a limit only: on every
    request they cost more than the rest of the middleware, and on the other views of the
    same blueprints (the status read, the submit, which counts its limit in its own
    script) about 6 µs each with limits on.
    """

    def is_limiters(hook: Any) -> bool:
        owner = getattr(hook, "__self__", None)
        if isinstance(hook, partial) and hook.args:
            owner = hook.args[0]  # after_request is partial(Limiter.__inject_headers, limiter)
        return owner is limiter

    app.before_request_funcs[None] = [
        hook for hook in app.before_request_funcs.get(None, []) if not is_limiters(hook)
    ]
    after_hooks: list[Any] = app.after_request_funcs.get(None, [])
    teardown_hooks: list[Any] = app.teardown_request_funcs.get(None, [])
    app.after_request_funcs[None] = [hook for hook in after_hooks if not is_limiters(hook)]
    app.teardown_request_funcs[None] = [hook for hook in teardown_hooks if not is_limiters(hook)]
    limiter_after = [hook for hook in after_hooks if is_limiters(hook)]
    limiter_teardown = [hook for hook in teardown_hooks if is_limiters(hook)]

    def after_limited(response: Response) -> Response:
        if request.endpoint in endpoints:
            for hook in limiter_after:
                response = hook(response)
        return response

    def teardown_limited(exc: BaseException | None) -> None:
        if request.endpoint in endpoints:
            for hook in limiter_teardown:
                hook(exc)

    for name in {endpoint.partition(".")[0] for endpoint in endpoints}:
        if limiter_after:  # a disabled limiter hooks nothing in
            app.after_request_funcs[name].append(after_limited)
        if limiter_teardown:
            app.teardown_request_funcs[name].append(teardown_limited)


def _client_ip() -> str:
    """The client IP the limit is counted against."""
    return request.remote_addr or "unknown"


def _order_of_request() -> str:
    """The order a per-order limit is counted against (apart from any IP's count)."""
    return f"order:{(request.view_args or {}).get('order_id', '')}"


def _order_answered(response: Response) -> bool:
    """Whether the caller reached the order (not a 404 or 401 for a wrong credential)."""
    return response.status_code not in (401, 404)


def _response_headers(config: Config) -> HeaderHook:
    """What every response carries: ``nosniff`` (JSON, the OpenAPI page, metrics, errors
    alike), and CORS for the shop's frontends (FRONTEND_ORIGINS) to call the API from the
    browser. Added to the WSGI header list as it is sent (the request hooks' layer): a
    Flask hook and werkzeug's ``Headers`` cost every request more than the headers."""
    origins = set(config.frontend_origins)
    cors = {
        "Vary": "Origin",
        "Access-Control-Allow-Headers": (
            "Content-Type, Idempotency-Key, X-Checkout-Token, Authorization, x-auth-token"
        ),
        # DELETE: a buyer removes a saved card (DELETE /api/me/payment-methods/<id>).
        "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
        "Access-Control-Expose-Headers": "Idempotent-Replayed, Retry-After",
        "Access-Control-Max-Age": "600",
    }

    def add(environ: dict[str, Any], headers: list[tuple[str, str]]) -> None:
        if not any(name.lower() == "x-content-type-options" for name, _ in headers):
            headers.append(("X-Content-Type-Options", "nosniff"))
        origin = environ.get("HTTP_ORIGIN")
        if origin and ("*" in origins or origin in origins):
            _set_headers(headers, {"Access-Control-Allow-Origin": origin, **cors})

    return add


def _set_headers(headers: list[tuple[str, str]], values: dict[str, str]) -> None:
    """Set each of ``values`` in a WSGI header list, replacing any of the same name."""
    names = {name.lower() for name in values}
    headers[:] = [header for header in headers if header[0].lower() not in names]
    headers.extend(values.items())
