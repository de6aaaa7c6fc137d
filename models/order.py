"""The order aggregate: the order row and its append-only audit trail."""

from __future__ import annotations

import peewee

from models.db import BaseModel, JSONField, utcnow
from models.statuses import CaptureMethod, OrderState, PaymentStatus

ORDER_STATES = tuple(state.value for state in OrderState)


class Order(BaseModel):
    """An order: priced lines, addresses, the PaymentIntent and the hold it owns."""

    id = peewee.CharField(max_length=36, primary_key=True)
    order_number = peewee.CharField(max_length=32, unique=True)
    idempotency_key = peewee.CharField(max_length=255, unique=True)
    state = peewee.CharField(max_length=16, default=OrderState.PENDING.value)
    email = peewee.CharField(max_length=254)
    user_id = peewee.CharField(max_length=128, null=True)
    line_items = JSONField()
    subtotal = peewee.IntegerField()
    # Wave 3 (migration 0008): a promotion's discount; total = subtotal - discount + shipping + tax.
    discount = peewee.IntegerField(default=0)
    shipping = peewee.IntegerField(default=0)
    # Wave 3 (migration 0008): the shipping option's id (None: a currency without options),
    # the promotion code redeemed, and {code, description, terms} as admission saw them.
    shipping_option = peewee.CharField(max_length=64, null=True)
    promotion_code = peewee.CharField(max_length=40, null=True)
    promotion = JSONField(null=True)
    tax = peewee.IntegerField(default=0)
    total = peewee.IntegerField(constraints=[peewee.Check("total >= 0")])
    currency = peewee.CharField(max_length=3)
    shipping_address = JSONField()
    billing_address = JSONField(null=True)
    payment_intent_id = peewee.CharField(max_length=255, null=True)
    client_secret = peewee.CharField(max_length=255, null=True)
    payment_status = peewee.CharField(max_length=32, default=PaymentStatus.CREATING.value)
    reservation_id = peewee.CharField(max_length=64)
    amount_refunded = peewee.IntegerField(default=0)
    # Wave 2 (migration 0003): manual capture. ``amount_captured`` is None until captured
    # (automatic capture: the total); ``capture_before`` is when the authorisation lapses.
    capture_method = peewee.CharField(max_length=16, default=CaptureMethod.AUTOMATIC.value)
    amount_captured = peewee.IntegerField(null=True)
    capture_before = peewee.DateTimeField(null=True)
    last_payment_error = JSONField(null=True)
    checkout_token_hash = peewee.CharField(max_length=64)
    # The latest dispute on the payment: {id, status, reason, amount, currency, evidenceDueBy}.
    dispute = JSONField(null=True)
    # Wave 3 (migration 0006): hosted Checkout. The session Stripe's page pays (its
    # intent is recorded in ``payment_intent_id`` once the buyer's first attempt makes
    # it), the page's URL and when the session expires (the hold lasts until then).
    checkout_session_id = peewee.CharField(max_length=255, null=True)
    checkout_url = peewee.TextField(null=True)
    checkout_expires_at = peewee.DateTimeField(null=True)
    # Wave 3 (migration 0010): Stripe Tax. The calculation the order was priced with, and
    # the tax transaction recorded from it once paid (None under the table strategy).
    tax_calculation_id = peewee.CharField(max_length=255, null=True)
    tax_transaction_id = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "orders"  # "order" is an SQL keyword


# The orders in a state (the console's filter, the sweeps of PENDING and AUTHORIZED orders,
# tax and inventory), the id beside it (migration 0014): a transition's compare-and-set
# (``WHERE id = %s AND state = %s``) then finds its row in this index by both columns,
# whichever index the planner takes. Keyed on the state alone, the planner (short of
# statistics, or with PENDING rare in them) walked every entry of the state, live and
# dead, fetching each row to compare its id: a paid order's transition cost grew with the
# orders in flight.
Order.add_index(Order.index(Order.state, Order.id, name="orders_state_id"))

# Open disputes are a few orders among many: the console's Attention page finds the
# disputed ones through this partial index (migration 0012), never by a scan.
Order.add_index(Order.index(Order.id, name="orders_disputed", where=Order.dispute.is_null(False)))

# Columns most orders leave empty (a guest's user id, no promotion, no intent yet, no hosted
# session) are indexed only where set (migration 0013): an empty one costs no index entry
# when the order is written, and every query looks them up by a value, never by NULL. The
# unique ones stay unique where set, as before (NULLs never collided).
NOT_NULL_INDEXED = (
    (Order.user_id, False),
    (Order.promotion_code, False),
    (Order.payment_intent_id, True),
    (Order.checkout_session_id, True),
)
for _column, _unique in NOT_NULL_INDEXED:
    Order.add_index(
        Order.index(
            _column, unique=_unique, name=f"orders_{_column.name}", where=_column.is_null(False)
        )
    )


class OrderEvent(BaseModel):
    """One audit entry ``{ts, type, payload}``; read in id order (oldest first)."""

    id = peewee.AutoField()
    order = peewee.ForeignKeyField(Order, backref="events", on_delete="CASCADE")
    ts = peewee.DateTimeField(default=utcnow)
    type = peewee.CharField(max_length=40)
    payload = JSONField(default=dict)
    actor = peewee.CharField(max_length=64, default="system")

    class Meta:
        order_by = ("id",)
