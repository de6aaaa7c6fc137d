"""Builders for the JSON objects Stripe returns, shaped as in Stripe's OpenAPI schemas.

Every field the schema lists is present (``null`` where Stripe sends ``null``), so the
SDK and the contract tests see what the real API sends.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .cards import BankFailure, Card, Decline

Obj = dict[str, Any]

EMULATED_API_VERSION = "2023-08-16"

# How long Stripe keeps a ConfirmationToken usable, and a card authorisation capturable.
CONFIRMATION_TOKEN_TTL = 12 * 3600
CARD_AUTHORIZATION_WINDOW = 7 * 86400

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
        "tax_id": None,
    }


def shipping(raw: dict[str, Any]) -> Obj:
    """``shipping`` (PaymentIntent, ConfirmationToken) from ``shipping[...]`` parameters."""
    address = empty_address()
    if isinstance(raw.get("address"), dict):
        address.update({k: v for k, v in raw["address"].items() if k in address})
    return {
        "address": address,
        "carrier": raw.get("carrier"),
        "name": raw.get("name"),
        "phone": raw.get("phone") or None,
        "tracking_number": raw.get("tracking_number"),
    }


def card_wallet(wallet: str | None, last4: str) -> Obj | None:
    """``card.wallet`` for a wallet-tokenised card (Apple Pay, Google Pay, Link)."""
    if not wallet:
        return None
    return {wallet: {}, "dynamic_last4": last4, "type": wallet}


def payment_method(
    card: Card,
    exp_month: int,
    exp_year: int,
    *,
    billing: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    wallet: str | None = None,
) -> Obj:
    """A card PaymentMethod."""
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(billing),
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": card.country,
            "display_brand": card.brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": "emu" + card.number[-8:] + card.brand[:5],
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": card_wallet(wallet, card.last4),
        },
        "created": now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "card",
    }


def bank_payment_method(
    account: Card,
    *,
    routing_number: str,
    account_holder_type: str | None,
    account_type: str | None,
    billing: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    """A ``us_bank_account`` PaymentMethod (ACH Direct Debit)."""
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(billing),
        "created": now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": account_holder_type or "individual",
            "account_type": account_type or "checking",
            "bank_name": "STRIPE TEST BANK",
            "financial_connections_account": None,
            "fingerprint": "emu" + account.number[-8:] + "ach",
            "last4": account.last4,
            "networks": {"preferred": "ach", "supported": ["ach"]},
            "routing_number": routing_number,
            "status_details": {},
        },
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
        "customer_account": None,
        "excluded_payment_method_types": None,
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
        "managed_payments": {"enabled": False},
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": (
            {"id": "pmc_emulator_default", "parent": None} if automatic_payment_methods else None
        ),
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


def charge(
    intent: Obj,
    pm: Obj,
    *,
    status: str,
    decline: Decline | None = None,
    bank_failure: BankFailure | None = None,
    authorization_window: int = CARD_AUTHORIZATION_WINDOW,
) -> Obj:
    """A Charge for one confirmation attempt of ``intent`` with ``pm`` (card or bank debit).

    A manual-capture card charge is authorised only: ``captured: false`` and
    ``payment_method_details.card.capture_before`` (when the authorisation lapses).
    """
    captured = status == "succeeded" and intent["capture_method"] != "manual"
    failure_code = decline.code if decline else bank_failure.code if bank_failure else None
    failure_message = decline.message if decline else bank_failure.message if bank_failure else None
    charge_id = new_id("py" if pm["type"] == "us_bank_account" else "ch")
    created = now()
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
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": charge_outcome(decline, failed=bank_failure is not None),
        "paid": status == "succeeded",
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": payment_method_details(
            pm, intent, created + authorization_window
        ),
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/emulator/{charge_id}",
        "refunded": False,
        # Since API 2022-11-15 Stripe sends refunds only when expanded (expand[]=refunds).
        "refunds": None,
        "review": None,
        "shipping": intent["shipping"],
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def charge_outcome(decline: Decline | None, *, failed: bool = False) -> Obj:
    """A charge's ``outcome``: authorised, declined by the issuer, or a failed bank debit."""
    base = {"advice_code": None, "network_advice_code": None, "network_decline_code": None}
    if decline:
        return {
            **base,
            "network_status": "declined_by_network",
            "reason": decline.decline_code,
            "risk_level": "normal",
            "risk_score": 40,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    if failed:
        return {
            **base,
            "network_status": "declined_by_network",
            "reason": None,
            "risk_level": "not_assessed",
            "risk_score": 0,
            "seller_message": "The bank returned the debit.",
            "type": "issuer_declined",
        }
    return {
        **base,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": "Payment complete.",
        "type": "authorized",
    }


def payment_method_details(pm: Obj, intent: Obj, capture_before: int) -> Obj:
    """``charge.payment_method_details`` for a card or a us_bank_account PaymentMethod."""
    if pm["type"] == "us_bank_account":
        bank = pm["us_bank_account"]
        return {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": bank["account_holder_type"],
                "account_type": bank["account_type"],
                "bank_name": bank["bank_name"],
                "fingerprint": bank["fingerprint"],
                "last4": bank["last4"],
                "mandate": None,
                "payment_reference": None,
                "routing_number": bank["routing_number"],
            },
        }
    card = pm["card"]
    amount = intent["amount"]
    details: Obj = {
        "amount_authorized": amount,
        "authorization_code": f"{abs(hash(pm['id'])) % 1_000_000:06d}",
        "brand": card["brand"],
        "checks": card["checks"],
        "country": card["country"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": card["last4"],
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": card["brand"],
        "network_token": {"used": False},
        "network_transaction_id": new_id("ntx", 12)[4:],
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": card.get("regulated_status"),
        "three_d_secure": None,
        "transaction_link_id": None,
        "wallet": card["wallet"],
    }
    if intent["capture_method"] == "manual":
        details["capture_before"] = capture_before
    return {"card": details, "type": "card"}


def confirmation_token(
    pm: Obj,
    *,
    return_url: str | None,
    setup_future_usage: str | None,
    shipping_raw: dict[str, Any] | None,
    use_stripe_sdk: bool,
    mandate_data: Obj | None = None,
) -> Obj:
    """A ConfirmationToken: the buyer's payment details, previewed, usable once for 12 h."""
    created = now()
    preview = {
        "allow_redisplay": pm["allow_redisplay"],
        "billing_details": pm["billing_details"],
        "customer": None,
        "customer_account": None,
        "type": pm["type"],
        pm["type"]: pm[pm["type"]],
    }
    token_shipping = None
    if shipping_raw:
        full = shipping(shipping_raw)
        token_shipping = {k: full[k] for k in ("address", "name", "phone")}
    return {
        "id": new_id("ctoken"),
        "object": "confirmation_token",
        "created": created,
        "expires_at": created + CONFIRMATION_TOKEN_TTL,
        "livemode": False,
        "mandate_data": mandate_data,
        "payment_intent": None,
        "payment_method_options": {"card": {"cvc_token": None}} if pm["type"] == "card" else None,
        "payment_method_preview": preview,
        "return_url": return_url,
        "setup_future_usage": setup_future_usage,
        "setup_intent": None,
        "shipping": token_shipping,
        "use_stripe_sdk": use_stripe_sdk,
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


EVIDENCE_FIELDS = [
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
        "evidence": dict.fromkeys(EVIDENCE_FIELDS),
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


def bank_payment_error(failure: BankFailure, pm: Obj, charge_id: str) -> Obj:
    """``last_payment_error`` after a bank debit failed to settle (ACH return)."""
    return {
        "charge": charge_id,
        "code": failure.code,
        "doc_url": "https://stripe.com/docs/error-codes/" + failure.code.replace("_", "-"),
        "message": failure.message,
        "payment_method": pm,
        "type": "invalid_request_error",
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


# --- Customers and CustomerSessions (wave 3: returning buyers) --------------------------

# How long a CustomerSession's client secret is usable (Stripe: 30 minutes).
CUSTOMER_SESSION_TTL = 30 * 60


def customer(
    *,
    email: str | None,
    name: str | None,
    description: str | None,
    metadata: dict[str, str],
) -> Obj:
    """A Customer, every field of the 2023 schema and of the 2026 example present."""
    return {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": os.urandom(4).hex().upper()[:7],
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def deleted_customer(customer_id: str) -> Obj:
    """What ``DELETE /v1/customers/<id>`` answers."""
    return {"id": customer_id, "object": "customer", "deleted": True}


def customer_session(customer_id: str, payment_element: Obj) -> Obj:
    """A CustomerSession (no id: Stripe names it by its client secret)."""
    created = now()
    disabled = {"enabled": False}
    return {
        "object": "customer_session",
        "client_secret": "cuss_secret_" + new_id("x", 40)[2:],
        "components": {
            "buy_button": dict(disabled),
            "customer_sheet": {
                "enabled": False,
                "features": {
                    "payment_method_allow_redisplay_filters": None,
                    "payment_method_remove": None,
                },
            },
            "mobile_payment_element": {
                "enabled": False,
                "features": {
                    "payment_method_allow_redisplay_filters": None,
                    "payment_method_redisplay": None,
                    "payment_method_remove": None,
                    "payment_method_save": None,
                    "payment_method_save_allow_redisplay_override": None,
                },
            },
            "payment_element": payment_element,
            "pricing_table": dict(disabled),
        },
        "created": created,
        "customer": customer_id,
        "customer_account": None,
        "expires_at": created + CUSTOMER_SESSION_TTL,
        "livemode": False,
    }
