"""Checkout endpoints: quote, submit (payment-intent), confirm (a retry with a new
ConfirmationToken) and the status long-poll."""

from __future__ import annotations

import structlog
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app.api import auth
from app.api.observability import OUT_OF_STOCK, SUBMITS
from app.api.requests import idempotency_key, json_object
from app.context import current_config, current_runtime
from app.errors import InvalidRequest, OutOfStock, ServiceError
from app.gateways.jobs import Jobs
from app.schemas.checkout import ConfirmSchema, QuoteSchema, SubmitSchema
from app.schemas.common import load
from app.services import catalog, checkout_status, confirmation, order_views, pricing
from app.services.admission import (
    Submission,
    SubmitRate,
    admit,
    caller_hash,
    count_refused,
)

blueprint = Blueprint("checkout", __name__, url_prefix="/api/checkout")
log = structlog.get_logger("app.api.checkout")

_quote_schema = QuoteSchema()
_submit_schema = SubmitSchema()
_confirm_schema = ConfirmSchema()


@blueprint.post("/quote")
def quote() -> Response:
    """Price a cart server-side: lines, subtotal, shipping, tax, total."""
    data = load(_quote_schema, json_object())
    items = [(line["sku"], line["quantity"]) for line in data["items"]]
    runtime = current_runtime()
    products = catalog.product_prices(sku for sku, _ in items)
    result = pricing.price_cart(
        items, data["shipping_address"], runtime.config.store_currency, products
    )
    return jsonify(result.to_dict())


@blueprint.post("/payment-intent")
def submit() -> tuple[Response, int, dict[str, str]]:
    """Validate, admit (rate limit + idempotency claim + hold + read model in one Redis
    call) and enqueue (a second): 202."""
    runtime, config = current_runtime(), current_config()
    client = request.remote_addr or "unknown"
    rate = SubmitRate.of(config, client)
    try:
        body = json_object()
        key = idempotency_key(body)
        data = load(_submit_schema, body)
    except (ServiceError, HTTPException):
        count_refused(runtime.redis, rate)  # refused input counts against the limit too
        raise
    who = auth.identity()
    user_id = who.user_id if who else None
    submission = Submission.create(
        _submit_schema.dump(data),
        idempotency_key=key,
        hold_ttl=config.hold_ttl_seconds,
        user_id=user_id,
        capture_method=config.capture_method,
    )
    try:
        admission = admit(
            runtime.redis,
            submission,
            hold_ttl=config.hold_ttl_seconds,
            key_ttl=config.idempotency_ttl_seconds,
            rate=rate,
            caller=caller_hash(client, user_id),
        )
    except OutOfStock:
        SUBMITS.labels("out_of_stock").inc()
        OUT_OF_STOCK.inc()
        raise
    headers = {"Location": admission.response.get("statusUrl", ""), **admission.rate.headers()}
    if admission.replayed:
        SUBMITS.labels("replayed").inc()
        headers["Idempotent-Replayed"] = "true"
    else:
        SUBMITS.labels("admitted").inc()
        _enqueue_create_intent(runtime.jobs, submission.order_id)
    return jsonify(admission.response), 202, headers


@blueprint.post("/<order_id>/confirm")
def confirm(order_id: str) -> tuple[Response, int, dict[str, str]]:
    """A new payment attempt with a ConfirmationToken on the same order, intent and hold:
    admit (Redis only) and enqueue: 202."""
    body = json_object()
    key = idempotency_key(body)
    data = load(_confirm_schema, body)
    runtime = current_runtime()
    located = order_views.locate_checkout(runtime.redis, order_id)
    auth.require_order_access(located.token_hash, located.user_id)
    result = confirmation.request_confirmation(
        runtime.redis,
        located,
        idempotency_key=key,
        confirmation_token=data["confirmation_token_id"],
    )
    headers = {"Location": result.response["statusUrl"]}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        runtime.jobs.confirm_payment(order_id, data["confirmation_token_id"])
    return jsonify(result.response), 202, headers


@blueprint.get("/<order_id>")
def status(order_id: str) -> Response:
    """The checkout status; ``?wait=0..25`` long-polls for a version after ``?since``."""
    wait, since = _wait_params()
    runtime = current_runtime()
    located = order_views.locate_checkout(runtime.redis, order_id)
    credential = auth.require_order_access(located.token_hash, located.user_id)
    caps = checkout_status.WaiterCaps.of(current_config())
    waiting = order_views.Waiting(runtime.feed, caps, credential, request.remote_addr or "unknown")
    body = order_views.checkout_body(
        runtime.redis, located, wait=wait, since=since, waiting=waiting
    )
    return jsonify(body)


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
    if not raw.isdigit() or not low <= int(raw) <= high:
        errors[name] = [f"Must be an integer from {low} to {high}."]
        return default
    return int(raw)


def _enqueue_create_intent(jobs: Jobs, order_id: str) -> None:
    """Queue the worker; if the broker is down the clock's pending sweep repairs it."""
    try:
        jobs.create_payment_intent(order_id)
    except Exception as exc:  # the submission is durable in Redis ({shop}:pending)
        log.warning("enqueue_failed", order_id=order_id, error_class=type(exc).__name__)
