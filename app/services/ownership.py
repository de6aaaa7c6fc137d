"""Refund, charge and dispute events act only on their own order (I10 beyond intents).

An event names its order by ``metadata.orderId``, which anyone with the account's keys
can set. Before a handler acts, the worker re-reads the event's object from Stripe
(:func:`current_object`) and :func:`foreign` checks that it is the payment of the order
named: the order's recorded intent, its currency (and, for a charge, its amount).
Anything else — an object Stripe does not know, another order's charge — is ignored,
audited (``PAYMENT_MISMATCH_IGNORED``), counted and logged at ERROR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from app.errors import PaymentProviderError
from app.gateways.payments import PaymentGateway
from app.services.state_machine import record_event
from models import Order

log = logging.getLogger(__name__)

MISMATCHES = Counter(
    "checkout_stripe_object_mismatch_total",
    "Refund, charge and dispute events whose object is not the named order's payment.",
    ["object"],
)

# Event types whose object is re-read before the handler acts, and what it is.
REREAD = {
    "charge.refunded": "charge",
    "refund.created": "refund",
    "refund.updated": "refund",
    "refund.failed": "refund",
    "charge.refund.updated": "refund",
    "charge.dispute.created": "dispute",
    "charge.dispute.updated": "dispute",
    "charge.dispute.closed": "dispute",
}


@dataclass(frozen=True)
class Current:
    """An event's object as Stripe has it now (None: Stripe does not know it).

    For a charge, ``refunds`` are its intent's refunds, also as Stripe has them now.
    """

    kind: str
    obj: dict[str, Any] | None
    refunds: list[dict[str, Any]] = field(default_factory=list)


def current_object(gateway: PaymentGateway, type_: str, obj: dict[str, Any]) -> Current:
    """Re-read the object of a refund, charge or dispute event (transient errors raise)."""
    kind, object_id = REREAD[type_], str(obj.get("id"))
    read = {
        "charge": gateway.retrieve_charge,
        "refund": gateway.retrieve_refund,
        "dispute": gateway.retrieve_dispute,
    }[kind]
    try:
        current = read(object_id)
    except PaymentProviderError as exc:
        if exc.provider_code != "resource_missing":
            raise
        return Current(kind, None)
    intent_id = intent_of(current)
    refunds = gateway.list_refunds(intent_id) if kind == "charge" and intent_id else []
    return Current(kind, current, refunds)


def intent_of(obj: dict[str, Any]) -> str | None:
    """The PaymentIntent id a charge, refund or dispute belongs to (id or expanded)."""
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return intent if isinstance(intent, str) and intent else None


def foreign(order: Order, current: Current, event_obj: dict[str, Any], *, actor: str) -> bool:
    """True (audited, counted, logged at ERROR) unless ``current`` is ``order``'s own."""
    obj = current.obj
    if obj is None:
        problems = ["missing"]
    else:
        problems = [] if intent_of(obj) == order.payment_intent_id else ["intent"]
        if str(obj.get("currency") or "").lower() != str(order.currency).lower():
            problems.append("currency")
        if current.kind == "charge" and obj.get("amount") != order.total:
            problems.append("amount")
    if not problems:
        return False
    seen = obj or event_obj
    record_event(
        order,
        "PAYMENT_MISMATCH_IGNORED",
        {
            "object": current.kind,
            "id": event_obj.get("id"),
            "intentId": intent_of(seen),
            "amount": seen.get("amount"),
            "currency": seen.get("currency"),
            "expectedIntentId": order.payment_intent_id,
            "mismatch": problems,
        },
        actor,
    )
    MISMATCHES.labels(current.kind).inc()
    log.error(
        "PAYMENT_MISMATCH on order %s: %s %s is not its payment's (%s); ignored",
        order.id,
        current.kind,
        event_obj.get("id"),
        ", ".join(problems),
    )
    return True
