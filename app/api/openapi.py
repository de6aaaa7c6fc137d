"""The OpenAPI 3 document, built with apispec from the marshmallow schemas.

One table lists every operation; the test suite checks it covers every route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from app.schemas import responses as r
from app.schemas.admin import (
    AcceptedSchema,
    CaptureAcceptedSchema,
    CaptureRequestSchema,
    EmptySchema,
    FulfillmentSchema,
    OrderPageSchema,
    RefundAcceptedSchema,
    RefundRequestSchema,
    ShopDeliveryPageSchema,
    ShopResendSchema,
    WebhookEventPageSchema,
)
from app.schemas.checkout import (
    ConfirmResponseSchema,
    ConfirmSchema,
    Country,
    LookupResponseSchema,
    QuoteSchema,
    SubmitResponseSchema,
    SubmitSchema,
)
from app.schemas.common import Text
from app.schemas.countries import ISO_3166_ALPHA2
from app.schemas.orders import TrackSchema
from app.schemas.products import (
    AdminProductSchema,
    ProductSchema,
    ProductSyncResponseSchema,
    ProductSyncSchema,
    ProductUpsertSchema,
    StockAdjustmentRequestSchema,
    StockAdjustmentSchema,
)
from app.schemas.promotions import CODE_PATTERN, PromotionSchema, PromotionUpsertSchema
from models.order import ORDER_STATES
from models.shop_webhook import SHOP_DELIVERY_STATUSES
from models.webhook_event import WEBHOOK_STATUSES

# The largest ``?since`` the status endpoint accepts (app/api/checkout.py).
MAX_SINCE = 2**31

ERRORS = {
    400: "validation_failed (unknown fields too; NUL in any parameter or string), "
    "malformed_json or card_data_rejected",
    401: "unauthorized",
    502: "payment_provider_error (Stripe refused the call)",
    403: "forbidden",
    404: "not_found",
    409: "out_of_stock, invalid_state, insufficient_stock or promotion_unavailable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "idempotency_key_reused",
    429: "rate_limited (see Retry-After)",
    503: "service_unavailable (tax_unavailable: Stripe Tax could not be reached)",
}
# Paths whose bearer is not a buyer's JWT (METRICS_TOKEN): no "expired JWT" 401 for them.
NON_JWT_PATHS = frozenset({"/metrics"})
# gunicorn refuses a request line over limit_request_line (4,094 bytes) before the app.
URI_TOO_LONG = {
    "description": "URI too long (uri_too_long): answered by the WSGI server before the app, "
    "in the same error body (gunicorn.conf.py)",
    "content": {"application/json": {"schema": "Error"}},
}
ORDER_ACCESS: list[dict[str, Any]] = [
    {"name": "X-Checkout-Token", "in": "header", "schema": {"type": "string"}},
    {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}},
]

ADMIN_ORDER: list[dict[str, Any]] = [
    {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}},
]
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "schema": {"type": "string", "minLength": 8, "maxLength": 255},
}  # fmt: skip


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


PAGE_QUERY = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
           "Page size."),
    _query("cursor", {"type": "string"}, "The previous page's nextCursor (opaque)."),
]  # fmt: skip


def _query_int(name: str, maximum: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    if maximum is not None:
        schema["maximum"] = maximum
    return {"name": name, "in": "query", "schema": schema}


@dataclass(frozen=True)
class Operation:
    """One documented operation."""

    path: str
    method: str
    summary: str
    ok: int = 200
    response: Any = None
    request: Any = None
    errors: tuple[int, ...] = (503,)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    content_type: str = "application/json"
    tag: str = "checkout"
    request_required: bool = True


SKU_PATH = [{"name": "sku", "in": "path", "required": True, "schema": {"type": "string"}}]
LOOKUP_QUERY = [
    {
        **_query(
            "payment_intent",
            {"type": "string", "pattern": "^pi_[A-Za-z0-9_]+$"},
            "The PaymentIntent id Stripe appended to the return_url.",
        ),
        "required": True,
    },
    {
        **_query(
            "payment_intent_client_secret",
            {"type": "string", "pattern": "^pi_[A-Za-z0-9_]+_secret_[A-Za-z0-9]+$"},
            "Its client secret (Stripe appended it too).",
        ),
        "required": True,
    },
    _query(
        "redirect_status",
        {"type": "string", "maxLength": 32},
        "Stripe's hint (succeeded, processing, failed); accepted, not trusted.",
    ),
]

OPERATIONS = (
    Operation("/api/products", "get",
              "The active catalog, sold-out products included (one plain list).",
              response=r.fields.List(r.fields.Nested(ProductSchema)), tag="catalog",
              errors=(400, 503),
              parameters=[
                  _query("category", {"type": "string", "maxLength": 100},
                         "Only this category (case-insensitive)."),
                  _query("q", {"type": "string", "maxLength": 200},
                         "Only names containing this (case-insensitive)."),
              ]),
    Operation("/api/products/{sku}", "get", "One active product.", response=ProductSchema,
              errors=(400, 404, 503), tag="catalog", parameters=SKU_PATH),
    Operation("/api/checkout/quote", "post",
              "Price a cart server-side; each line's available units and whether the cart "
              "is purchasable (stock refuses nothing here).",
              response=r.QuoteResponseSchema, request=QuoteSchema,
              errors=(400, 413, 415, 429, 503)),
    Operation("/api/checkout/lookup", "get",
              "Back from a redirect: the order and its checkout token from Stripe's "
              "return_url parameters (rate limited; 404 unless the secret is the intent's).",
              response=LookupResponseSchema, errors=(400, 404, 429, 503),
              parameters=LOOKUP_QUERY),
    Operation("/api/checkout/payment-intent", "post",
              "Submit: hold the stock and start the payment (202; replays answer the same body).",
              ok=202, response=SubmitResponseSchema, request=SubmitSchema,
              errors=(400, 409, 413, 415, 422, 429, 503),
              parameters=[{"name": "Idempotency-Key", "in": "header", "required": True,
                           "schema": {"type": "string", "minLength": 8, "maxLength": 255}}]),
    Operation("/api/checkout/{orderId}/confirm", "post",
              "A new payment attempt with a ConfirmationToken on the same order, intent and "
              "hold (after a decline); 409 when the order is not PENDING, already paying, or "
              "another attempt is in flight; 429 beyond the per-IP or per-order limit.",
              ok=202, response=ConfirmResponseSchema, request=ConfirmSchema,
              errors=(400, 404, 409, 413, 415, 422, 429, 503),
              parameters=[*ORDER_ACCESS, IDEMPOTENCY_KEY]),
    Operation("/api/checkout/{orderId}", "get",
              "Checkout status; ?wait=0..25 long-polls for a version newer than ?since.",
              response=r.CheckoutStatusSchema, errors=(400, 404, 503),
              parameters=[*ORDER_ACCESS, _query_int("wait", 25),
                          _query_int("since", MAX_SINCE)]),
    Operation("/api/orders/{orderId}", "get", "The order with its audit events (oldest first).",
              response=r.OrderSchema, errors=(400, 404, 503), parameters=ORDER_ACCESS,
              tag="orders"),
    Operation("/api/orders/track", "post", "Public tracking by order number and e-mail.",
              response=r.TrackResponseSchema, request=TrackSchema, errors=(400, 404, 415, 503),
              tag="orders"),
    Operation("/api/me/payment-methods", "get",
              "The signed-in buyer's saved cards (buyer JWT), newest first.",
              response=r.fields.List(r.fields.Nested(r.SavedCardSchema)),
              errors=(400, 401, 502, 503), tag="me"),
    Operation("/api/me/payment-methods/{paymentMethodId}", "delete",
              "Delete (detach at Stripe) one of the buyer's saved cards: 204; 404 when it "
              "is not theirs.", ok=204, errors=(401, 404, 502, 503), tag="me",
              parameters=[{"name": "paymentMethodId", "in": "path", "required": True,
                           "schema": {"type": "string"}}]),
    Operation("/api/me/orders", "get",
              "The signed-in buyer's orders (buyer JWT), newest first, one keyset page.",
              response=r.MyOrderPageSchema, errors=(400, 401, 503), tag="me",
              parameters=PAGE_QUERY),
    Operation("/api/webhooks/stripe", "post", "Stripe webhook (signed raw body).",
              response=r.WebhookAckSchema, errors=(400, 413, 503), tag="webhooks",
              parameters=[{"name": "Stripe-Signature", "in": "header", "required": True,
                           "schema": {"type": "string"}}]),
    Operation("/api/admin/products/{sku}", "put", "Create or update a product (admin JWT).",
              response=AdminProductSchema, request=ProductUpsertSchema,
              errors=(400, 401, 403, 409, 413, 415, 503), tag="admin", parameters=SKU_PATH),
    Operation("/api/admin/products/{sku}/stock-adjustments", "post",
              "Add or remove units with a reason (admin JWT), database and Redis together, "
              "once per Idempotency-Key (a replay answers the first, Idempotent-Replayed); "
              "409 insufficient_stock when fewer units are free (held ones stay held).",
              response=StockAdjustmentSchema, request=StockAdjustmentRequestSchema,
              errors=(400, 401, 403, 404, 409, 413, 415, 422, 503), tag="admin",
              parameters=[*SKU_PATH, IDEMPOTENCY_KEY]),
    Operation("/api/admin/promotions/{code}", "put",
              "Create or replace a promotion code's terms (admin JWT); its redemptions stay.",
              response=PromotionSchema, request=PromotionUpsertSchema,
              errors=(400, 401, 403, 413, 415, 503), tag="admin",
              parameters=[{"name": "code", "in": "path", "required": True,
                           "schema": {"type": "string", "pattern": CODE_PATTERN}}]),
    Operation("/api/admin/promotions", "get",
              "Every promotion code with its redemptions used and left (admin JWT).",
              response=r.fields.List(r.fields.Nested(PromotionSchema)),
              errors=(401, 403, 503), tag="admin"),
    Operation("/api/admin/products", "put",
              "Catalog sync (admin JWT): 1-1,000 products, all or nothing, idempotent; "
              "409 when a product's stock would drop below what is held or sold.",
              response=ProductSyncResponseSchema, request=ProductSyncSchema,
              errors=(400, 401, 403, 409, 413, 415, 503), tag="admin"),
    Operation("/api/admin/orders/{orderId}/refunds", "post",
              "Request a refund (admin JWT); a worker calls Stripe, webhooks confirm (202).",
              ok=202, response=RefundAcceptedSchema, request=RefundRequestSchema,
              errors=(400, 401, 403, 404, 409, 413, 415, 422, 503), tag="admin",
              parameters=[*ADMIN_ORDER, IDEMPOTENCY_KEY]),
    Operation("/api/admin/orders/{orderId}/fulfillment", "post",
              "Start or complete fulfilment (admin JWT); answers the order (202 when an "
              "AUTHORIZED order's capture runs first, then PAID and FULFILLING).",
              response=r.OrderSchema, request=FulfillmentSchema,
              errors=(400, 401, 403, 404, 409, 413, 415, 503), tag="admin",
              parameters=ADMIN_ORDER),
    Operation("/api/admin/orders/{orderId}/capture", "post",
              "Capture an AUTHORIZED order (admin JWT): all or part of the authorised amount "
              "(the rest is released), optional restock lines (202).",
              ok=202, response=CaptureAcceptedSchema, request=CaptureRequestSchema,
              errors=(400, 401, 403, 404, 409, 413, 415, 422, 503), tag="admin",
              parameters=[*ADMIN_ORDER, IDEMPOTENCY_KEY]),
    Operation("/api/admin/orders/{orderId}/cancel", "post",
              "Cancel a PENDING order (intent first, then the hold) or void an AUTHORIZED "
              "one's authorisation and release its stock (admin JWT, 202).",
              ok=202, response=AcceptedSchema, request=EmptySchema, request_required=False,
              errors=(400, 401, 403, 404, 409, 503), tag="admin", parameters=ADMIN_ORDER),
    Operation("/api/admin/orders", "get", "Orders, newest first, one page (admin JWT).",
              response=OrderPageSchema, errors=(400, 401, 403, 503), tag="admin",
              parameters=[_query("state", {"type": "string", "enum": list(ORDER_STATES)},
                                 "Only orders in this state."), *PAGE_QUERY]),
    Operation("/api/admin/webhook-events", "get",
              "Webhook inbox rows, newest first, one page (admin JWT).",
              response=WebhookEventPageSchema, errors=(400, 401, 403, 503), tag="admin",
              parameters=[_query("status", {"type": "string", "enum": list(WEBHOOK_STATUSES)},
                                 "Only rows with this status."), *PAGE_QUERY]),
    Operation("/api/admin/webhook-events/{eventId}/replay", "post",
              "Re-enqueue a stored event; a processed one changes nothing (202).",
              ok=202, response=AcceptedSchema, request=EmptySchema, request_required=False,
              errors=(400, 401, 403, 404, 503), tag="admin",
              parameters=[{"name": "eventId", "in": "path", "required": True,
                           "schema": {"type": "string"}}]),
    Operation("/api/admin/shop-webhooks/deliveries", "get",
              "Shop webhook deliveries (one per event and endpoint), newest first, one page "
              "(admin JWT). The contract of the events is in docs/integration.md.",
              response=ShopDeliveryPageSchema, errors=(400, 401, 403, 503), tag="admin",
              parameters=[_query("status", {"type": "string",
                                            "enum": list(SHOP_DELIVERY_STATUSES)},
                                 "Only deliveries with this status."), *PAGE_QUERY]),
    Operation("/api/admin/shop-webhooks/events/{eventId}/resend", "post",
              "Deliver a shop event (evt_...) again to every endpoint, in its place in "
              "each endpoint's order (202).",
              ok=202, response=ShopResendSchema, request=EmptySchema, request_required=False,
              errors=(400, 401, 403, 404, 503), tag="admin",
              parameters=[{"name": "eventId", "in": "path", "required": True,
                           "schema": {"type": "string"}}]),
    Operation("/healthz", "get", "Liveness.", response=r.HealthSchema, errors=(), tag="ops"),
    Operation("/readyz", "get", "Readiness: database and Redis.", response=r.HealthSchema,
              tag="ops"),
    Operation("/metrics", "get", "Prometheus metrics.", content_type="text/plain", errors=(),
              tag="ops"),
    Operation("/openapi.json", "get", "This document.", errors=(), tag="ops"),
    Operation("/docs", "get", "This document as a browsable page.", content_type="text/html",
              errors=(), tag="ops"),
)  # fmt: skip


def _response(op: Operation) -> dict[str, Any]:
    if op.ok == 204:
        return {"description": "No content"}
    if op.response is None:
        kind = "object" if op.content_type == "application/json" else "string"
        return {"description": "OK", "content": {op.content_type: {"schema": {"type": kind}}}}
    schema = op.response
    if isinstance(schema, r.fields.List) and isinstance(schema.inner, r.fields.Nested):
        plugin_schema: Any = {"type": "array", "items": schema.inner.nested}
    else:
        plugin_schema = schema
    return {"description": "OK", "content": {"application/json": {"schema": plugin_schema}}}


def build_spec(version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document as a dict."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Checkout service",
        version=version,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "Carts, atomic stock holds, Stripe payments, signed webhooks. "
            "Amounts are integers in minor units. A field (body or query) that a schema "
            "does not know is refused: 400 validation_failed on that field. A path no route "
            "matches is 404 not_found whatever the method; a wrong method on a known path "
            "is 405 method_not_allowed with an Allow header.",
        },
    )
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(_exact_strings)
    spec.components.schema("Error", schema=r.ErrorSchema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for op in OPERATIONS:
        responses: dict[Any, Any] = {op.ok: _response(op)}
        for status in op.errors:
            responses[status] = {
                "description": ERRORS[status],
                "content": {"application/json": {"schema": "Error"}},
            }
        if 401 not in responses and op.path not in NON_JWT_PATHS:
            # A JWT that is sent but expired or invalid is refused everywhere (auth.py).
            responses[401] = {
                "description": "unauthorized: an Authorization / x-auth-token JWT was sent "
                "and is expired or invalid (sending none is a guest)",
                "content": {"application/json": {"schema": "Error"}},
            }
        if any(param["in"] in ("path", "query") for param in op.parameters):
            responses[414] = URI_TOO_LONG
        operation: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}".replace(
                "{", ""
            ).replace("}", ""),
            "responses": responses,
        }
        if op.parameters:
            operation["parameters"] = op.parameters
        if op.request is not None:
            operation["requestBody"] = {
                "required": op.request_required,
                "content": {"application/json": {"schema": op.request}},
            }
        if op.tag in ("admin", "me"):
            operation["security"] = [{"bearer": []}]
        spec.path(path=op.path, operations={op.method: operation})
    return _nullable_refs(spec.to_dict())


def _exact_strings(_converter: Any, field: Any, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """What the server's string fields refuse, said in the document too."""
    extra: dict[str, Any] = {}
    if isinstance(field, Text) and "minLength" not in ret:
        extra["minLength"] = 1  # blank is refused (trimmed first)
    if isinstance(field, Country):
        extra["enum"] = sorted(ISO_3166_ALPHA2)
    return extra


def _nullable_refs(node: Any) -> Any:
    """apispec writes an optional nested object as ``anyOf: [$ref, {object, nullable}]``,
    which admits ANY object; OpenAPI 3.0's exact form is ``allOf: [$ref], nullable``."""
    if isinstance(node, list):
        return [_nullable_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: _nullable_refs(value) for key, value in node.items()}
    options = fixed.get("anyOf")
    null = {"type": "object", "nullable": True}
    if isinstance(options, list) and len(options) == 2 and null in options:
        (ref,) = [option for option in options if option != null]
        if set(ref) == {"$ref"}:
            del fixed["anyOf"]
            fixed["allOf"] = [ref]
            fixed["nullable"] = True
    return fixed


def render(spec: dict[str, Any]) -> str:
    """The document as JSON text, keys in the order ``GET /openapi.json`` serves them."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
