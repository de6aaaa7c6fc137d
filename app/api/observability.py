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
import re
import sys
import time
import uuid
from typing import Any, TextIO

import structlog
from flask import Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

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

log = structlog.get_logger("app.http")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: all processes' files in multiprocess mode, else this one's."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry


def configure_logging(
    testing: bool = False, stream: TextIO | None = None, *, cache: bool | None = None
) -> None:
    """JSON logs on stdout (or ``stream``).

    In production structlog writes its lines itself, one write each: a request log line
    through the standard library's logging (a LogRecord, handler locks, a formatter) cost
    more than the rest of a ``/healthz`` request. Tests keep the standard library's path,
    so pytest's caplog sees every line (the I6 tests assert what is never logged), and
    do not cache loggers (``cache``, default: not ``testing``), so a test may reconfigure.
    """
    out = stream or sys.stdout
    logging.basicConfig(format="%(message)s", stream=out, level=logging.INFO)
    factory: Any = (
        structlog.stdlib.LoggerFactory() if testing else structlog.WriteLoggerFactory(file=out)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=factory,
        # Tests filter nothing here, so they can assert what is (never) logged at any
        # level (I6); the stdlib level (pytest's caplog) decides what they capture.
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if testing else logging.INFO
        ),
        cache_logger_on_first_use=not testing if cache is None else cache,
    )


def _request_id() -> str:
    """The caller's ``X-Request-Id`` when it is a plain token; else a fresh one.

    It is logged on every line, so a card number (I6) or anything odd is replaced.
    """
    given = request.headers.get("X-Request-Id", "")
    if _REQUEST_ID.fullmatch(given) and not header_looks_like_pan(given):
        return given
    return uuid.uuid4().hex


def install_request_hooks(app: Flask) -> None:
    """Time every request; log and count it when it ends."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=_request_id())

    @app.after_request
    def _finish(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        LATENCY.labels(request.method, endpoint).observe(elapsed)
        log.info(
            "request",
            method=request.method,
            route=endpoint,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 2),
        )
        return response
