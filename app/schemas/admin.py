"""Schemas of the admin order endpoints: refunds, fulfilment, listings, webhook inbox."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate, validates_schema

from app.schemas.checkout import LineSchema, refuse_duplicate_skus
from app.schemas.common import BaseSchema, StrictBoolean, StrictInteger, Text
from app.schemas.responses import TotalsSchema
from models.order import ORDER_STATES
from models.shop_webhook import SHOP_DELIVERY_STATUSES
from models.webhook_event import WEBHOOK_STATUSES

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
MAX_PAGE = 100
DEFAULT_PAGE = 20


class QueryInteger(fields.Integer):
    """An integer in a query string: decimal digits only."""

    default_error_messages = {"digits": "Must be an integer."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise self.make_error("digits")
        return super()._deserialize(value, attr, data, **kwargs)


class EmptySchema(BaseSchema):
    """A body with no fields (cancel, replay): any field sent is refused, none is required."""


class RefundRequestSchema(BaseSchema):
    """``POST /api/admin/orders/<id>/refunds`` (the Idempotency-Key is a header)."""

    amount = StrictInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=99_999_999)
    )
    reason = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(REFUND_REASONS)
    )
    restock = StrictBoolean(load_default=False)


class CaptureRequestSchema(BaseSchema):
    """``POST /api/admin/orders/<id>/capture`` (the Idempotency-Key is a header).

    ``amount`` (minor units) defaults to all that is authorised; less releases the rest
    at Stripe. ``restock`` lines go back on hand once the capture succeeded.
    """

    amount = StrictInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=99_999_999)
    )
    restock = fields.List(
        fields.Nested(LineSchema), load_default=list, validate=validate.Length(max=100)
    )

    @validates_schema
    def _unique_skus(self, data: dict[str, Any], **_: Any) -> None:
        # Two lines of one SKU would each pass the "at most ordered" check.
        refuse_duplicate_skus(data.get("restock") or [], "restock")


class CaptureAcceptedSchema(BaseSchema):
    """202 body of a capture request."""

    order_id = fields.String(data_key="orderId")
    capture_id = fields.String(data_key="captureId")
    status = fields.String()


class RefundAcceptedSchema(BaseSchema):
    """202 body of a refund request."""

    refund_id = fields.String(data_key="refundId")
    status = fields.String()


class FulfillmentSchema(BaseSchema):
    """``POST /api/admin/orders/<id>/fulfillment``."""

    action = fields.String(required=True, validate=validate.OneOf(("start", "complete")))
    carrier = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    tracking_number = Text(
        load_default=None,
        allow_none=True,
        data_key="trackingNumber",
        validate=validate.Length(max=100),
    )


class PageQuerySchema(BaseSchema):
    """``?limit=1..100&cursor=`` of the admin listings."""

    limit = QueryInteger(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=512))


class OrderListQuerySchema(PageQuerySchema):
    """``GET /api/admin/orders``."""

    state = fields.String(load_default=None, validate=validate.OneOf(ORDER_STATES))


class WebhookEventListQuerySchema(PageQuerySchema):
    """``GET /api/admin/webhook-events``."""

    status = fields.String(load_default=None, validate=validate.OneOf(WEBHOOK_STATUSES))


class OrderSummarySchema(BaseSchema):
    """One order in the admin listing."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    email = fields.String()
    totals = fields.Nested(TotalsSchema)
    amount_refunded = fields.Integer(data_key="amountRefunded")
    payment_intent_id = fields.String(data_key="paymentIntentId", allow_none=True)
    payment_status = fields.String(data_key="paymentStatus")
    created_at = fields.String(data_key="createdAt")


class OrderPageSchema(BaseSchema):
    """A page of orders, newest first."""

    data = fields.List(fields.Nested(OrderSummarySchema))
    next_cursor = fields.String(data_key="nextCursor", allow_none=True)


class WebhookEventSchema(BaseSchema):
    """One webhook inbox row."""

    event_id = fields.String(data_key="eventId")
    type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(data_key="lastError", allow_none=True)
    created_at = fields.String(data_key="createdAt")
    processed_at = fields.String(data_key="processedAt", allow_none=True)


class WebhookEventPageSchema(BaseSchema):
    """A page of inbox rows, newest first."""

    data = fields.List(fields.Nested(WebhookEventSchema))
    next_cursor = fields.String(data_key="nextCursor", allow_none=True)


class AcceptedSchema(BaseSchema):
    """202 body of a queued admin action."""

    order_id = fields.String(data_key="orderId")
    event_id = fields.String(data_key="eventId")
    status = fields.String()


class ShopDeliveryListQuerySchema(PageQuerySchema):
    """``GET /api/admin/shop-webhooks/deliveries``."""

    status = fields.String(load_default=None, validate=validate.OneOf(SHOP_DELIVERY_STATUSES))


class ShopDeliverySchema(BaseSchema):
    """One shop event to one endpoint: its attempts and the last answer."""

    delivery_id = fields.Integer(data_key="deliveryId")
    event_id = fields.String(data_key="eventId")
    type = fields.String()
    order_id = fields.String(data_key="orderId")
    endpoint = fields.String()
    status = fields.String(validate=validate.OneOf(SHOP_DELIVERY_STATUSES))
    attempts = fields.Integer()
    last_status_code = fields.Integer(data_key="lastStatusCode", allow_none=True)
    last_error = fields.String(data_key="lastError", allow_none=True)
    next_attempt_at = fields.String(data_key="nextAttemptAt", allow_none=True)
    created_at = fields.String(data_key="createdAt")
    delivered_at = fields.String(data_key="deliveredAt", allow_none=True)


class ShopDeliveryPageSchema(BaseSchema):
    """A page of shop webhook deliveries, newest first."""

    data = fields.List(fields.Nested(ShopDeliverySchema))
    next_cursor = fields.String(data_key="nextCursor", allow_none=True)


class ShopResendSchema(BaseSchema):
    """202 body of a shop event resend."""

    event_id = fields.String(data_key="eventId")
    status = fields.String()
