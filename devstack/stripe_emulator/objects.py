"""Builders for the JSON objects Stripe returns, shaped as in Stripe's OpenAPI schemas.

Every field the schema lists is present (``null`` where Stripe sends ``null``), so the
SDK and the contract tests see what the real API sends.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .cards import Card, Decline

Obj = dict[str, Any]

EMULATED_API_VERSION = "2023-08-16"

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# Random byte b -> _ALPHABET[b % 62], as a bytes.translate() table (one C call per id).
_BASE62_TABLE = bytes(ord(_ALPHABET[b % 62]) for b in range(256))


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: ``pi_3Nx...`` (random base62)."""
    return f"{prefix}_" + os.urandom(length).translate(_BASE62_TABLE).decode("ascii")


def now() -> int:
    """Unix seconds, the unit of every ``created`` field."""
    return int(time.time())


def empty_address() -> Obj:
    """An address with every field null."""
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def billing_details(raw: dict[str, Any] | None = None) -> Obj:
    """``billing_details`` from ``billing_details[...]`` parameters."""
    raw = raw or {}
    address = empty_address()
    if isinstance(raw.get("address"), dict):
        address.update({k: v for k, v in raw["address"].items() if k in address})
    return {
        "address": address,
        "email": raw.get("email"),
        "name": raw.get("name"),
        "phone": raw.get("phone"),
    }


def payment_method(
    card: Card,
    exp_month: int,
    exp_year: int,
    *,
    billing: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    """A card PaymentMethod."""
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "billing_details": billing_details(billing),
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": card.country,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": "emu" + card.number[-8:] + card.brand[:5],
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now(),
        "customer": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "card",
    }


def payment_intent(
    amount: int,
    currency: str,
    *,
    capture_method: str,
    automatic_payment_methods: Obj | None,
    payment_method_types: list[str],
) -> Obj:
    """A new PaymentIntent in ``requires_payment_method``."""
    intent_id = new_id("pi")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic_payment_methods,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{intent_id}_secret_{new_id('s', 25)[2:]}",
        "confirmation_method": "automatic",
        "created": now(),
        "currency": currency,
        "customer": None,
        "description": None,
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": payment_method_types,
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(intent: Obj, pm: Obj, *, status: str, decline: Decline | None = None) -> Obj:
    """A card Charge for one confirmation attempt of ``intent`` with ``pm``."""
    captured = status == "succeeded" and intent["capture_method"] != "manual"
    card = pm["card"]
    if decline:
        outcome = {
            "network_status": "declined_by_network",
            "reason": decline.decline_code,
            "risk_level": "normal",
            "risk_score": 40,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    else:
        outcome = {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    charge_id = new_id("ch")
    return {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if captured else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn") if captured else None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "EMULATOR",
        "captured": captured,
        "created": now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": status == "succeeded",
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "network": card["brand"],
                "network_token": {"used": False},
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/emulator/{charge_id}",
        "refunded": False,
        "review": None,
        "shipping": intent["shipping"],
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(charge_obj: Obj, amount: int, reason: str | None, metadata: dict[str, str]) -> Obj:
    """A Refund of ``amount`` on a charge, succeeded at once (card refunds are)."""
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge_obj["id"],
        "created": now(),
        "currency": charge_obj["currency"],
        "metadata": metadata,
        "payment_intent": charge_obj["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


_EVIDENCE_FIELDS = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
]


def dispute(charge_obj: Obj) -> Obj:
    """A fraudulent-reason Dispute on a charge, awaiting a response."""
    created = now()
    return {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": charge_obj["amount"],
        "balance_transactions": [],
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "evidence": dict.fromkeys(_EVIDENCE_FIELDS),
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge_obj["payment_intent"],
        "reason": "fraudulent",
        "status": "needs_response",
    }


def payment_error(decline: Decline, pm: Obj, charge_id: str | None) -> Obj:
    """``last_payment_error`` for a declined attempt (a ``card_error``)."""
    error: Obj = {
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": "https://stripe.com/docs/error-codes/" + decline.code.replace("_", "-"),
        "message": decline.message,
        "payment_method": pm,
        "type": "card_error",
    }
    if decline.param:
        error["param"] = decline.param
    if charge_id:
        error["charge"] = charge_id
    return error


def authentication_error(pm: Obj) -> Obj:
    """``last_payment_error`` after a failed 3-D Secure authentication."""
    return {
        "code": "payment_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        "message": "The provided PaymentMethod has failed authentication. You can provide "
        "payment_method_data or a new PaymentMethod to attempt to fulfill this "
        "PaymentIntent again.",
        "payment_method": pm,
        "type": "invalid_request_error",
    }


def event(
    type_: str,
    snapshot: Obj,
    *,
    previous: Obj | None,
    request_id: str | None,
    idempotency_key: str | None,
    pending_webhooks: int,
) -> Obj:
    """An Event carrying a snapshot of the object it reports on."""
    data: Obj = {"object": snapshot}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": EMULATED_API_VERSION,
        "created": now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type_,
    }
