"""Returning buyers' Stripe Customers: one per JWT user id, created once, by the worker.

The mapping lives in ``buyer_customers``. The Customer is created with the idempotency
key ``customer-<userId>`` (``-<generation>`` after an erasure deleted the previous one),
so two workers racing for one buyer get the same Customer from Stripe, and the table's
primary key keeps one row. The Customer holds no personal data: ``metadata.userId`` only.
"""

from __future__ import annotations

import logging

import peewee

from app.gateways.payments import PaymentGateway
from models import BuyerCustomer
from models.db import utcnow

log = logging.getLogger(__name__)

# What a buyer's intents carry when they asked to save the method (``savePaymentMethod``).
SAVE_USAGE = "on_session"


def customer_key(user_id: str, generation: int) -> str:
    """The Stripe idempotency key of the buyer's Customer (generation 0: the first)."""
    return f"customer-{user_id}" if generation == 0 else f"customer-{user_id}-{generation}"


def customer_of(user_id: str) -> str | None:
    """The buyer's Stripe Customer id, or None when none was created (or it was erased)."""
    row = BuyerCustomer.get_or_none(BuyerCustomer.user_id == user_id)
    return row.stripe_customer_id if row is not None else None


def ensure_customer(user_id: str, gateway: PaymentGateway) -> str:
    """The buyer's Customer id, creating the Customer (once) at Stripe if need be.

    Retryable provider errors propagate: the actor retries, with the same key.
    """
    row = BuyerCustomer.get_or_none(BuyerCustomer.user_id == user_id)
    if row is not None and row.stripe_customer_id:
        return str(row.stripe_customer_id)
    generation = row.generation if row is not None else 0
    customer_id = gateway.create_customer(
        user_id=user_id, idempotency_key=customer_key(user_id, generation)
    )
    if row is None:
        try:
            BuyerCustomer.create(user_id=user_id, stripe_customer_id=customer_id)
        except peewee.IntegrityError:
            # Another worker recorded it first; Stripe gave it the same Customer (same key).
            return customer_of(user_id) or customer_id
    else:
        BuyerCustomer.update(stripe_customer_id=customer_id, updated_at=utcnow()).where(
            (BuyerCustomer.user_id == user_id) & BuyerCustomer.stripe_customer_id.is_null()
        ).execute()
    log.info("stripe customer recorded for a buyer (generation %s)", generation)
    return customer_id


def forget_customer(user_id: str) -> str | None:
    """Clear the buyer's Customer id (its deletion at Stripe is the caller's); the next
    Customer gets a new generation's key. Returns the id that was recorded."""
    row = BuyerCustomer.get_or_none(BuyerCustomer.user_id == user_id)
    if row is None or not row.stripe_customer_id:
        return None
    BuyerCustomer.update(
        stripe_customer_id=None, generation=row.generation + 1, updated_at=utcnow()
    ).where(BuyerCustomer.user_id == user_id).execute()
    return str(row.stripe_customer_id)
