"""The request pipeline every ``/v1`` call goes through, and what endpoints are handed.

Order per call, as Stripe behaves: CORS preflight → API key → rate limit → parameters →
idempotency claim (replay or 400/409) → injected latency / 500 → the endpoint, under the
store lock → keep the result for the key → headers (``Request-Id``, CORS, replay flag).

The blueprints (``api``, ``control``) import from here, never from :mod:`.app`, so the
factory can import them at its top without a cycle.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Response, current_app, request

from . import objects
from .emulator import Emulator
from .errors import (
    StripeError,
    api_error,
    invalid_api_key,
    no_api_key,
    rate_limited,
    secret_key_required,
)
from .forms import Params, decode, get_list
from .store import RequestContext, current_request

log = logging.getLogger(__name__)


# Call.base_url per (scheme, Host header, server name, server port).
_HOST_URLS: dict[tuple[str, str, str, str], str] = {}


@dataclass
class Call:
    """One authenticated API call as an endpoint sees it."""

    params: Params
    api_key: str
    publishable: bool
    emulator: Emulator

    @property
    def base_url(self) -> str:
        """The emulator's own URL as the client reached it, e.g. ``http://127.0.0.1:12111/``.

        ``request.host_url`` depends only on the scheme, the Host header and the server
        address, and Werkzeug's URL/IRI work to build it is a visible share of a request's
        CPU; so it is computed once per distinct combination.
        """
        environ = request.environ
        key = (
            environ.get("wsgi.url_scheme", ""),
            environ.get("HTTP_HOST", ""),
            environ.get("SERVER_NAME", ""),
            environ.get("SERVER_PORT", ""),
        )
        url = _HOST_URLS.get(key)
        if url is None:
            if len(_HOST_URLS) >= 64:
                _HOST_URLS.clear()
            url = _HOST_URLS[key] = request.host_url
        return url

    @property
    def expand(self) -> list[str]:
        """The ``expand[]`` paths."""
        return get_list(self.params, "expand")


Handler = Callable[..., str]


def emulator() -> Emulator:
    """The emulator bound to the current app."""
    emu: Emulator = current_app.extensions["stripe_emulator"]
    return emu


def api(*, publishable: bool = False) -> Callable[[Handler], Callable[..., Response]]:
    """Wrap a ``/v1`` endpoint in Stripe's pipeline; ``publishable`` admits pk keys."""

    def decorate(fn: Handler) -> Callable[..., Response]:
        @functools.wraps(fn)
        def view(**kwargs: Any) -> Response:
            return _run(fn, kwargs, publishable)

        return view

    return decorate


def _run(fn: Handler, kwargs: dict[str, Any], publishable_ok: bool) -> Response:
    emu = emulator()
    request_id = objects.new_id("req", 14)
    headers = {"Request-Id": request_id}
    environ = request.environ  # direct lookups: a missing Headers key costs an exception
    version = environ.get("HTTP_STRIPE_VERSION")
    if version:
        headers["Stripe-Version"] = version
    pairs = list(request.args.items(multi=True)) if environ.get("QUERY_STRING") else []
    if request.method == "POST":
        pairs += _form_pairs(environ)
    try:
        params = decode(pairs)
        api_key, publishable = _authenticate(params, publishable_ok)
        if emu.chaos.over_rate_limit():
            raise rate_limited()
    except StripeError as exc:
        return _respond(exc.status, json.dumps(exc.body()), {**headers, **exc.headers})
    key = environ.get("HTTP_IDEMPOTENCY_KEY") if request.method == "POST" else None
    if key:
        headers["Idempotency-Key"] = key
        try:
            replay = emu.idempotency.claim(api_key, key, request.method, request.path, params)
        except StripeError as exc:
            return _respond(exc.status, json.dumps(exc.body()), {**headers, **exc.headers})
        if replay is not None:
            replayed = {"Idempotent-Replayed": "true", "Original-Request": replay.request_id}
            return _respond(replay.status, replay.body, {**headers, **replayed})
    status, body, stored, extra = _execute(
        emu, fn, kwargs, params, api_key, publishable, key, request_id
    )
    if key:
        emu.idempotency.finish(api_key, key, status, body, store=stored, request_id=request_id)
    return _respond(status, body, {**headers, **extra})


def _execute(
    emu: Emulator,
    fn: Handler,
    kwargs: dict[str, Any],
    params: Params,
    api_key: str,
    publishable: bool,
    key: str | None,
    request_id: str,
) -> tuple[int, str, bool, dict[str, str]]:
    chaos = emu.chaos.config
    if chaos.latency_ms:
        time.sleep(chaos.latency_ms / 1000)
    if emu.chaos.chance(chaos.failure_rate):
        failure = api_error()
        return failure.status, json.dumps(failure.body()), failure.stored, failure.headers
    call = Call(params, api_key, publishable, emu)
    token = current_request.set(RequestContext(request_id, key))
    try:
        with emu.store.lock:
            try:
                return 200, fn(call, **kwargs), True, {}
            except StripeError as exc:
                # Rendered under the lock: the body shows the state of this call.
                return exc.status, json.dumps(exc.body()), exc.stored, exc.headers
    except Exception:
        log.exception("stripe emulator: endpoint failed")
        crash = StripeError(500, "api_error", "An unknown error occurred in the emulator.")
        return crash.status, json.dumps(crash.body()), False, {}
    finally:
        current_request.reset(token)


def _form_pairs(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The form fields of a POST, in order.

    A urlencoded body (what the SDK and Stripe.js send) is parsed as Werkzeug's form
    parser would (same ``parse_qsl`` call; undecodable bytes give no fields), skipping its
    stream and parser set-up; any other content type goes through ``request.form``.
    """
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.partition(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return list(request.form.items(multi=True))
    try:
        text = request.get_data().decode()
    except ValueError:
        return []
    return parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")


def _authenticate(params: Params, publishable_ok: bool) -> tuple[str, bool]:
    """The API key and whether it is publishable; raises Stripe's 401 bodies."""
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    key = ""
    if header.startswith("Bearer "):
        key = header[7:].strip()
    elif header.startswith("Basic ") and request.authorization:
        key = request.authorization.username or ""
    elif isinstance(params.get("key"), str):
        key = params["key"]  # Stripe.js sends its publishable key as a form field.
    if not key:
        raise no_api_key()
    if key.startswith(("sk_test_", "rk_test_")) and len(key) > 8:
        return key, False
    if key.startswith("pk_test_") and len(key) > 8:
        if not publishable_ok:
            raise secret_key_required()
        return key, True
    raise invalid_api_key(key)


def _respond(status: int, body: str, headers: dict[str, str]) -> Response:
    return Response(body, status=status, headers=headers, mimetype="application/json")


def json_error(exc: StripeError) -> Response:
    """A StripeError as a response (used outside the /v1 pipeline)."""
    return _respond(exc.status, json.dumps(exc.body()), exc.headers)
