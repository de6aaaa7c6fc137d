"""Structured JSON request logs and Prometheus metrics for the web process.

Logs carry method, route, status and duration, never bodies or secrets.

Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py sets it for the web),
prometheus_client keeps every process's values in files there and :func:`metrics_registry`
merges them all; unset (tests, a single process), it is this process's default registry.
A Gauge must be given a ``multiprocess_mode`` (e.g. ``"livesum"``) to merge sensibly.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any, BinaryIO

import orjson
import structlog
from flask import Flask, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from structlog.typing import EventDict

from app.schemas.card_data import header_looks_like_pan

REQUESTS = Counter(
    "checkout_http_requests_total", "HTTP requests", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "checkout_http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"]
)
SUBMITS = Counter("checkout_submits_total", "Checkout submits by outcome", ["outcome"])
OUT_OF_STOCK = Counter("checkout_out_of_stock_total", "Submits refused for lack of stock")
WEBHOOK_EVENTS = Counter(
    "checkout_webhook_deliveries_total", "Stripe webhook deliveries accepted by the web", ["type"]
)
WEBHOOK_UNHANDLED = Counter(
    "checkout_webhook_unhandled_total",
    "Verified Stripe deliveries of types no handler reads, acknowledged at the edge",
    ["type"],
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The methods HTTP defines (RFC 9110, plus PATCH). Any other is named OTHER_METHOD in
# metrics and logs: a client may invent any number of methods, each a new time series
# and a log field it chose (a card number, even).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OTHER_METHOD = "other"


def metrics_registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: all processes' files in multiprocess mode, else this one's."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry


# The request id every log line of a request carries: set when the request starts (one
# ContextVar, per greenlet under gevent), read by :func:`add_request_id`.
REQUEST_ID: ContextVar[str | None] = ContextVar("checkout_request_id", default=None)


def add_request_id(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current request's id, when there is one.

    One ContextVar read: structlog's ``merge_contextvars`` scans every context variable
    of the greenlet for each line, and its ``clear``/``bind`` per request did so twice more.
    """
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


class UtcTimestamp:
    """structlog processor: ``timestamp`` in ISO 8601 UTC with microseconds and a ``Z``.

    The date and time to the second are formatted once a second; structlog's
    ``TimeStamper`` builds a timezone-aware datetime and its ISO string for every line.
    """

    def __init__(self) -> None:
        self._second = (-1, "")

    def __call__(self, _: Any, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        cached, prefix = self._second
        if cached != second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)  # one tuple: threads see one or the other
        event_dict["timestamp"] = f"{prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def configure_logging(
    testing: bool = False, stream: BinaryIO | None = None, *, cache: bool | None = None
) -> None:
    """JSON logs on stdout (or the binary ``stream``).

    In production structlog writes its lines itself, one write each, serialised by
    orjson (structlog's documented fast path): a request log line through the standard
    library's logging (a LogRecord, handler locks, a formatter) and ``json`` cost more than
    the rest of a ``/healthz`` request. Tests keep the standard library's path, so
    pytest's caplog sees every line (the I6 tests assert what is never logged), and do not
    cache loggers (``cache``, default: not ``testing``), so a test may reconfigure.
    The request line is written through the same processors and logger (:class:`LogLine`).
    """
    global _request_line
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=logging.INFO)
    factory: Any = structlog.stdlib.LoggerFactory()
    renderer = structlog.processors.JSONRenderer()
    if not testing:
        factory = structlog.BytesLoggerFactory(file=stream or sys.stdout.buffer)
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    processors: list[Any] = [
        add_request_id,
        structlog.processors.add_log_level,
        UtcTimestamp(),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        logger_factory=factory,
        # Tests filter nothing here, so they can assert what is (never) logged at any
        # level (I6); the stdlib level (pytest's caplog) decides what they capture.
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if testing else logging.INFO
        ),
        cache_logger_on_first_use=not testing if cache is None else cache,
    )
    _request_line = LogLine(processors, factory(REQUEST_LOGGER), "request")


class LogLine:
    """One info line of a fixed event, rendered by the configured processors and logger.

    What ``log.info(event, **fields)`` writes, byte for byte, without the bound logger's
    machinery per line (the lazy proxy, the level filter, the context's copy and merge):
    about half of the request line's cost. Built by :func:`configure_logging` from the
    processor list it gives structlog, so the format is defined once. Info lines pass
    every level filter :func:`configure_logging` sets.
    """

    def __init__(self, processors: list[Any], logger: Any, event: str) -> None:
        self._processors = tuple(processors)
        self._logger = logger
        self._event = event

    def __call__(self, **fields: Any) -> None:
        # structlog's order: the fields, then the event, then what processors add.
        event_dict: Any = fields
        event_dict["event"] = self._event
        logger = self._logger
        for processor in self._processors:
            event_dict = processor(logger, "info", event_dict)
        logger.info(event_dict)


REQUEST_LOGGER = "app.http"
log = structlog.get_logger(REQUEST_LOGGER)
# The request line's writer; configure_logging replaces it (and structlog's config).
_request_line: LogLine | None = None


def method_label(method: str) -> str:
    """The request's method as metrics and logs name it: a known one, else ``other``."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def _request_id(environ: dict[str, Any]) -> str:
    """The caller's ``X-Request-Id`` when it is a plain token; else a fresh one.

    It is logged on every line, so a card number (I6) or anything odd is replaced. A fresh
    one is 32 hex digits from the process's Mersenne Twister (seeded from the OS, reseeded
    in each forked worker): an id to find a request's lines by, not a secret, so no
    ``getrandom`` system call per request as ``secrets.token_hex`` made.
    """
    given = environ.get("HTTP_X_REQUEST_ID", "")
    if given and _REQUEST_ID.fullmatch(given) and not header_looks_like_pan(given):
        return str(given)
    return f"{random.getrandbits(128):032x}"


class _Metrics:
    """The request metrics' children by label values, looked up once each.

    ``labels()`` takes a lock and builds a key on every call; a web process sees a few
    dozen (method, route, status) combinations, so their children are kept here.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        count = self._counts.get((method, route, status))
        if count is None:
            count = self._counts[(method, route, status)] = REQUESTS.labels(
                method, route, str(status)
            )
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[(method, route)] = LATENCY.labels(method, route)
        count.inc()
        latency.observe(seconds)


# Where the before_request hook leaves the request's route (its rule) for the WSGI layer.
ROUTE_KEY = "checkout.route"
UNMATCHED = "unmatched"
# What completes a response's header list before it is sent: (the WSGI environ, the list).
HeaderHook = Callable[[dict[str, Any], list[tuple[str, str]]], None]


def install_request_hooks(app: Flask, response_headers: HeaderHook | None = None) -> None:
    """Time, identify, log and count every request, as a WSGI layer around the app.

    A layer rather than Flask's ``before_request``/``after_request``: it reads the method,
    the caller's request id and the client's headers from the WSGI environ and the status
    from ``start_response``, with none of the context-local lookups (``request``, ``g``)
    or hook dispatch that cost more than the work itself; one ``before_request`` hook (the
    app's first) keeps the matched route in the environ, where the layer reads it.
    ``response_headers``, given, completes every response's headers (``nosniff``, CORS)
    in the same pass.
    """
    metrics = _Metrics()
    inner = app.wsgi_app

    @app.before_request
    def _keep_route() -> None:
        current = request._get_current_object()  # type: ignore[attr-defined]  # one lookup
        rule = current.url_rule
        current.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED

    def observed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        REQUEST_ID.set(_request_id(environ))
        answered: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            answered.append(status)
            if response_headers is not None:
                response_headers(environ, headers)
            return start_response(status, headers, *exc_info)

        body = inner(environ, start)
        _finish(environ, int(answered[-1][:3]), time.perf_counter() - started, metrics)
        return body

    app.wsgi_app = observed  # type: ignore[method-assign]


def _finish(environ: dict[str, Any], status: int, elapsed: float, metrics: _Metrics) -> None:
    """Count the request and write its log line."""
    method = method_label(environ.get("REQUEST_METHOD", "GET").upper())
    route = environ.get(ROUTE_KEY, UNMATCHED)
    metrics.record(method, route, status, elapsed)
    line = _request_line or partial(log.info, "request")
    line(method=method, route=route, status=status, duration_ms=round(elapsed * 1000, 2))
