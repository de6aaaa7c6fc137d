"""Checkout endpoints: quote, submit (payment-intent) and the status long-poll."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Blueprint, Response, jsonify, request

from app.api import auth
from app.api.observability import OUT_OF_STOCK, SUBMITS
from app.api.requests import idempotency_key, json_object
from app.context import current_runtime
from app.errors import InvalidRequest, OutOfStock
from app.gateways.jobs import Jobs
from app.schemas.checkout import QuoteSchema, SubmitSchema
from app.schemas.common import load
from app.services import catalog, checkout_status, order_views, pricing
from app.services.admission import Submission, admit

blueprint = Blueprint("checkout", __name__, url_prefix="/api/checkout")
log = structlog.get_logger("app.api.checkout")

_quote_schema = QuoteSchema()
_submit_schema = SubmitSchema()


@blueprint.post("/quote")
def quote() -> Response:
    """Price a cart server-side: lines, subtotal, shipping, tax, total."""
    data = load(_quote_schema, json_object())
    return jsonify(_price(data, current_runtime().config.store_currency).to_dict())


@blueprint.post("/payment-intent")
def submit() -> tuple[Response, int, dict[str, str]]:
    """Validate, admit (idempotency claim + hold + read model) and enqueue: 202."""
    body = json_object()
    key = idempotency_key(body)
    data = load(_submit_schema, body)
    runtime = current_runtime()
    _price(data, runtime.config.store_currency)  # a total Stripe cannot take: refused now
    submission = _submission(data, key, runtime.config.hold_ttl_seconds)
    try:
        admission = admit(
            runtime.redis,
            submission,
            hold_ttl=runtime.config.hold_ttl_seconds,
            key_ttl=runtime.config.idempotency_ttl_seconds,
        )
    except OutOfStock:
        SUBMITS.labels("out_of_stock").inc()
        OUT_OF_STOCK.inc()
        raise
    headers = {"Location": admission.response.get("statusUrl", "")}
    if admission.replayed:
        SUBMITS.labels("replayed").inc()
        headers["Idempotent-Replayed"] = "true"
    else:
        SUBMITS.labels("admitted").inc()
        _enqueue_create_intent(runtime.jobs, submission.order_id)
    return jsonify(admission.response), 202, headers


@blueprint.get("/<order_id>")
def status(order_id: str) -> Response:
    """The checkout status; ``?wait=0..25`` long-polls for a version after ``?since``."""
    wait, since = _wait_params()
    redis = current_runtime().redis
    located = order_views.locate_checkout(redis, order_id)
    auth.require_order_access(located.token_hash, located.user_id)
    return jsonify(order_views.checkout_body(redis, located, wait=wait, since=since))


def _price(data: dict[str, Any], currency: str) -> pricing.Quote:
    """The cart priced from the catalog; InvalidRequest (unknown SKU, over Stripe's max)."""
    items = [(line["sku"], line["quantity"]) for line in data["items"]]
    products = catalog.product_prices(sku for sku, _ in items)
    return pricing.price_cart(items, data["shipping_address"], currency, products)


def _wait_params() -> tuple[int, int | None]:
    """``wait`` (0..25 seconds) and ``since`` (a version) from the query string."""
    fields: dict[str, list[str]] = {}
    wait = _query_int("wait", 0, 0, checkout_status.MAX_WAIT_SECONDS, fields)
    since = _query_int("since", None, 0, 2**31, fields)
    if fields:
        raise InvalidRequest("The query has invalid parameters.", fields=fields)
    return wait or 0, since


def _query_int(
    name: str, default: int | None, low: int, high: int, errors: dict[str, list[str]]
) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only, and few of them: isdigit() alone accepts "²" (int() refuses it)
    # and int() refuses more than 4,300 digits.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not low <= int(raw) <= high:
        errors[name] = [f"Must be an integer from {low} to {high}."]
        return default
    return int(raw)


def _submission(data: dict[str, Any], key: str, hold_ttl: int) -> Submission:
    """The Submission for admit(): fresh ids, the canonical camelCase body, its hash."""
    who = auth.identity()
    return Submission.create(
        _submit_schema.dump(data),
        idempotency_key=key,
        hold_ttl=hold_ttl,
        user_id=who.user_id if who else None,
    )


def _enqueue_create_intent(jobs: Jobs, order_id: str) -> None:
    """Queue the worker; if the broker is down the clock's pending sweep repairs it."""
    try:
        jobs.create_payment_intent(order_id)
    except Exception as exc:  # the submission is durable in Redis ({shop}:pending)
        log.warning("enqueue_failed", order_id=order_id, error_class=type(exc).__name__)
