"""In-memory stand-ins for the outside adapters, with the same Protocols as the real ones.

``FakeGateway`` keeps PaymentIntents in a dict and follows Stripe's rules where the
domain depends on them: idempotency keys, statuses, ``last_payment_error`` with
``decline_code``, refusing to cancel an intent that moved on, signed webhooks.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.errors import PaymentProviderError
from app.gateways.mail import Message
from app.gateways.payments import (
    CheckoutSession,
    Intent,
    PaymentError,
    SavedCard,
    SessionLine,
    TaxCalculation,
    TaxLine,
)
from app.gateways.signatures import sign_payload, verify_signature

# Test payment methods and what confirming with them does (Stripe's test cards).
DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}
THREE_D_SECURE = frozenset({"pm_card_threeDSecure2Required", "pm_card_authenticationRequired"})
DELAYED = frozenset({"pm_emulator_delayed", "pm_emulator_bank_debit"})
# How long a manual-capture card authorisation stays capturable (Stripe: 7 days).
AUTHORIZATION_WINDOW_SECONDS = 7 * 24 * 3600
CANCELABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
# Stripe: a Checkout Session expires 30 minutes to 24 hours after it is created.
SESSION_MIN_SECONDS, SESSION_MAX_SECONDS = 30 * 60, 24 * 3600


class FakeGateway:
    """A PaymentGateway kept in memory; drive it with ``confirm``, ``settle`` and ``fail_next``."""

    def __init__(self, webhook_secret: str = "whsec_test_secret", tolerance: int = 300) -> None:
        self.webhook_secrets: tuple[str, ...] = (webhook_secret,)
        self.webhook_tolerance = tolerance
        self.intents: dict[str, Intent] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # besides those built from intents
        self.disputes: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.cancellation_reasons: dict[str, str] = {}
        self.tokens: dict[str, str] = {}  # ctoken id -> payment method
        self.spent_tokens: set[str] = set()
        self.dispute_evidence: dict[str, list[dict[str, str]]] = {}  # dispute id -> staged
        self.sessions: dict[str, CheckoutSession] = {}
        self.session_capture: dict[str, str] = {}  # session id -> its intent's capture method
        # Added to every new session's total: a Stripe that disagrees with our sum.
        self.session_total_skew = 0
        self._idempotent: dict[str, Any] = {}
        self._failures: dict[str, list[PaymentProviderError]] = {}
        self._ids = itertools.count(1)
        # Wave 3: returning buyers. Customer id -> user id (deleted ones are removed);
        # saved card id -> (customer id, card); CustomerSession secret -> customer id.
        self.customers: dict[str, str] = {}
        self.deleted_customers: set[str] = set()
        self.saved_cards: dict[str, tuple[str, SavedCard]] = {}
        self.customer_sessions: dict[str, str] = {}
        # Stripe Tax: rates in basis points by country (else 0); calculations by id;
        # transactions and reversals by id ({type, reference, calculation | original, ...}).
        self.tax_rates: dict[str, int] = {"US": 800, "DE": 1900}
        self.tax_calculations: dict[str, dict[str, Any]] = {}
        self.tax_transactions: dict[str, dict[str, Any]] = {}

    # --- test controls ------------------------------------------------------------

    def fail_next(self, method: str, error: PaymentProviderError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        self._failures.setdefault(method, []).extend([error] * times)

    def set_status(self, intent_id: str, status: str, **changes: Any) -> Intent:
        """Force an intent into ``status`` (as if the buyer or the bank had acted)."""
        intent = replace(self.intents[intent_id], status=status, **changes)
        self.intents[intent_id] = intent
        return intent

    def confirm(self, intent_id: str, payment_method: str = "pm_card_visa") -> Intent:
        """Confirm like Stripe.js would with a test payment method."""
        # Like Stripe: a declined or pending attempt creates a charge too (latest_charge).
        if payment_method in DECLINES:
            code, decline, message = DECLINES[payment_method]
            error = PaymentError(code, message, decline_code=decline, type="card_error")
            return self.set_status(
                intent_id,
                "requires_payment_method",
                last_error=error,
                latest_charge=f"ch_fake_{next(self._ids)}",
            )
        if payment_method in THREE_D_SECURE:
            return self.set_status(intent_id, "requires_action", last_error=None)
        if payment_method in DELAYED:
            charge = f"ch_fake_{next(self._ids)}"
            return self.set_status(intent_id, "processing", last_error=None, latest_charge=charge)
        return self.charge(intent_id)

    def charge(self, intent_id: str) -> Intent:
        """The card is charged: succeeded, or requires_capture under manual capture."""
        charge = f"ch_fake_{next(self._ids)}"
        intent = self.intents[intent_id]
        if intent.capture_method == "manual":
            return self.set_status(
                intent_id,
                "requires_capture",
                last_error=None,
                latest_charge=charge,
                amount_capturable=intent.amount,
                capture_before=int(time.time()) + AUTHORIZATION_WINDOW_SECONDS,
            )
        self._save_for_future(intent)
        return self.set_status(
            intent_id,
            "succeeded",
            last_error=None,
            latest_charge=charge,
            amount_received=intent.amount,
        )

    def _save_for_future(self, intent: Intent) -> None:
        """``setup_future_usage`` with a Customer: the paying card is saved on success."""
        if intent.setup_future_usage and intent.customer:
            self.save_card(intent.customer)

    def save_card(self, customer_id: str, *, brand: str = "visa", last4: str = "4242") -> SavedCard:
        """A card saved on the Customer (as a payment with ``setup_future_usage`` does)."""
        card = SavedCard(f"pm_fake_{next(self._ids)}", brand, last4, 12, 2034)
        self.saved_cards[card.id] = (customer_id, card)
        return card

    def authenticate(self, intent_id: str, outcome: str = "complete") -> Intent:
        """Finish 3-D Secure (the emulator's control endpoint)."""
        if outcome == "complete":
            return self.charge(intent_id)
        error = PaymentError(
            "payment_intent_authentication_failure",
            "We are unable to authenticate your payment method.",
            type="invalid_request_error",
        )
        return self.set_status(intent_id, "requires_payment_method", last_error=error)

    def settle(self, intent_id: str, outcome: str = "succeeded") -> Intent:
        """Finish a processing payment (a bank debit): succeeded or failed."""
        if outcome == "succeeded":
            return self.charge(intent_id)
        error = PaymentError(
            "insufficient_funds",
            "The account has insufficient funds.",
            type="invalid_request_error",
        )
        return self.set_status(intent_id, "requires_payment_method", last_error=error)

    def expire_authorization(self, intent_id: str) -> Intent:
        """An authorisation lapses uncaptured: canceled, ``cancellation_reason`` automatic."""
        self.cancellation_reasons[intent_id] = "automatic"
        return self.set_status(
            intent_id, "canceled", amount_capturable=0, cancellation_reason="automatic"
        )

    def pay_session(self, session_id: str, payment_method: str = "pm_card_visa") -> Intent:
        """Pay an open Checkout Session as its hosted page would (the emulator's
        ``/_emulator/checkout_sessions/:id/pay``): its intent is created at the first try."""
        session = self.sessions[session_id]
        if session.status != "open":
            raise PaymentProviderError(
                f"This Checkout Session is {session.status}.", retryable=False, provider_code=None
            )
        if session.payment_intent is None:
            number = next(self._ids)
            intent = Intent(
                id=f"pi_fake_{number}",
                status="requires_payment_method",
                client_secret=f"pi_fake_{number}_secret_{secrets.token_hex(6)}",
                amount=session.amount_total,
                currency=session.currency,
                metadata=dict(session.metadata),
                capture_method=self.session_capture.get(session_id, "automatic"),
            )
            self.intents[intent.id] = intent
            session = self.sessions[session_id] = replace(session, payment_intent=intent.id)
        assert session.payment_intent is not None
        intent = self.confirm(session.payment_intent, payment_method)
        self._follow(session_id)
        return intent

    def _follow(self, session_id: str) -> CheckoutSession:
        """The session as its intent has moved it: completed paid / unpaid (processing)."""
        session = self.sessions[session_id]
        intent = self.intents.get(session.payment_intent or "")
        if intent is not None and session.status != "expired":
            if intent.status == "succeeded":
                session = replace(session, status="complete", payment_status="paid", url=None)
            elif intent.status in ("processing", "requires_capture") and session.status == "open":
                session = replace(session, status="complete", url=None)
        self.sessions[session_id] = session
        return session

    def confirmation_token(self, payment_method: str = "pm_card_visa") -> str:
        """A ConfirmationToken for ``payment_method`` (Stripe's test helper)."""
        token = f"ctoken_fake_{next(self._ids)}_{secrets.token_hex(4)}"
        self.tokens[token] = payment_method
        return token

    def _use_token(self, intent_id: str, token: str) -> Intent:
        if token not in self.tokens or token in self.spent_tokens:
            raise PaymentProviderError(
                "This ConfirmationToken has already been used.",
                retryable=False,
                provider_code="confirmation_token_already_used",
            )
        self.spent_tokens.add(token)
        return self.confirm(intent_id, self.tokens[token])

    def fail_refund(
        self, refund_id: str, reason: str = "expired_or_canceled_card"
    ) -> dict[str, Any]:
        """A refund fails after the fact (Stripe's ``pm_card_refundFail``)."""
        refund = self.refunds[refund_id]
        refund.update(status="failed", failure_reason=reason)
        return dict(refund)

    def event(
        self,
        type_: str,
        obj: dict[str, Any] | Intent | CheckoutSession,
        *,
        current: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """A Stripe event envelope around ``obj`` (an Intent is rendered as Stripe would).

        A refund, charge or dispute ``obj`` becomes what Stripe has now (a re-read
        answers it), unless ``current`` is False: a stale snapshot delivered late.
        """
        if isinstance(obj, CheckoutSession):
            data = session_dict(obj)
        else:
            data = intent_dict(obj) if isinstance(obj, Intent) else obj
        stored = {"refund": self.refunds, "charge": self.charges, "dispute": self.disputes}
        if current and data.get("object") in stored and data.get("id"):
            stored[data["object"]][data["id"]] = dict(data)
        event = {
            "id": f"evt_fake_{next(self._ids)}_{secrets.token_hex(4)}",
            "object": "event",
            "type": type_,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": data},
            **extra,
        }
        self.events.append(event)
        return event

    def signed(
        self, payload: dict[str, Any] | bytes, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """The raw body and a valid Stripe-Signature header for ``payload``."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return body, sign_payload(body, self.webhook_secrets[0], timestamp)

    def _check(self, method: str, **params: Any) -> None:
        self.calls.append((method, params))
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _replay(self, key: str, params: dict[str, Any]) -> Any:
        seen = self._idempotent.get(key)
        if seen is None:
            return None
        if seen[0] != params:
            raise PaymentProviderError(
                "Keys for idempotent requests can only be used with the same parameters.",
                retryable=False,
                provider_code="idempotency_error",
            )
        return seen[1]

    # --- PaymentGateway -----------------------------------------------------------

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
        receipt_email: str | None,
        description: str,
        capture_method: str = "automatic",
        confirmation_token: str | None = None,
        return_url: str | None = None,
        customer: str | None = None,
        setup_future_usage: str | None = None,
    ) -> Intent:
        """Create an intent; a repeated key with the same parameters returns the first.

        With ``confirmation_token`` it is confirmed at once (declines return the intent)."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "metadata": dict(metadata),
            "receipt_email": receipt_email,
            "description": description,
        }
        if capture_method != "automatic":
            params["capture_method"] = capture_method
        if confirmation_token:
            params |= {"confirmation_token": confirmation_token, "return_url": return_url}
        if customer:
            params["customer"] = customer
        if setup_future_usage:
            params["setup_future_usage"] = setup_future_usage
        self._check("create_intent", **params)
        replayed = self._replay(f"create:{idempotency_key}", params)
        if replayed is not None:
            return self.intents[replayed]
        number = next(self._ids)
        intent = Intent(
            id=f"pi_fake_{number}",
            status="requires_payment_method",
            client_secret=f"pi_fake_{number}_secret_{secrets.token_hex(6)}",
            amount=amount,
            currency=currency,
            metadata=dict(metadata),
            capture_method=capture_method,
            customer=customer,
            setup_future_usage=setup_future_usage,
        )
        self.intents[intent.id] = intent
        self._idempotent[f"create:{idempotency_key}"] = (params, intent.id)
        if confirmation_token:
            return self._use_token(intent.id, confirmation_token)
        return intent

    def confirm_intent(
        self,
        intent_id: str,
        *,
        confirmation_token: str,
        return_url: str | None,
        idempotency_key: str,
    ) -> Intent:
        """A server-side confirm with a token; only from requires_payment_method."""
        params = {"intent_id": intent_id, "confirmation_token": confirmation_token}
        self._check("confirm_intent", **params)
        replayed = self._replay(f"confirm:{idempotency_key}", params)
        if replayed is not None:
            return self.intents[replayed]
        intent = self.retrieve_intent(intent_id)
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise PaymentProviderError(
                f"This PaymentIntent's status is {intent.status}.",
                retryable=False,
                provider_code="payment_intent_unexpected_state",
            )
        self._idempotent[f"confirm:{idempotency_key}"] = (params, intent_id)
        return self._use_token(intent_id, confirmation_token)

    def capture_intent(self, intent_id: str, *, amount: int | None, idempotency_key: str) -> Intent:
        """Capture a requires_capture intent (all, or ``amount`` ≤ amount_capturable)."""
        params = {"intent_id": intent_id, "amount": amount}
        self._check("capture_intent", **params)
        replayed = self._replay(f"capture:{idempotency_key}", params)
        if replayed is not None:
            return self.intents[replayed]
        intent = self.retrieve_intent(intent_id)
        if intent.status != "requires_capture":
            raise PaymentProviderError(
                f"This PaymentIntent's status is {intent.status}.",
                retryable=False,
                provider_code="payment_intent_unexpected_state",
            )
        taken = intent.amount_capturable if amount is None else amount
        if taken > intent.amount_capturable:
            raise PaymentProviderError(
                "amount_to_capture exceeds amount_capturable",
                retryable=False,
                provider_code="amount_too_large",
            )
        self._idempotent[f"capture:{idempotency_key}"] = (params, intent_id)
        return self.set_status(intent_id, "succeeded", amount_capturable=0, amount_received=taken)

    def retrieve_intent(self, intent_id: str) -> Intent:
        """The stored intent (invalid request when unknown)."""
        self._check("retrieve_intent", intent_id=intent_id)
        if intent_id not in self.intents:
            raise PaymentProviderError(
                f"No such payment_intent: '{intent_id}'",
                retryable=False,
                provider_code="resource_missing",
            )
        return self.intents[intent_id]

    def cancel_intent(self, intent_id: str, *, reason: str, idempotency_key: str) -> Intent:
        """Cancel like Stripe: only from a cancelable status, else unexpected state."""
        self._check("cancel_intent", intent_id=intent_id, reason=reason)
        intent = self.retrieve_intent(intent_id)
        if intent.status == "canceled":
            return intent
        if intent.status not in CANCELABLE:
            raise PaymentProviderError(
                f"You cannot cancel this PaymentIntent because it has a status of {intent.status}.",
                retryable=False,
                provider_code="payment_intent_unexpected_state",
            )
        self.cancellation_reasons[intent_id] = reason
        return self.set_status(
            intent_id, "canceled", amount_capturable=0, cancellation_reason=reason
        )

    def find_intents_for_order(self, order_id: str) -> list[Intent]:
        """Like Stripe's search on ``metadata['orderId']``, newest first (no index delay)."""
        self._check("find_intents_for_order", order_id=order_id)
        found = [i for i in self.intents.values() if i.metadata.get("orderId") == order_id]
        return found[::-1]

    def create_refund(
        self,
        *,
        intent_id: str,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """Refund a succeeded intent (full when ``amount`` is None)."""
        self._check("create_refund", intent_id=intent_id, amount=amount)
        params = {"intent_id": intent_id, "amount": amount, "reason": reason}
        replayed = self._replay(f"refund:{idempotency_key}", params)
        if replayed is not None:
            return self.refunds[replayed]
        intent = self.retrieve_intent(intent_id)
        refund = {
            "id": f"re_fake_{next(self._ids)}",
            "object": "refund",
            "amount": intent.amount if amount is None else amount,
            "currency": intent.currency,
            "payment_intent": intent_id,
            "charge": intent.latest_charge,
            "status": "succeeded",
            "reason": reason,
            "metadata": dict(metadata),
        }
        self.refunds[refund["id"]] = refund
        self._idempotent[f"refund:{idempotency_key}"] = (params, refund["id"])
        return refund

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """The stored refund (invalid request when unknown)."""
        self._check("retrieve_refund", refund_id=refund_id)
        return dict(self._known(self.refunds, "refund", refund_id))

    def list_refunds(self, intent_id: str) -> list[dict[str, Any]]:
        """The stored refunds of ``intent_id``, newest first."""
        self._check("list_refunds", intent_id=intent_id)
        mine = [dict(r) for r in self.refunds.values() if r.get("payment_intent") == intent_id]
        return mine[::-1]

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        """A stored charge, else an intent's latest charge with its refunds counted."""
        self._check("retrieve_charge", charge_id=charge_id)
        if charge_id in self.charges:
            return dict(self.charges[charge_id])
        for intent in self.intents.values():
            if intent.latest_charge == charge_id:
                refunded = sum(
                    int(r["amount"])
                    for r in self.refunds.values()
                    if r.get("payment_intent") == intent.id and r.get("status") != "failed"
                )
                return {
                    "id": charge_id,
                    "object": "charge",
                    "payment_intent": intent.id,
                    "amount": intent.amount,
                    "amount_captured": intent.amount_received,
                    "amount_refunded": refunded,
                    "currency": intent.currency,
                    "metadata": dict(intent.metadata),
                }
        return dict(self._known({}, "charge", charge_id))

    def retrieve_dispute(self, dispute_id: str) -> dict[str, Any]:
        """The stored dispute (invalid request when unknown)."""
        self._check("retrieve_dispute", dispute_id=dispute_id)
        return dict(self._known(self.disputes, "dispute", dispute_id))

    @staticmethod
    def _known(table: dict[str, dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
        if object_id not in table:
            raise PaymentProviderError(
                f"No such {kind}: '{object_id}'", retryable=False, provider_code="resource_missing"
            )
        return table[object_id]

    def list_events(self, *, created_gte: int, types: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The events built with :meth:`event`, filtered like Stripe's list."""
        self._check("list_events", created_gte=created_gte)
        wanted = set(types)
        for event in self.events:
            if event["created"] >= created_gte and (not wanted or event["type"] in wanted):
                yield event

    def stage_dispute_evidence(
        self, dispute_id: str, *, evidence: dict[str, str]
    ) -> dict[str, Any]:
        """Record the staged evidence (``submit: false``: the dispute stays open)."""
        self._check("stage_dispute_evidence", dispute_id=dispute_id)
        self.dispute_evidence.setdefault(dispute_id, []).append(dict(evidence))
        return {"id": dispute_id, "object": "dispute", "evidence": dict(evidence)}

    def verify_webhook(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """Verify exactly as the Stripe adapter does."""
        return verify_signature(
            payload, signature_header, self.webhook_secrets, tolerance=self.webhook_tolerance
        )

    # --- Wave 3: returning buyers -------------------------------------------------------

    def create_customer(self, *, user_id: str, idempotency_key: str) -> str:
        """One Customer per idempotency key, as at Stripe."""
        self._check("create_customer", user_id=user_id)
        key = f"customer:{idempotency_key}"
        replayed = self._replay(key, {"userId": user_id})
        if replayed is not None:
            return str(replayed)
        customer_id = f"cus_fake_{next(self._ids)}"
        self.customers[customer_id] = user_id
        self._idempotent[key] = ({"userId": user_id}, customer_id)
        return customer_id

    def delete_customer(self, customer_id: str) -> None:
        """Delete it and detach its cards; deleting again is fine (as the adapter's 404)."""
        self._check("delete_customer", customer_id=customer_id)
        if self.customers.pop(customer_id, None) is not None:
            self.deleted_customers.add(customer_id)
        for pm_id, (owner, _card) in list(self.saved_cards.items()):
            if owner == customer_id:
                del self.saved_cards[pm_id]

    def create_customer_session(self, customer_id: str) -> str:
        """A ``cuss_secret_…`` for a live Customer."""
        self._check("create_customer_session", customer_id=customer_id)
        self._live_customer(customer_id)
        secret = f"cuss_secret_fake{next(self._ids)}{secrets.token_hex(8)}"
        self.customer_sessions[secret] = customer_id
        return secret

    def list_saved_cards(self, customer_id: str) -> list[SavedCard]:
        """The Customer's cards, newest first."""
        self._check("list_saved_cards", customer_id=customer_id)
        self._live_customer(customer_id)
        mine = [card for owner, card in self.saved_cards.values() if owner == customer_id]
        return list(reversed(mine))

    def retrieve_saved_card(self, customer_id: str, payment_method_id: str) -> SavedCard | None:
        """The card when it is this Customer's, else None (Stripe's 404)."""
        self._check("retrieve_saved_card", customer_id=customer_id, pm=payment_method_id)
        self._live_customer(customer_id)
        owner, card = self.saved_cards.get(payment_method_id, (None, None))
        return card if owner == customer_id else None

    def detach_payment_method(self, payment_method_id: str) -> None:
        """Detach a saved card; an unattached one is refused, as at Stripe."""
        self._check("detach_payment_method", pm=payment_method_id)
        if self.saved_cards.pop(payment_method_id, None) is None:
            raise PaymentProviderError(
                "The payment method you provided is not attached to a customer.",
                retryable=False,
                provider_code=None,
            )

    def _live_customer(self, customer_id: str) -> None:
        if customer_id not in self.customers:
            raise PaymentProviderError(
                f"No such customer: '{customer_id}'",
                retryable=False,
                provider_code="resource_missing",
            )

    def create_checkout_session(
        self,
        *,
        lines: Sequence[SessionLine],
        shipping: SessionLine | None,
        currency: str,
        customer_email: str | None,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str,
        discount: int = 0,
        capture_method: str = "automatic",
    ) -> CheckoutSession:
        """Create a session; a repeated key with the same parameters returns the first
        (a ``discount`` comes off the lines, never the shipping, as a coupon does)."""
        params: dict[str, Any] = {
            "lines": list(lines),
            "shipping": shipping,
            "currency": currency,
            "customer_email": customer_email,
            "metadata": dict(metadata),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": expires_at,
            "discount": discount,
            "capture_method": capture_method,
        }
        self._check("create_checkout_session", **params)
        replayed = self._replay(f"session:{idempotency_key}", params)
        if replayed is not None:
            return self._follow(replayed)
        ahead = expires_at - int(time.time())
        if not SESSION_MIN_SECONDS <= ahead <= SESSION_MAX_SECONDS:
            raise PaymentProviderError(
                "The `expires_at` timestamp must be at least 30 minutes and at most 24 hours "
                "from Checkout Session creation.",
                retryable=False,
                provider_code="parameter_invalid",
            )
        total = sum(line.unit_amount * line.quantity for line in lines)
        total -= min(discount, total)
        total += (shipping.unit_amount if shipping else 0) + self.session_total_skew
        session_id = f"cs_test_fake_{next(self._ids)}_{secrets.token_hex(8)}"
        self.session_capture[session_id] = capture_method
        self.sessions[session_id] = CheckoutSession(
            id=session_id,
            status="open",
            payment_status="unpaid",
            url=f"https://checkout.stripe.test/c/pay/{session_id}",
            amount_total=total,
            currency=currency,
            expires_at=expires_at,
            metadata=dict(metadata),
        )
        self._idempotent[f"session:{idempotency_key}"] = (params, session_id)
        return self.sessions[session_id]

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """The stored session, following its intent (invalid request when unknown)."""
        self._check("retrieve_checkout_session", session_id=session_id)
        if session_id not in self.sessions:
            raise PaymentProviderError(
                f"No such checkout.session: '{session_id}'",
                retryable=False,
                provider_code="resource_missing",
            )
        return self._follow(session_id)

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        """Expire an open session (its unpaid intent is canceled); refused otherwise."""
        self._check("expire_checkout_session", session_id=session_id)
        replayed = self._replay(f"expire:{idempotency_key}", {"session_id": session_id})
        if replayed is not None:
            return self.sessions[replayed]
        session = self.retrieve_checkout_session(session_id)
        if session.status != "open":
            raise PaymentProviderError(
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                retryable=False,
                provider_code=None,
            )
        intent = self.intents.get(session.payment_intent or "")
        if intent is not None and intent.status in CANCELABLE:
            self.set_status(intent.id, "canceled", cancellation_reason="abandoned")
        session = self.sessions[session_id] = replace(session, status="expired", url=None)
        self._idempotent[f"expire:{idempotency_key}"] = ({"session_id": session_id}, session_id)
        return session

    # --- Stripe Tax ---------------------------------------------------------------

    def calculate_tax(
        self,
        *,
        currency: str,
        lines: Sequence[TaxLine],
        shipping: int,
        address: dict[str, str],
    ) -> TaxCalculation:
        """Tax every line and the shipping at ``tax_rates[country]``, half-up per line."""
        self._check("calculate_tax", currency=currency, lines=list(lines), shipping=shipping,
                    address=dict(address))  # fmt: skip
        rate = self.tax_rates.get(address["country"], 0)
        line_taxes = tuple(_fake_tax(line.amount, rate) for line in lines)
        shipping_tax = _fake_tax(shipping, rate)
        calc = TaxCalculation(
            id=f"taxcalc_fake_{next(self._ids)}",
            line_taxes=line_taxes,
            shipping_tax=shipping_tax,
            tax=sum(line_taxes) + shipping_tax,
            expires_at=int(time.time()) + 90 * 86400,
        )
        gross = sum(line.amount for line in lines) + shipping + calc.tax
        self.tax_calculations[calc.id] = {"calculation": calc, "gross": gross}
        return calc

    def record_tax_transaction(
        self, *, calculation_id: str, reference: str, idempotency_key: str
    ) -> str:
        """Record a transaction (a repeated key replays; a used reference is refused)."""
        params = {"calculation_id": calculation_id, "reference": reference}
        self._check("record_tax_transaction", **params, idempotency_key=idempotency_key)
        replayed = self._replay(idempotency_key, params)
        if replayed is not None:
            return str(replayed)
        if calculation_id not in self.tax_calculations:
            raise PaymentProviderError(
                f"No such tax.calculation: '{calculation_id}'",
                retryable=False,
                provider_code="resource_missing",
            )
        self._unique_reference(reference)
        txn_id = f"tax_fake_{next(self._ids)}"
        gross = self.tax_calculations[calculation_id]["gross"]
        self.tax_transactions[txn_id] = {"type": "transaction", "reference": reference,
                                         "calculation": calculation_id, "gross": gross}  # fmt: skip
        self._idempotent[idempotency_key] = (params, txn_id)
        return txn_id

    def reverse_tax_transaction(
        self,
        *,
        transaction_id: str,
        reference: str,
        flat_amount: int | None,
        idempotency_key: str,
    ) -> str:
        """Record a reversal, full or of ``flat_amount`` (never more than is left)."""
        params = {"transaction_id": transaction_id, "reference": reference,
                  "flat_amount": flat_amount}  # fmt: skip
        self._check("reverse_tax_transaction", **params, idempotency_key=idempotency_key)
        replayed = self._replay(idempotency_key, params)
        if replayed is not None:
            return str(replayed)
        original = self.tax_transactions.get(transaction_id)
        if original is None or original["type"] != "transaction":
            raise PaymentProviderError(
                f"No such tax.transaction: '{transaction_id}'",
                retryable=False,
                provider_code="resource_missing",
            )
        self._unique_reference(reference)
        taken = sum(
            t["amount"] for t in self.tax_transactions.values()
            if t.get("original") == transaction_id
        )  # fmt: skip
        amount = original["gross"] - taken if flat_amount is None else flat_amount
        if amount > original["gross"] - taken:
            raise PaymentProviderError(
                "The reversal exceeds what remains of the original transaction.",
                retryable=False,
            )
        reversal_id = f"tax_fake_{next(self._ids)}"
        self.tax_transactions[reversal_id] = {
            "type": "reversal",
            "reference": reference,
            "original": transaction_id,
            "mode": "full" if flat_amount is None else "partial",
            "amount": amount,
        }
        self._idempotent[idempotency_key] = (params, reversal_id)
        return reversal_id

    def _unique_reference(self, reference: str) -> None:
        if any(t["reference"] == reference for t in self.tax_transactions.values()):
            raise PaymentProviderError(
                f"A transaction with reference '{reference}' already exists.",
                retryable=False,
            )


def session_dict(session: CheckoutSession) -> dict[str, Any]:
    """A CheckoutSession rendered as Stripe's JSON (for webhook payloads)."""
    return {
        "id": session.id,
        "object": "checkout.session",
        "status": session.status,
        "payment_status": session.payment_status,
        "url": session.url,
        "amount_total": session.amount_total,
        "currency": session.currency,
        "expires_at": session.expires_at,
        "payment_intent": session.payment_intent,
        "metadata": dict(session.metadata),
        "mode": "payment",
    }


def intent_dict(intent: Intent) -> dict[str, Any]:
    """An Intent rendered as Stripe's PaymentIntent JSON (for webhook payloads)."""
    error = intent.last_error
    return {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "amount": intent.amount,
        "currency": intent.currency,
        "client_secret": intent.client_secret,
        "metadata": dict(intent.metadata),
        "latest_charge": intent.latest_charge,
        "capture_method": intent.capture_method,
        "amount_capturable": intent.amount_capturable,
        "amount_received": intent.amount_received,
        "cancellation_reason": intent.cancellation_reason,
        "customer": intent.customer,
        "setup_future_usage": intent.setup_future_usage,
        "last_payment_error": None
        if error is None
        else {
            "code": error.code,
            "decline_code": error.decline_code,
            "message": error.message,
            "type": error.type,
        },
    }


def _fake_tax(amount: int, basis_points: int) -> int:
    """Half-up exclusive tax, as the fake's Stripe Tax computes it."""
    return (2 * amount * basis_points + 10_000) // 20_000


class ListMailer:
    """A Mailer that keeps every message in ``sent``; ``fail_next`` makes it raise."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.failures = 0

    def send(self, message: Message) -> None:
        """Record ``message`` (or raise once per pending failure)."""
        if self.failures:
            self.failures -= 1
            raise ConnectionError("SMTP server unavailable")
        self.sent.append(message)


class RecordingJobs:
    """A :class:`~app.gateways.jobs.Jobs` that records each call as ``(name, args)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def create_payment_intent(self, order_id: str) -> None:
        """Record the call."""
        self.calls.append(("create_payment_intent", (order_id,)))

    def scripted_create_payment_intent(self, order_id: str) -> None:
        """None: the submit enqueues through :meth:`create_payment_intent`, recorded."""
        return None

    def handle_stripe_event(self, event_id: str) -> None:
        """Record the call."""
        self.calls.append(("handle_stripe_event", (event_id,)))

    def scripted_handle_stripe_event(self, event_id: str) -> None:
        """None: the webhook enqueues through :meth:`handle_stripe_event`, recorded."""
        return None

    def expire_hold(self, order_id: str, at: datetime | None = None) -> None:
        """Record the call."""
        self.calls.append(("expire_hold", (order_id, at)))

    def scripted_expire_hold(self, order_id: str, at: datetime) -> None:
        """None: the actor enqueues through :meth:`expire_hold`, recorded."""
        return None

    def send_receipt(self, outbox_id: int) -> None:
        """Record the call."""
        self.calls.append(("send_receipt", (outbox_id,)))

    def cancel_order(self, order_id: str, actor: str = "admin") -> None:
        """Record the call."""
        self.calls.append(("cancel_order", (order_id, actor)))

    def create_refund(self, refund_id: str) -> None:
        """Record the call."""
        self.calls.append(("create_refund", (refund_id,)))

    def confirm_payment(self, order_id: str, confirmation_token: str) -> None:
        """Record the call."""
        self.calls.append(("confirm_payment", (order_id, confirmation_token)))

    def capture_payment(self, order_id: str, request_id: str) -> None:
        """Record the call."""
        self.calls.append(("capture_payment", (order_id, request_id)))

    def check_authorization(self, order_id: str) -> None:
        """Record the call."""
        self.calls.append(("check_authorization", (order_id,)))

    def deliver_shop_webhook(self, delivery_id: int, at: datetime | None = None) -> None:
        """Record the call."""
        self.calls.append(("deliver_shop_webhook", (delivery_id, at)))

    def stage_dispute_evidence(self, order_id: str) -> None:
        """Record the call."""
        self.calls.append(("stage_dispute_evidence", (order_id,)))

    def sync_tax(self, order_id: str) -> None:
        """Record the call."""
        self.calls.append(("sync_tax", (order_id,)))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every recorded call of ``name``."""
        return [args for called, args in self.calls if called == name]


class Receiver:
    """The shop's backend on 127.0.0.1: records each POST, answers from a script.

    ``statuses`` are answered in turn (then 200); while ``gate`` is cleared the handler
    waits on it, a slow receiver that the test releases (no sleeps, no timings).
    """

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.gate.wait(30)
                with receiver.arrived:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append((dict(self.headers), body, status))
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered_ids(self) -> list[str]:
        """The event ids answered with a 2xx, in arrival order."""
        return [json.loads(body)["id"] for _, body, status in self.requests if status < 300]

    def attempted_ids(self) -> list[str]:
        """Every event id posted, in arrival order (retries included)."""
        return [json.loads(body)["id"] for _, body, _status in self.requests]

    def wait_for(self, count: int, timeout: float = 20) -> bool:
        """Wait until ``count`` requests were answered (True) or ``timeout`` (False)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self) -> None:
        """Stop serving."""
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


# --- builders for domain tests ---------------------------------------------------------


def stock(redis: Any, sku: str = "TEE", on_hand: int = 10, price: int = 2000) -> Any:
    """A product in the database with its Redis counter (as the catalog upsert does)."""
    from models import Product

    product = Product.create(
        sku=sku, name=f"Product {sku}", price_amount=price, currency="usd", stock_on_hand=on_hand
    )
    redis.hset("{shop}:avail", sku, on_hand)
    return product


def admit_checkout(
    redis: Any,
    items: list[tuple[str, int]] | None = None,
    *,
    email: str = "buyer@example.com",
    key: str | None = None,
    hold_ttl: int = 900,
    confirmation_token: str | None = None,
    capture_method: str = "automatic",
    user_id: str | None = None,
    save_payment_method: bool | None = None,
    hosted: bool = False,
) -> Any:
    """Admit a submission the way the submit endpoint does; returns the Submission
    (``hosted``: ``"ui": "hosted"`` with the shop's return URLs)."""
    from app.services.admission import Submission, admit

    body = {
        "items": [{"sku": sku, "quantity": qty} for sku, qty in (items or [("TEE", 2)])],
        "email": email,
        "shippingAddress": {
            "name": "Ada Buyer",
            "line1": "1 Main St",
            "city": "Springfield",
            "state": "CA",
            "postalCode": "90001",
            "country": "US",
        },
    }
    if confirmation_token:
        body["confirmationTokenId"] = confirmation_token
    if save_payment_method is not None:
        body["savePaymentMethod"] = save_payment_method
    if hosted:
        body |= {
            "ui": "hosted",
            "successUrl": "http://127.0.0.1:5000/done?session_id={CHECKOUT_SESSION_ID}",
            "cancelUrl": "http://127.0.0.1:5000/cart",
        }
    submission = Submission.create(
        body,
        idempotency_key=key or f"key-{secrets.token_hex(8)}",
        hold_ttl=hold_ttl,
        capture_method=capture_method,
        user_id=user_id,
    )
    admit(redis, submission, hold_ttl=hold_ttl, key_ttl=86400)
    return submission


def sql_sent(monkeypatch: Any) -> list[str]:
    """The first word of each statement peewee sends from now on, with a ``BEGIN`` for each
    transaction opened (its COMMIT is not listed)."""
    from models.db import database

    sent: list[str] = []
    db = database()
    execute_sql, begin = db.execute_sql, db.begin

    def counting(sql: str, params: Any = None) -> Any:
        sent.append(sql.split()[0].upper())
        return execute_sql(sql, params)

    def counting_begin(*args: Any, **kwargs: Any) -> Any:
        sent.append("BEGIN")
        return begin(*args, **kwargs)

    monkeypatch.setattr(db, "execute_sql", counting)
    monkeypatch.setattr(db, "begin", counting_begin)
    return sent


def count_waiter_calls(monkeypatch: Any) -> list[str]:
    """The waiter scripts (``waiters <mode>``) and the read model's reads (``read``) run
    from now on, in order (``monkeypatch``: pytest's)."""
    from app import lua
    from app.services import checkout_status

    calls: list[str] = []
    real_run, real_read = lua.run, checkout_status.read

    def run(redis: Any, name: str, names: Any, args: Any) -> Any:
        if name == "waiters":
            calls.append(f"{name} {args[0]}")
        return real_run(redis, name, names, args)

    def counted_read(redis: Any, order_id: str) -> Any:
        calls.append("read")
        return real_read(redis, order_id)

    monkeypatch.setattr(lua, "run", run)
    monkeypatch.setattr(checkout_status, "read", counted_read)
    return calls
