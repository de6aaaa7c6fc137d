"""Response schemas: they only describe bodies for the OpenAPI document."""

from __future__ import annotations

from marshmallow import fields

from app.schemas.common import BaseSchema
from app.schemas.promotions import PromotionSummarySchema


class ShortItemSchema(BaseSchema):
    """A line that asks for more than is available (``out_of_stock``, the quote)."""

    sku = fields.String()
    name = fields.String()
    requested = fields.Integer()
    available = fields.Integer()


class ErrorDetailSchema(BaseSchema):
    """The ``error`` object of every error body."""

    type = fields.String(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "validation_failed: flat dotted camelCase path → messages."},
    )
    items = fields.List(
        fields.Nested(ShortItemSchema), metadata={"description": "out_of_stock: the short lines."}
    )


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
    unit_amount_decimal = fields.String(
        data_key="unitAmountDecimal", metadata={"description": 'Exact decimal: "14.00".'}
    )
    amount_decimal = fields.String(data_key="amountDecimal")


class TotalsSchema(BaseSchema):
    """Cart totals in minor units: ``total = subtotal - discount + shipping + tax``."""

    subtotal = fields.Integer()
    discount = fields.Integer(metadata={"description": "A promotion's discount; 0 when none."})
    shipping = fields.Integer()
    tax = fields.Integer()
    total = fields.Integer()
    currency = fields.String()


class TotalsDecimalSchema(BaseSchema):
    """The totals as exact decimal strings in the currency's minor-unit exponent."""

    subtotal = fields.String()
    discount = fields.String()
    shipping = fields.String()
    tax = fields.String()
    total = fields.String()


def _totals_decimal(*, allow_none: bool = False) -> fields.Nested:
    return fields.Nested(TotalsDecimalSchema, data_key="totalsDecimal", allow_none=allow_none)


class QuoteLineSchema(LineItemSchema):
    """A priced line of a quote, with the units available now."""

    available = fields.Integer()


class DeliveryEstimateSchema(BaseSchema):
    """Business days from dispatch to delivery."""

    min_days = fields.Integer(data_key="minDays")
    max_days = fields.Integer(data_key="maxDays")


class ShippingOptionSchema(BaseSchema):
    """One way to ship to the destination, priced for this cart."""

    id = fields.String()
    label = fields.String()
    amount = fields.Integer()
    amount_decimal = fields.String(data_key="amountDecimal")
    delivery_estimate = fields.Nested(DeliveryEstimateSchema, data_key="deliveryEstimate")


class QuoteResponseSchema(TotalsSchema):
    """A quote: the lines, the totals, and whether the cart can be bought as it is."""

    line_items = fields.List(fields.Nested(QuoteLineSchema), data_key="lineItems")
    totals_decimal = _totals_decimal()
    shipping_options = fields.List(
        fields.Nested(ShippingOptionSchema),
        data_key="shippingOptions",
        metadata={"description": "The destination's options (empty: shipping is free)."},
    )
    shipping_option_id = fields.String(
        data_key="shippingOptionId",
        allow_none=True,
        metadata={"description": "The option priced: the one asked for, else the cheapest."},
    )
    promotion = fields.Nested(PromotionSummarySchema, allow_none=True)
    purchasable = fields.Boolean(
        metadata={"description": "false when a line asks for more than is available"}
    )
    short_items = fields.List(
        fields.Nested(ShortItemSchema),
        data_key="shortItems",
        metadata={"description": "The lines that are short (empty when purchasable)."},
    )


class PaymentSchema(BaseSchema):
    """The payment part of a checkout status."""

    status = fields.String()
    intent_id = fields.String(data_key="intentId", allow_none=True)
    client_secret = fields.String(data_key="clientSecret", allow_none=True)
    capture_method = fields.String(data_key="captureMethod")
    customer_session_client_secret = fields.String(
        data_key="customerSessionClientSecret",
        allow_none=True,
        metadata={
            "description": "A JWT buyer's only: a CustomerSession secret for "
            "elements({customerSessionClientSecret}), so the Payment Element lists their "
            "saved cards (null until the worker created it, and once the order is not PENDING)."
        },
    )


class PaymentErrorSchema(BaseSchema):
    """The last payment error shown to the buyer."""

    code = fields.String()
    message = fields.String()
    decline_code = fields.String(data_key="declineCode", allow_none=True)


class QueueSchema(BaseSchema):
    """Where a buyer stands while the PaymentIntent is being created."""

    position = fields.Integer(metadata={"description": "Buyers ahead in the queue to Stripe."})
    eta_seconds = fields.Integer(
        data_key="etaSeconds", metadata={"description": "About how long, at the budget in force."}
    )


class HostedCheckoutSchema(BaseSchema):
    """A hosted order's Checkout Session: the shop redirects the buyer to ``url``."""

    session_id = fields.String(data_key="sessionId")
    url = fields.String(allow_none=True, metadata={"description": "Stripe's payment page."})
    expires_at = fields.String(data_key="expiresAt", allow_none=True)


class CheckoutStatusSchema(BaseSchema):
    """``GET /api/checkout/<orderId>``."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    payment = fields.Nested(PaymentSchema)
    totals = fields.Nested(TotalsSchema, allow_none=True)
    totals_decimal = _totals_decimal(allow_none=True)
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    hold_expires_at = fields.String(data_key="holdExpiresAt", allow_none=True)
    checkout = fields.Nested(
        HostedCheckoutSchema,
        allow_none=True,
        metadata={"description": 'With "ui": "hosted", once the Checkout Session exists.'},
    )
    error = fields.Nested(PaymentErrorSchema, allow_none=True)
    version = fields.Integer()
    queue = fields.Nested(
        QueueSchema,
        metadata={"description": "Only while payment.status is creating (a flash sale's wait)."},
    )


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


class DisputeSchema(BaseSchema):
    """The latest dispute on an order's payment (Stripe's words for status and reason)."""

    id = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    evidence_due_by = fields.String(data_key="evidenceDueBy", allow_none=True)


class OrderSchema(BaseSchema):
    """``GET /api/orders/<orderId>``."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    email = fields.String()
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    totals = fields.Nested(TotalsSchema, allow_none=True)
    totals_decimal = _totals_decimal(allow_none=True)
    shipping_option_id = fields.String(
        data_key="shippingOptionId",
        allow_none=True,
        metadata={"description": "The shipping option chosen (null: one was not needed)."},
    )
    promotion = fields.Nested(
        PromotionSummarySchema,
        allow_none=True,
        metadata={"description": "The promotion code redeemed (null: none)."},
    )
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
    dispute = fields.Nested(DisputeSchema, allow_none=True)
    events = fields.List(fields.Nested(EventSchema))
    created_at = fields.String(data_key="createdAt", allow_none=True)


class PublicEventSchema(BaseSchema):
    """An audit event without its payload."""

    ts = fields.String()
    type = fields.String()


class ProgressStepSchema(BaseSchema):
    """A state on the order's way: when it was reached, or null while still ahead."""

    state = fields.String()
    reached_at = fields.String(data_key="reachedAt", allow_none=True)


class TrackResponseSchema(BaseSchema):
    """``POST /api/orders/track``."""

    order_number = fields.String(data_key="orderNumber")
    email = fields.String()
    state = fields.String()
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    totals = fields.Nested(TotalsSchema)
    totals_decimal = _totals_decimal()
    created_at = fields.String(data_key="createdAt")
    events = fields.List(fields.Nested(PublicEventSchema))
    progress = fields.List(
        fields.Nested(ProgressStepSchema),
        metadata={
            "description": "States reached (oldest first), then those still ahead on "
            "PENDING → PAID → FULFILLING → FULFILLED with reachedAt null."
        },
    )


class WebhookAckSchema(BaseSchema):
    """``{received: true}``."""

    received = fields.Boolean()


class HealthSchema(BaseSchema):
    """Liveness / readiness."""

    status = fields.String()
    checks = fields.Dict()


class SavedCardSchema(BaseSchema):
    """``GET /api/me/payment-methods``: one of the buyer's saved cards (never the number)."""

    id = fields.String()
    brand = fields.String()
    last4 = fields.String()
    exp_month = fields.Integer(data_key="expMonth")
    exp_year = fields.Integer(data_key="expYear")


class MyOrderSchema(BaseSchema):
    """One of the signed-in buyer's orders."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    totals = fields.Nested(TotalsSchema)
    line_items = fields.List(fields.Nested(LineItemSchema), data_key="lineItems")
    created_at = fields.String(data_key="createdAt")


class MyOrderPageSchema(BaseSchema):
    """``GET /api/me/orders``: a page of the buyer's orders, newest first."""

    data = fields.List(fields.Nested(MyOrderSchema))
    next_cursor = fields.String(data_key="nextCursor", allow_none=True)
