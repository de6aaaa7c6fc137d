"""Checkout endpoints: quote, submit (payment-intent), confirm (a retry with a new
ConfirmationToken), the status long-poll and the return-URL lookup."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from app.api import auth
from app.api.observability import OUT_OF_STOCK, SUBMITS
from app.api.requests import idempotency_key, json_object
from app.context import current_config, current_runtime
from app.errors import InvalidRequest, OutOfStock, ServiceError
from app.gateways.jobs import Jobs
from app.gateways.rate_limit import StripeBudget
from app.schemas.checkout import (
    HOSTED,
    ConfirmSchema,
    LookupQuerySchema,
    QuoteSchema,
    SubmitSchema,
)
from app.schemas.common import compiled_loader, load, loaded_dumper
from app.services import (
    catalog,
    checkout_status,
    confirmation,
    hosted,
    order_views,
    promotions,
)
from app.services.admission import (
    Submission,
    SubmitRate,
    admit,
    caller_hash,
    count_refused,
    message_for,
)
from app.services.pricing import check_shipping_option, total_check
from app.services.pricing.stripe_tax import pricer_for

blueprint = Blueprint("checkout", __name__, url_prefix="/api/checkout")
log = structlog.get_logger("app.api.checkout")

_quote_schema = QuoteSchema()
_submit_schema = SubmitSchema()
_load_submit = compiled_loader(_submit_schema)  # the schema's fields, without its machinery
_dump_submit = loaded_dumper(_submit_schema)  # the stored body: renaming, compiled once
_lookup_query = LookupQuerySchema()
_confirm_schema = ConfirmSchema()
GUEST_CANNOT_SAVE = "Only with the buyer's JWT: a guest has no saved cards."


@blueprint.post("/quote")
def quote() -> Response:
    """Price a cart server-side: lines (with ``available``), totals, ``purchasable``."""
    data = load(_quote_schema, json_object())
    items = [(line["sku"], line["quantity"]) for line in data["items"]]
    runtime = current_runtime()
    code = data["promotion_code"]
    body = catalog.quote(
        runtime.redis,
        items,
        data["shipping_address"],
        runtime.config.store_currency,
        shipping_option_id=data["shipping_option_id"],
        promotion=None if code is None else promotions.quote_terms(runtime.redis, code),
        pricer=pricer_for(runtime),
    )
    return jsonify(body)


@blueprint.post("/payment-intent")
def submit() -> tuple[Response, int, dict[str, str]]:
    """Validate, admit (rate limit + idempotency claim + hold + read model + the worker's
    message in one Redis call; the message in a second when replicas must acknowledge, or
    on a broker that is not Redis): 202."""
    runtime, config = current_runtime(), current_config()
    client = request.remote_addr or "unknown"
    rate = SubmitRate.of(config, client)
    try:
        body = json_object()
        key = idempotency_key(body)
        data = _load_submit(body)
        who = auth.identity()
        user_id = who.user_id if who else None
        if data.get("save_payment_method") and user_id is None:
            raise InvalidRequest(
                "Saving a payment method needs a signed-in buyer.",
                fields={"savePaymentMethod": [GUEST_CANNOT_SAVE]},
            )
        option_id = data.get("shipping_option_id")
        check_shipping_option(data["shipping_address"], config.store_currency, option_id)
        if data.get("ui") == HOSTED:
            hosted.check_hosted_submit(data, config)
    except (ServiceError, HTTPException):
        count_refused(runtime.redis, rate)  # refused input counts against the limit too
        raise
    submission = Submission.create(
        _dump_submit(data),
        idempotency_key=key,
        hold_ttl=config.hold_ttl_seconds,
        user_id=user_id,
        token_secret=config.checkout_token_secrets[0],
        capture_method=config.capture_method,
    )
    replicas = config.redis_min_replicas_ack
    message = message_for(runtime.jobs, submission.order_id, replicas=replicas)
    try:
        admission = admit(
            runtime.redis,
            submission,
            hold_ttl=config.hold_ttl_seconds,
            key_ttl=config.idempotency_ttl_seconds,
            rate=rate,
            caller=caller_hash(user_id),
            # A cart Stripe could never charge is refused in the script, from the prices
            # the catalog script wrote beside the stock (no query, no extra round trip).
            total_check=total_check(
                data["shipping_address"],
                config.store_currency,
                option_id,
                pricer=pricer_for(runtime),
            ),
            replicas=replicas,
            replica_timeout_ms=config.redis_replica_ack_timeout_ms,
            message=message,
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
        if message is None:
            _enqueue_create_intent(runtime.jobs, submission.order_id)
        else:
            message.written()  # admit.lua queued it with the admission
    return _json(admission.response), 202, headers


def _json(body: dict[str, Any]) -> Response:
    """``jsonify(body)``, encoded by orjson: the same bytes (compact, keys in order, a final
    newline) in a quarter of the time, when they are ASCII; ``jsonify`` itself answers a body
    with other characters (it escapes them) or with a type orjson does not encode."""
    try:
        encoded = orjson.dumps(body)
    except TypeError:
        return jsonify(body)
    if not encoded.isascii():
        return jsonify(body)
    return current_app.response_class(encoded + b"\n", mimetype="application/json")


@blueprint.get("/lookup")
def lookup() -> Response:
    """Back from a redirect: Stripe's return-URL parameters (or the hosted page's
    ``session_id``) → the order and its token."""
    query = load(_lookup_query, request.args.to_dict())
    secrets = current_runtime().config.checkout_token_secrets
    if "session_id" in query:
        return jsonify(hosted.lookup_by_session(query["session_id"], secrets))
    return jsonify(
        order_views.lookup_by_intent(
            query["payment_intent"],
            query["payment_intent_client_secret"],
            current_runtime().config.checkout_token_secrets,
        )
    )


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
    config = current_config()
    # Only a long-poll needs the presented token's hash before access is checked.
    token = request.headers.get("X-Checkout-Token") if wait else None
    waiting = order_views.Waiting(
        runtime.feed,
        checkout_status.WaiterCaps.of(config),
        request.remote_addr or "unknown",
        checkout_status.token_hash(token) if token else None,
    )
    body = order_views.checkout_status_body(
        runtime.redis,
        order_id,
        authorize=auth.require_order_access,
        wait=wait,
        since=since,
        waiting=waiting,
        budget=StripeBudget(runtime.redis, config.stripe_budget),
    )
    return _json(body)


def _wait_params() -> tuple[int, int | None]:
    """``wait`` (0..25 seconds) and ``since`` (a version) from the query string."""
    fields: dict[str, list[str]] = {
        name: ["Unknown field."] for name in request.args if name not in ("wait", "since")
    }
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


def _enqueue_create_intent(jobs: Jobs, order_id: str) -> None:
    """Queue the worker; if the broker is down the clock's pending sweep repairs it."""
    try:
        jobs.create_payment_intent(order_id)
    except Exception as exc:  # the submission is durable in Redis ({shop}:pending)
        log.warning("enqueue_failed", order_id=order_id, error_class=type(exc).__name__)
