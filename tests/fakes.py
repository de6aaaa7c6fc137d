"""In-memory stand-ins for the outside adapters, with the same Protocols as the real ones.

``FakeGateway`` keeps PaymentIntents in a dict and follows Stripe's rules where the
domain depends on them: idempotency keys, statuses, ``last_payment_error`` with
``decline_code``, refusing to cancel an intent that moved on, signed webhooks.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.errors import PaymentProviderError
from app.gateways.mail import Message
from app.gateways.payments import Intent, PaymentError
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
CANCELABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


class FakeGateway:
    """A PaymentGateway kept in memory; drive it with ``confirm``, ``settle`` and ``fail_next``."""

    def __init__(self, webhook_secret: str = "whsec_test_secret", tolerance: int = 300) -> None:
        self.webhook_secrets: tuple[str, ...] = (webhook_secret,)
        self.webhook_tolerance = tolerance
        self.intents: dict[str, Intent] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.cancellation_reasons: dict[str, str] = {}
        self.dispute_evidence: dict[str, list[dict[str, str]]] = {}  # dispute id -> staged
        self._idempotent: dict[str, Any] = {}
        self._failures: dict[str, list[PaymentProviderError]] = {}
        self._ids = itertools.count(1)

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
        if payment_method in {"pm_card_threeDSecure2Required", "pm_card_authenticationRequired"}:
            return self.set_status(intent_id, "requires_action", last_error=None)
        if payment_method == "pm_emulator_delayed":
            charge = f"ch_fake_{next(self._ids)}"
            return self.set_status(intent_id, "processing", last_error=None, latest_charge=charge)
        charge = f"ch_fake_{next(self._ids)}"
        return self.set_status(intent_id, "succeeded", last_error=None, latest_charge=charge)

    def event(self, type_: str, obj: dict[str, Any] | Intent, **extra: Any) -> dict[str, Any]:
        """A Stripe event envelope around ``obj`` (an Intent is rendered as Stripe would)."""
        data = intent_dict(obj) if isinstance(obj, Intent) else obj
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
    ) -> Intent:
        """Create an intent; a repeated key with the same parameters returns the first."""
        params = {
            "amount": amount,
            "currency": currency,
            "metadata": dict(metadata),
            "receipt_email": receipt_email,
            "description": description,
        }
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
        )
        self.intents[intent.id] = intent
        self._idempotent[f"create:{idempotency_key}"] = (params, intent.id)
        return intent

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
        return self.set_status(intent_id, "canceled")

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
        "last_payment_error": None
        if error is None
        else {
            "code": error.code,
            "decline_code": error.decline_code,
            "message": error.message,
            "type": error.type,
        },
    }


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

    def handle_stripe_event(self, event_id: str, payload: dict[str, Any]) -> None:
        """Record the call."""
        self.calls.append(("handle_stripe_event", (event_id, payload)))

    def expire_hold(self, order_id: str, at: datetime | None = None) -> None:
        """Record the call."""
        self.calls.append(("expire_hold", (order_id, at)))

    def send_receipt(self, outbox_id: int) -> None:
        """Record the call."""
        self.calls.append(("send_receipt", (outbox_id,)))

    def cancel_order(self, order_id: str) -> None:
        """Record the call."""
        self.calls.append(("cancel_order", (order_id,)))

    def create_refund(self, refund_id: str) -> None:
        """Record the call."""
        self.calls.append(("create_refund", (refund_id,)))

    def stage_dispute_evidence(self, order_id: str) -> None:
        """Record the call."""
        self.calls.append(("stage_dispute_evidence", (order_id,)))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every recorded call of ``name``."""
        return [args for called, args in self.calls if called == name]


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
) -> Any:
    """Admit a submission the way the submit endpoint does; returns the Submission."""
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
    submission = Submission.create(
        body, idempotency_key=key or f"key-{secrets.token_hex(8)}", hold_ttl=hold_ttl
    )
    admit(redis, submission, hold_ttl=hold_ttl, key_ttl=86400)
    return submission
