"""Admin endpoints (admin JWT): product upsert, catalog sync and stock adjustments, order
refunds /
fulfilment / cancel, the order listing, the webhook inbox (list, replay) and the shop
webhook deliveries (list, resend).

Views stay thin: parse → schema.load → one service call → enqueue → JSON. Everything
that talks to Stripe runs in an actor (tasks.orders, tasks.webhooks).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api.auth import Identity, require_admin
from app.api.requests import idempotency_key, json_object
from app.context import current_runtime
from app.errors import InvalidRequest
from app.schemas.admin import (
    CaptureRequestSchema,
    EmptySchema,
    FulfillmentSchema,
    OrderListQuerySchema,
    RefundRequestSchema,
    ShopDeliveryListQuerySchema,
    WebhookEventListQuerySchema,
)
from app.schemas.card_data import ADMIN_NOT_CARD_DATA
from app.schemas.checkout import SKU_PATTERN
from app.schemas.common import load
from app.schemas.products import (
    ProductSyncSchema,
    ProductUpsertSchema,
    StockAdjustmentRequestSchema,
)
from app.schemas.promotions import CODE_ERROR, CODE_PATTERN, PromotionUpsertSchema
from app.services import admin, catalog, promotions, shop_webhooks, stock_adjustments

blueprint = Blueprint("admin", __name__, url_prefix="/api/admin")
# The catalog sync's body limit: 1,000 products with long descriptions.
SYNC_MAX_BYTES = 8 * 1024 * 1024
_upsert_schema = ProductUpsertSchema()
_sync_schema = ProductSyncSchema()
_empty_schema = EmptySchema()
_refund_schema = RefundRequestSchema()
_fulfillment_schema = FulfillmentSchema()
_capture_schema = CaptureRequestSchema()
_orders_query = OrderListQuerySchema()
_events_query = WebhookEventListQuerySchema()
_deliveries_query = ShopDeliveryListQuerySchema()
_promotion_schema = PromotionUpsertSchema()
_adjustment_schema = StockAdjustmentRequestSchema()


@blueprint.put("/products/<sku>")
def upsert_product(sku: str) -> Response:
    """Create or update a product; database and Redis counters move together."""
    require_admin()
    if not re.match(SKU_PATTERN, sku):
        raise InvalidRequest("Invalid SKU.", fields={"sku": ["Invalid SKU format."]})
    data = load(_upsert_schema, json_object())
    runtime = current_runtime()
    product = catalog.upsert_product(
        runtime.redis,
        catalog.product_input(sku, data),
        store_currency=runtime.config.store_currency,
    )
    return jsonify(product)


@blueprint.post("/products/<sku>/stock-adjustments")
def stock_adjustment(sku: str) -> tuple[Response, int, dict[str, str]]:
    """Add or remove units with a reason (idempotent per key): database and Redis
    together; 409 ``insufficient_stock`` below what is held."""
    who = require_admin()
    key = idempotency_key()
    data = load(_adjustment_schema, json_object())
    result = stock_adjustments.adjust_stock(
        current_runtime().redis,
        stock_adjustments.AdjustmentRequest(sku, data["delta"], data["reason"], data["note"]),
        actor=_actor(who),
        idempotency_key=key,
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return jsonify(result.adjustment), 200, headers


@blueprint.put("/promotions/<code>")
def upsert_promotion(code: str) -> Response:
    """Create or replace a promotion code's terms (database and Redis together)."""
    require_admin()
    if not re.match(CODE_PATTERN, code):
        raise InvalidRequest("Invalid promotion code.", fields={"code": [CODE_ERROR]})
    data = load(_promotion_schema, json_object())
    runtime = current_runtime()
    promotions.require_currency(data, runtime.config.store_currency)
    amount_off = data.get("amount_off")
    promotion = promotions.upsert(
        runtime.redis,
        promotions.PromotionInput(
            code=promotions.normalise_code(code),
            percent_off=data.get("percent_off"),
            amount_off=None if amount_off is None else amount_off["amount"],
            currency=runtime.config.store_currency.lower(),
            min_subtotal=data.get("min_subtotal"),
            starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at"),
            max_redemptions=data.get("max_redemptions"),
            per_buyer_limit=data.get("per_buyer_limit"),
            active=data["active"],
        ),
    )
    return jsonify(promotion)


@blueprint.get("/promotions")
def list_promotions() -> Response:
    """Every promotion code with its redemptions used and left."""
    require_admin()
    return jsonify(promotions.listing(current_runtime().redis))


@blueprint.put("/products")
def sync_products() -> Response:
    """Catalog sync: 1-1,000 products, all or nothing, in one transaction and one script."""
    require_admin()
    # A thousand products outgrow MAX_CONTENT_LENGTH; only an admin gets the larger limit.
    request.max_content_length = SYNC_MAX_BYTES
    data = load(_sync_schema, json_object())
    runtime = current_runtime()
    items = [catalog.product_input(p["sku"], p) for p in data["products"]]
    count = catalog.sync_catalog(runtime.redis, items, store_currency=runtime.config.store_currency)
    return jsonify({"upserted": count})


@blueprint.post("/orders/<order_id>/refunds")
def refund(order_id: str) -> tuple[Response, int, dict[str, str]]:
    """Record a refund request (idempotent per key) and queue the Stripe call: 202."""
    who = require_admin()
    key = idempotency_key()
    data = load(_refund_schema, _optional_body())
    runtime = current_runtime()
    result = admin.refund_order(
        runtime.redis, order_id, idempotency_key=key, actor=_actor(who), **data
    )
    if result.submit:
        runtime.jobs.create_refund(result.response["refundId"])
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return jsonify(result.response), 202, headers


@blueprint.post("/orders/<order_id>/capture")
def capture(order_id: str) -> tuple[Response, int, dict[str, str]]:
    """Record a capture of an AUTHORIZED order (idempotent per key) and queue it: 202."""
    who = require_admin()
    key = idempotency_key()
    data = load(_capture_schema, _optional_body())
    runtime = current_runtime()
    result = admin.capture_order(
        runtime.redis, order_id, idempotency_key=key, actor=_actor(who), **data
    )
    # A replay re-queues too (the first enqueue may have been lost); the actor is idempotent.
    runtime.jobs.capture_payment(order_id, result.request_id)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return jsonify(result.response), 202, headers


@blueprint.post("/orders/<order_id>/fulfillment")
def fulfillment(order_id: str) -> tuple[Response, int]:
    """Start or complete fulfilment: 200 with the order (202 when a capture runs first)."""
    who = require_admin()
    # A carrier's tracking number may pass Luhn: it is not card data (ADMIN_NOT_CARD_DATA).
    data = load(_fulfillment_schema, json_object(not_card_data=ADMIN_NOT_CARD_DATA))
    result = admin.fulfil(
        order_id,
        data["action"],
        runtime=current_runtime(),
        carrier=data["carrier"],
        tracking_number=data["tracking_number"],
        actor=_actor(who),
    )
    if result.capture_request_id is not None:
        current_runtime().jobs.capture_payment(order_id, result.capture_request_id)
    return jsonify(result.body), result.status


@blueprint.post("/orders/<order_id>/cancel")
def cancel(order_id: str) -> tuple[Response, int]:
    """Queue the cancel of a PENDING order (intent first, then the hold — I8), or the
    void of an AUTHORIZED one: 202."""
    who = require_admin()
    load(_empty_schema, _optional_body())
    runtime = current_runtime()
    admin.check_cancelable(runtime.redis, order_id)
    runtime.jobs.cancel_order(order_id, _actor(who))
    return jsonify({"orderId": order_id, "status": "queued"}), 202


@blueprint.get("/orders")
def list_orders() -> Response:
    """A page of orders, newest first: ``{data, nextCursor}``."""
    require_admin()
    query = load(_orders_query, request.args.to_dict())
    return jsonify(admin.list_orders(**query).body())


@blueprint.get("/webhook-events")
def list_webhook_events() -> Response:
    """A page of webhook inbox rows, newest first: ``{data, nextCursor}``."""
    require_admin()
    query = load(_events_query, request.args.to_dict())
    return jsonify(admin.list_webhook_events(**query).body())


@blueprint.post("/webhook-events/<event_id>/replay")
def replay_webhook_event(event_id: str) -> tuple[Response, int]:
    """Re-enqueue a stored event; a processed one changes nothing (I3): 202."""
    require_admin()
    load(_empty_schema, _optional_body())
    admin.webhook_event_for_replay(event_id)  # 404 unless in the inbox; revives a dead row
    current_runtime().jobs.handle_stripe_event(event_id)
    return jsonify({"eventId": event_id, "status": "queued"}), 202


@blueprint.get("/shop-webhooks/deliveries")
def list_shop_deliveries() -> Response:
    """A page of shop webhook deliveries, newest first: ``{data, nextCursor}``."""
    require_admin()
    query = load(_deliveries_query, request.args.to_dict())
    return jsonify(admin.list_shop_deliveries(**query).body())


@blueprint.post("/shop-webhooks/events/<event_id>/resend")
def resend_shop_event(event_id: str) -> tuple[Response, int]:
    """Deliver a shop event again to every endpoint, in its place in their order: 202."""
    require_admin()
    load(_empty_schema, _optional_body())
    runtime = current_runtime()
    for delivery_id in shop_webhooks.resend(event_id, runtime.config.shop_webhook_endpoints):
        runtime.jobs.deliver_shop_webhook(delivery_id)
    return jsonify({"eventId": event_id, "status": "queued"}), 202


def _actor(who: Identity) -> str:
    """The audit actor of an admin API action: ``admin:<sub>`` (the console's operators
    are ``operator:<email>``)."""
    return f"admin:{who.user_id or 'unknown'}"


def _optional_body() -> dict[str, Any]:
    """The JSON object body, or ``{}`` when the request has none (all fields optional)."""
    if not request.get_data(cache=True):
        return {}
    return json_object()
