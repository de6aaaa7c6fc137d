"""The status words stored in the database, in Redis and in JSON, one enum per vocabulary.

``StrEnum`` members are ``str``: they compare equal to, serialise and store as the same
strings as before. The order states are named here; their transitions live in
``app/services/state_machine.py``. The Lua scripts spell the reservation statuses too
(``'HELD'``, ``'CONFIRMED'``, ``'RELEASED'``); tests/lua check they agree.
"""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    """An order's state (``orders.state``); the transition table is the state machine's."""

    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    PAID = "PAID"
    FULFILLING = "FULFILLING"
    FULFILLED = "FULFILLED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    REFUNDED = "REFUNDED"


class ReservationStatus(StrEnum):
    """A stock hold, in Redis (``{shop}:res:<id>`` ``status``) and the reservations table."""

    HELD = "HELD"
    CONFIRMED = "CONFIRMED"
    RELEASED = "RELEASED"


class PaymentStatus(StrEnum):
    """A PaymentIntent's status as Stripe names it, plus ``creating`` before it exists.

    Stored in ``orders.payment_status`` and the read model's ``paymentStatus``.
    """

    CREATING = "creating"
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


class CaptureMethod(StrEnum):
    """When a PaymentIntent's money is taken (``CAPTURE_METHOD``, ``orders.capture_method``).

    ``automatic``: at confirmation. ``manual``: the card is authorised at checkout and
    captured later (at fulfilment start, or by an admin), within ``capture_before``.
    """

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class MailKind(StrEnum):
    """The e-mails sent through the outbox (``outbox.kind``)."""

    RECEIPT = "receipt"
    PAYMENT_PROCESSING = "payment_processing"
    PAYMENT_FAILED = "payment_failed"
    AUTHORIZATION_EXPIRING = "authorization_expiring"
    LATE_PAYMENT_REFUND = "late_payment_refund"
    DISPUTE_ALERT = "dispute_alert"


class WebhookStatus(StrEnum):
    """A row of the webhook inbox (``webhook_events.status``)."""

    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    DEAD = "dead"  # failed past the actor's retry limit: waits for a replay by hand


class DisputeStatus(StrEnum):
    """A Stripe dispute's status, as stored in ``orders.dispute`` ``status``."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"


class RefundStatus(StrEnum):
    """A refund (``refunds.status``): ``pending`` until Stripe answers, then Stripe's word."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class OutboxStatus(StrEnum):
    """A message of the outbox (``outbox.status``)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class ShopEventType(StrEnum):
    """An event told to the shop's own backend (``shop_events.type``; the body's ``type``)."""

    ORDER_CREATED = "order.created"
    ORDER_AUTHORIZED = "order.authorized"
    ORDER_PAID = "order.paid"
    ORDER_FULFILLING = "order.fulfilling"
    ORDER_FULFILLED = "order.fulfilled"
    ORDER_CANCELED = "order.canceled"
    ORDER_FAILED = "order.failed"
    ORDER_REFUNDED = "order.refunded"
    ORDER_PARTIALLY_REFUNDED = "order.partially_refunded"
    ORDER_DISPUTED = "order.disputed"
    ORDER_DISPUTE_CLOSED = "order.dispute_closed"


class ShopDeliveryStatus(StrEnum):
    """One shop event to one endpoint (``shop_webhook_deliveries.status``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
