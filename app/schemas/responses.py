"""Response schemas: they only describe bodies for the OpenAPI document."""

from __future__ import annotations

from marshmallow import fields

from app.schemas.common import BaseSchema


class ErrorDetailSchema(BaseSchema):
    """The ``error`` object of every error body."""

    type = fields.String(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String())
    )
    items = fields.List(fields.Dict())


class ErrorSchema(BaseSchema):
    """Every error: ``{"error": {type, code, message, fields?, items?}}``."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class LineItemSchema(BaseSchema):
    """A priced line."""

    sku = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    unit_amount = fields.Integer(data_key="unitAmount")
    amount = fields.Integer()


class TotalsSchema(BaseSchema):
    """Cart totals in minor units."""

    subtotal = fields.Integer()
    shipping = fields.Integer()
    tax = fields.Integer()
    total = fields.Integer()
    currency = fields.String()


class QuoteResponseSchema(TotalsSchema):
    """A quote: the lines and the totals."""

    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")


class PaymentSchema(BaseSchema):
    """The payment part of a checkout status."""

    status = fields.String()
    intent_id = fields.String(data_key="intentId", allow_none=True)
    client_secret = fields.String(data_key="clientSecret", allow_none=True)
    capture_method = fields.String(data_key="captureMethod")


class PaymentErrorSchema(BaseSchema):
    """The last payment error shown to the buyer."""

    code = fields.String()
    message = fields.String()
    decline_code = fields.String(data_key="declineCode", allow_none=True)


class CheckoutStatusSchema(BaseSchema):
    """``GET /api/checkout/<orderId>``."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    payment = fields.Nested(PaymentSchema)
    totals = fields.Nested(TotalsSchema, allow_none=True)
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    hold_expires_at = fields.String(data_key="holdExpiresAt", allow_none=True)
    error = fields.Nested(PaymentErrorSchema, allow_none=True)
    version = fields.Integer()


class EventSchema(BaseSchema):
    """An audit event."""

    ts = fields.String()
    type = fields.String()
    payload = fields.Dict()


class RefundSchema(BaseSchema):
    """A refund of an order."""

    refund_id = fields.String(data_key="refundId")
    amount = fields.Integer()
    status = fields.String()
    reason = fields.String(allow_none=True)
    restock = fields.Boolean()
    created_at = fields.String(data_key="createdAt")


class OrderSchema(BaseSchema):
    """``GET /api/orders/<orderId>``."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    email = fields.String()
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    totals = fields.Nested(TotalsSchema, allow_none=True)
    shipping_address = fields.Dict(data_key="shippingAddress")
    billing_address = fields.Dict(data_key="billingAddress", allow_none=True)
    payment_intent_id = fields.String(data_key="paymentIntentId", allow_none=True)
    payment_status = fields.String(data_key="paymentStatus")
    capture_method = fields.String(data_key="captureMethod")
    amount_captured = fields.Integer(data_key="amountCaptured", allow_none=True)
    capture_before = fields.String(data_key="captureBefore", allow_none=True)
    reservation_id = fields.String(data_key="reservationId")
    amount_refunded = fields.Integer(data_key="amountRefunded")
    refunds = fields.List(fields.Nested(RefundSchema))
    events = fields.List(fields.Nested(EventSchema))
    created_at = fields.String(data_key="createdAt", allow_none=True)


class PublicEventSchema(BaseSchema):
    """An audit event without its payload."""

    ts = fields.String()
    type = fields.String()


class TrackResponseSchema(BaseSchema):
    """``POST /api/orders/track``."""

    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    totals = fields.Nested(TotalsSchema)
    created_at = fields.String(data_key="createdAt")
    events = fields.List(fields.Nested(PublicEventSchema))


class WebhookAckSchema(BaseSchema):
    """``{received: true}``."""

    received = fields.Boolean()


class HealthSchema(BaseSchema):
    """Liveness / readiness."""

    status = fields.String()
    checks = fields.Dict()
