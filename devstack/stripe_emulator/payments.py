"""PaymentMethods and the PaymentIntent status machine.

``requires_payment_method → requires_confirmation → requires_action → processing →
succeeded``, with ``requires_capture`` for manual capture and ``canceled``. A decline
sends the intent back to ``requires_payment_method`` with ``last_payment_error`` and
answers the confirming call with a 402 ``card_error``. Every method here runs under the
store's lock (the API layer takes it) and emits the events Stripe emits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from . import allowed, objects
from .cards import BANK_FAILURES, DECLINES, Card, card_for_number
from .customers import Customers
from .errors import (
    StripeError,
    invalid_request,
    parameter_invalid,
    parameter_missing,
    unexpected_state,
)
from .forms import (
    Params,
    get_bool,
    get_dict,
    get_enum,
    get_int,
    get_list,
    get_str,
    merge_metadata,
    reject_unknown,
)
from .methods import PaymentMethods
from .scheduler import Scheduler
from .store import Store, snapshot
from .tokens import ConfirmationTokens, TokenUse

Obj = dict[str, Any]

# Smallest chargeable amount per currency (minor units), from Stripe's currency docs.
MINIMUM_AMOUNT = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "pyg", "xaf", "xof", "ugx", "rwf", "kmf", "gnf"}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "$", "aud": "$", "jpy": "¥"}
MAXIMUM_AMOUNT = 99_999_999
CANCELABLE = [
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
]
CONFIRMABLE = {"requires_payment_method", "requires_confirmation", "requires_action"}
CANCELLATION_REASONS = ["duplicate", "fraudulent", "requested_by_customer", "abandoned"]
CAPTURE_METHODS = ["automatic", "automatic_async", "manual"]
PAYMENT_METHOD_TYPES = ["card", "us_bank_account"]


@dataclass
class Timing:
    """Delays for work Stripe does in the background (seconds)."""

    async_delay: float = 1.0
    # How long a card authorisation (manual capture) stays capturable: 7 days at Stripe.
    authorization_window: float = objects.CARD_AUTHORIZATION_WINDOW
    # Bank debits settle on their own after this long (None: only the control endpoint).
    bank_debit_settle: float | None = None


def format_amount(amount: int, currency: str) -> str:
    """Money as Stripe writes it in messages: ``$12.00``."""
    text = f"{amount}" if currency in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


class Payments:
    """PaymentMethod creation and every PaymentIntent call, on top of the store."""

    def __init__(self, store: Store, scheduler: Scheduler, timing: Timing) -> None:
        self.store = store
        self.scheduler = scheduler
        self.timing = timing
        self.methods = PaymentMethods(store)
        self.tokens = ConfirmationTokens(store, self.methods)
        self.customers = Customers(store)

    # --- PaymentIntents ---------------------------------------------------------------

    def create_intent(self, params: Params, base_url: str) -> Obj:
        """``POST /v1/payment_intents``; confirms at once when ``confirm=true``."""
        reject_unknown(params, allowed.PAYMENT_INTENT_CREATE)
        amount = get_int(params, "amount", required=True)
        currency = (get_str(params, "currency", required=True) or "").lower()
        assert amount is not None
        self._check_amount(amount, currency)
        capture_method = get_enum(params, "capture_method", CAPTURE_METHODS) or "automatic"
        apm = get_dict(params, "automatic_payment_methods")
        types = get_list(params, "payment_method_types")
        automatic = None
        if apm:
            reject_unknown(apm, ("enabled", "allow_redirects"), prefix="automatic_payment_methods")
            enabled = get_bool(apm, "enabled", label="automatic_payment_methods[enabled]")
            if enabled is None:
                raise parameter_missing("automatic_payment_methods[enabled]")
            if enabled and types:
                raise invalid_request(
                    "You may only specify one of these parameters: automatic_payment_methods, "
                    "payment_method_types.",
                    param="automatic_payment_methods",
                    stored=False,
                )
            redirects = get_enum(
                apm,
                "allow_redirects",
                ["always", "never"],
                label="automatic_payment_methods[allow_redirects]",
            )
            automatic = (
                {"allow_redirects": redirects or "always", "enabled": enabled} if enabled else None
            )
        unsupported = [t for t in types if t not in PAYMENT_METHOD_TYPES]
        if unsupported:
            raise parameter_invalid(
                "payment_method_types",
                f"The emulator supports the payment method types {', '.join(PAYMENT_METHOD_TYPES)}"
                f", not `{unsupported[0]}`.",
            )
        confirm = get_bool(params, "confirm") or False
        token_id = get_str(params, "confirmation_token")
        if token_id and not confirm:
            raise invalid_request(
                "You can only provide a `confirmation_token` when `confirm` is `true`.",
                param="confirmation_token",
                stored=False,
            )
        if automatic:
            types = ["card", "us_bank_account"] if currency == "usd" else ["card"]
        intent = objects.payment_intent(
            amount,
            currency,
            capture_method=capture_method,
            automatic_payment_methods=automatic,
            payment_method_types=types or ["card"],
        )
        token = self.tokens.check(token_id) if token_id else None
        self._apply_common(intent, params)
        pm = self.methods.from_params(params)
        if token is not None:
            pm = self._apply_token(intent, params, token, pm)
        if confirm and pm is None:
            raise missing_payment_method(None)
        if pm is not None:
            intent["payment_method"] = pm["id"]
            intent["status"] = "requires_confirmation"
        self.store.insert(intent)
        self.store.emit("payment_intent.created", intent)
        if confirm:
            self._confirm(intent, params, base_url, token)
        return intent

    def _apply_token(self, intent: Obj, params: Params, use: TokenUse, pm: Obj | None) -> Obj:
        """What a ConfirmationToken brings to a confirm; the request's own parameters win,
        as at Stripe."""
        token = use.token
        if token["shipping"] and "shipping" not in params:
            intent["shipping"] = objects.shipping(token["shipping"])
        if token["setup_future_usage"] and "setup_future_usage" not in params:
            intent["setup_future_usage"] = token["setup_future_usage"]
        return pm or use.payment_method

    def update_intent(self, intent: Obj, params: Params) -> Obj:
        """``POST /v1/payment_intents/<id>``."""
        reject_unknown(params, allowed.PAYMENT_INTENT_UPDATE)
        money_fields = {
            "amount",
            "currency",
            "payment_method",
            "payment_method_data",
            "capture_method",
        }
        if money_fields & params.keys() and intent["status"] not in CONFIRMABLE:
            raise unexpected_state(
                f"This PaymentIntent's {sorted(money_fields & params.keys())[0]} could not be "
                f"updated because it has a status of {intent['status']}. You may only update the "
                "amount of a PaymentIntent with one of the following statuses: "
                "requires_payment_method, requires_confirmation, requires_action.",
                intent,
            )
        amount = get_int(params, "amount")
        currency = get_str(params, "currency")
        if amount is not None or currency:
            self._check_amount(
                amount if amount is not None else intent["amount"],
                (currency or intent["currency"]).lower(),
            )
        if amount is not None:
            intent["amount"] = amount
        if currency:
            intent["currency"] = currency.lower()
        method = get_enum(params, "capture_method", CAPTURE_METHODS)
        if method:
            intent["capture_method"] = method
        self._apply_common(intent, params)
        pm = self.methods.from_params(params)
        if pm is not None:
            intent["payment_method"] = pm["id"]
            intent["status"] = "requires_confirmation"
            intent["next_action"] = None
        intent["last_payment_error"] = None
        return intent

    def _apply_common(self, intent: Obj, params: Params) -> None:
        intent["metadata"] = merge_metadata(intent["metadata"], params)
        for field in (
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
            "customer",
        ):
            if field in params:
                value = get_str(params, field)
                if field == "customer" and value:
                    self.customers.get(value)  # 404 for an unknown or deleted Customer
                intent[field] = value or None
        if "setup_future_usage" in params:
            intent["setup_future_usage"] = get_enum(
                params, "setup_future_usage", ["off_session", "on_session"]
            )
        if "shipping" in params:
            shipping = get_dict(params, "shipping")
            intent["shipping"] = objects.shipping(shipping) if shipping else None

    def _check_amount(self, amount: int, currency: str) -> None:
        if len(currency) != 3 or not currency.isalpha():
            raise parameter_invalid("currency", f"Invalid currency: {currency}.")
        minimum = MINIMUM_AMOUNT.get(currency, 50)
        if amount < minimum:
            raise parameter_invalid(
                "amount",
                f"Amount must be at least {format_amount(minimum, currency)} {currency}",
                code="amount_too_small",
            )
        if amount > MAXIMUM_AMOUNT:
            raise parameter_invalid(
                "amount",
                f"Amount must be no more than {format_amount(MAXIMUM_AMOUNT, currency)}",
                code="amount_too_large",
            )

    def confirm(self, intent: Obj, params: Params, base_url: str) -> Obj:
        """``POST /v1/payment_intents/<id>/confirm``."""
        reject_unknown(params, allowed.PAYMENT_INTENT_CONFIRM)
        if intent["status"] not in CONFIRMABLE:
            raise unexpected_state(
                f"You cannot confirm this PaymentIntent because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
                "be confirmed: requires_confirmation, requires_action, requires_payment_method.",
                intent,
            )
        token_id = get_str(params, "confirmation_token")
        token = self.tokens.check(token_id) if token_id else None
        pm = self.methods.from_params(params)
        if token is not None:
            pm = self._apply_token(intent, params, token, pm)
        if pm is not None:
            intent["payment_method"] = pm["id"]
        self._apply_common(intent, params)
        method = get_enum(params, "capture_method", CAPTURE_METHODS)
        if method:
            intent["capture_method"] = method
        if intent["payment_method"] is None:
            raise missing_payment_method(intent)
        self._confirm(intent, params, base_url, token)
        return intent

    def _confirm(
        self, intent: Obj, params: Params, base_url: str, token: TokenUse | None = None
    ) -> None:
        return_url = get_str(params, "return_url") or (token.token["return_url"] if token else None)
        apm = intent["automatic_payment_methods"]
        from_stripe_js = get_bool(params, "use_stripe_sdk") or "key" in params
        if apm and apm["allow_redirects"] == "always" and not return_url and not from_stripe_js:
            raise invalid_request(
                "This PaymentIntent is configured to accept payment methods enabled in your "
                "Dashboard. Because some of these payment methods might redirect your customer "
                "off of your page, you must provide a `return_url`. If you don't want to accept "
                "redirect-based payment methods, set `automatic_payment_methods[enabled]` to "
                "`true` and `automatic_payment_methods[allow_redirects]` to `never` when "
                "creating Setup Intents and Payment Intents.",
                param="return_url",
            )
        pm = self.store.get("payment_method", intent["payment_method"], param="payment_method")
        if pm["type"] not in intent["payment_method_types"]:
            raise invalid_request(
                f"The PaymentMethod provided ({pm['type']}) is not allowed for this "
                "PaymentIntent. Please attach a PaymentMethod of one of the following types: "
                f"{', '.join(intent['payment_method_types'])}. Alternatively update the allowed "
                f'payment_method_types for this PaymentIntent to include "{pm["type"]}".',
                param="payment_method",
                code="payment_intent_incompatible_payment_method",
            )
        if pm["customer"] is not None and pm["customer"] != intent["customer"]:
            raise invalid_request(
                "The provided PaymentMethod belongs to another Customer; a saved "
                "PaymentMethod can only pay for its own Customer's PaymentIntents.",
                param="payment_method",
            )
        if token is not None:
            # From here on the attempt happens: the token is spent whatever its outcome.
            self.tokens.spend(token, intent)
        intent["last_payment_error"] = None
        intent["next_action"] = None
        card = self.store.cards.get(pm["id"]) or card_for_number("4242424242424242")
        if card.three_d_secure:
            self._require_action(intent, pm, base_url, return_url)
            return
        self._attempt(intent, pm, card)

    def _require_action(self, intent: Obj, pm: Obj, base_url: str, return_url: str | None) -> None:
        authenticate_url = (
            f"{base_url.rstrip('/')}/_emulator/payment_intents/{intent['id']}/authenticate"
        )
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": authenticate_url,
                "source": objects.new_id("src"),
                "known_frame_issues": "false",
                # Emulator extras for the Stripe.js stand-in: where to post the outcome.
                "emulator_authenticate_url": authenticate_url,
                "return_url": return_url,
            },
        }
        self.store.emit("payment_intent.requires_action", intent)

    def _attempt(self, intent: Obj, pm: Obj, card: Card) -> None:
        """Charge the card: succeed, decline (402), or wait in processing (bank debits)."""
        if card.delayed or card.bank:
            ch = self.store.insert(self._charge(intent, pm, status="pending"))
            intent.update(status="processing", latest_charge=ch["id"])
            # Stripe fills ``processing`` for cards only (the 2023 schema's one type).
            intent["processing"] = None if card.bank else {"card": {}, "type": "card"}
            self.store.emit("charge.pending", ch)
            self.store.emit("payment_intent.processing", intent)
            delay = self.timing.bank_debit_settle
            if card.bank and delay is not None:
                intent_id, charge_id = intent["id"], ch["id"]
                self.scheduler.call_later(delay, lambda: self._auto_settle(intent_id, charge_id))
            return
        if card.decline:
            self._decline(intent, pm, card.decline)
        ch = self.store.insert(self._charge(intent, pm, status="succeeded"))
        intent["latest_charge"] = ch["id"]
        self._succeeded(intent, ch, card)

    def _charge(self, intent: Obj, pm: Obj, *, status: str) -> Obj:
        return objects.charge(
            intent, pm, status=status, authorization_window=int(self.timing.authorization_window)
        )

    def _succeeded(self, intent: Obj, ch: Obj, card: Card) -> None:
        intent["processing"] = None
        self._save_for_future(intent)
        self.store.emit("charge.succeeded", ch)
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self.store.emit("payment_intent.amount_capturable_updated", intent)
            intent_id, charge_id = intent["id"], ch["id"]
            self.scheduler.call_later(
                self.timing.authorization_window,
                lambda: self._expire_when_due(intent_id, charge_id),
            )
        else:
            intent.update(status="succeeded", amount_received=intent["amount"])
            self.store.emit("payment_intent.succeeded", intent)
        if card.dispute:
            charge_id = ch["id"]
            self.scheduler.call_later(
                self.timing.async_delay, lambda: self._open_dispute(charge_id)
            )

    def _save_for_future(self, intent: Obj) -> None:
        """``setup_future_usage`` with a Customer: the paying method is saved on it.

        ``allow_redisplay`` becomes ``limited`` (a server-set ``setup_future_usage``, no
        consent checkbox) unless the method already says otherwise, as at Stripe.
        """
        if not intent["setup_future_usage"] or not intent["customer"]:
            return
        pm = self.store.tables["payment_method"].get(intent["payment_method"] or "")
        if pm is not None and pm["customer"] is None and pm["id"] not in self.store.detached:
            self.customers.attach_to(pm, intent["customer"], allow_redisplay="limited")

    def _decline(self, intent: Obj, pm: Obj, decline_key: str, charge: Obj | None = None) -> None:
        decline = DECLINES[decline_key]
        if charge is None:
            charge = self.store.insert(objects.charge(intent, pm, status="failed", decline=decline))
        intent["latest_charge"] = charge["id"]
        intent.update(
            status="requires_payment_method", payment_method=None, next_action=None, processing=None
        )
        intent["last_payment_error"] = objects.payment_error(decline, pm, charge["id"])
        self.store.emit("charge.failed", charge)
        self.store.emit("payment_intent.payment_failed", intent)
        raise StripeError(
            402,
            "card_error",
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            param=decline.param,
            payment_intent=snapshot(intent),
            payment_method=pm,
            charge=charge["id"],
        )

    def _open_dispute(self, charge_id: str) -> None:
        with self.store.lock:
            ch = self.store.tables["charge"].get(charge_id)
            if ch is None or ch["disputed"]:
                return
            ch["disputed"] = True
            dp = self.store.insert(objects.dispute(ch))
            self.store.emit("charge.dispute.created", dp)

    def cancel(self, intent: Obj, params: Params) -> Obj:
        """``POST /v1/payment_intents/<id>/cancel``."""
        reject_unknown(params, ("cancellation_reason", "expand"))
        reason = get_enum(params, "cancellation_reason", CANCELLATION_REASONS)
        if intent["status"] not in CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                f"may be canceled: {', '.join(CANCELABLE)}, processing.",
                intent,
            )
        if intent["status"] == "requires_capture" and intent["latest_charge"]:
            # Canceling an authorisation releases it: Stripe refunds the uncaptured charge.
            ch = self.store.get("charge", intent["latest_charge"])
            ch.update(amount_refunded=ch["amount"], refunded=True)
            self.store.emit("charge.refunded", ch)
        intent.update(
            status="canceled",
            cancellation_reason=reason,
            canceled_at=objects.now(),
            amount_capturable=0,
            next_action=None,
        )
        self.store.emit("payment_intent.canceled", intent)
        return intent

    def capture(self, intent: Obj, params: Params) -> Obj:
        """``POST /v1/payment_intents/<id>/capture`` (full or partial)."""
        reject_unknown(
            params,
            (
                "amount_to_capture",
                "metadata",
                "expand",
                "statement_descriptor",
                "statement_descriptor_suffix",
                "final_capture",
            ),
        )
        if intent["status"] != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                "may be captured: requires_capture.",
                intent,
            )
        amount = get_int(params, "amount_to_capture", minimum=1)
        amount = intent["amount_capturable"] if amount is None else amount
        if amount > intent["amount_capturable"]:
            raise parameter_invalid(
                "amount_to_capture",
                "The amount to capture must be less than or equal to the amount_capturable "
                f"({intent['amount_capturable']}).",
                code="amount_too_large",
            )
        intent["metadata"] = merge_metadata(intent["metadata"], params)
        ch = self.store.get("charge", intent["latest_charge"])
        ch.update(
            captured=True,
            amount_captured=amount,
            amount_refunded=ch["amount"] - amount,
            balance_transaction=objects.new_id("txn"),
        )
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.store.emit("charge.captured", ch)
        self.store.emit("payment_intent.succeeded", intent)
        return intent

    # --- control: 3-D Secure and settlement ---------------------------------------------

    def authenticate(self, intent: Obj, outcome: str) -> Obj:
        """Finish 3-D Secure: ``complete`` charges the card, ``fail`` ends the attempt."""
        if intent["status"] != "requires_action":
            raise unexpected_state(
                f"This PaymentIntent has a status of {intent['status']}; only a PaymentIntent "
                "in requires_action can be authenticated.",
                intent,
            )
        pm = self.store.get("payment_method", intent["payment_method"], param="payment_method")
        intent["next_action"] = None
        if outcome == "fail":
            intent.update(status="requires_payment_method", payment_method=None)
            intent["last_payment_error"] = objects.authentication_error(pm)
            self.store.emit("payment_intent.payment_failed", intent)
            return intent
        card = self.store.cards.get(pm["id"]) or card_for_number("4242424242424242")
        # A decline after 3-D Secure lands in last_payment_error, as with Stripe.js.
        with contextlib.suppress(StripeError):
            self._attempt(intent, pm, card)
        return intent

    def settle(self, intent: Obj, outcome: str, failure_code: str | None = None) -> Obj:
        """Finish a ``processing`` payment: ``succeeded`` or ``failed``.

        A failed bank debit fails with ``failure_code`` (default: the test account's own,
        else ``insufficient_funds``); a failed delayed card with ``generic_decline``.
        """
        if intent["status"] != "processing":
            raise unexpected_state(
                f"This PaymentIntent has a status of {intent['status']}; only a processing "
                "PaymentIntent can be settled.",
                intent,
            )
        ch = self.store.get("charge", intent["latest_charge"])
        pm = self.store.get("payment_method", intent["payment_method"], param="payment_method")
        card = self.store.cards.get(pm["id"]) or card_for_number("4242424242424242")
        if outcome == "failed" and card.bank:
            self._bank_debit_failed(intent, pm, ch, failure_code or card.bank_failure)
            return intent
        if outcome == "failed":
            decline = DECLINES["generic_decline"]
            failed = objects.charge(intent, pm, status="failed", decline=decline)
            ch.update(
                status="failed",
                paid=False,
                failure_code=failed["failure_code"],
                failure_message=failed["failure_message"],
                outcome=failed["outcome"],
            )
            with contextlib.suppress(StripeError):
                self._decline(intent, pm, "generic_decline", charge=ch)
            return intent
        captured = intent["capture_method"] != "manual"
        ch.update(
            status="succeeded",
            paid=True,
            captured=captured,
            amount_captured=ch["amount"] if captured else 0,
            balance_transaction=objects.new_id("txn") if captured else None,
        )
        self._succeeded(intent, ch, card)
        return intent

    def _bank_debit_failed(self, intent: Obj, pm: Obj, ch: Obj, code: str | None) -> None:
        """An ACH debit came back unpaid: the buyer must pay another way."""
        failure = BANK_FAILURES[code or "insufficient_funds"]
        ch.update(
            status="failed",
            paid=False,
            failure_code=failure.code,
            failure_message=failure.message,
            outcome=objects.charge_outcome(None, failed=True),
        )
        intent.update(
            status="requires_payment_method", payment_method=None, next_action=None, processing=None
        )
        intent["last_payment_error"] = objects.bank_payment_error(failure, pm, ch["id"])
        self.store.emit("charge.failed", ch)
        self.store.emit("payment_intent.payment_failed", intent)

    def _auto_settle(self, intent_id: str, charge_id: str) -> None:
        """The auto-settle delay ran out: the bank answers as its test account says."""
        with self.store.lock:
            intent = self.store.tables["payment_intent"].get(intent_id)
            if intent is None or intent["status"] != "processing":
                return
            if intent["latest_charge"] != charge_id:
                return
            card = self.store.cards.get(str(intent["payment_method"]))
            failed = card is not None and card.bank_failure is not None
            self.settle(intent, "failed" if failed else "succeeded")

    def expire_authorization(self, intent: Obj) -> Obj:
        """The card authorisation lapsed uncaptured (``capture_before`` passed): Stripe
        cancels the intent (``cancellation_reason: automatic``) and releases the funds."""
        if intent["status"] != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent has a status of {intent['status']}; only a PaymentIntent "
                "in requires_capture holds an authorisation that can expire.",
                intent,
            )
        ch = self.store.get("charge", intent["latest_charge"])
        ch.update(amount_refunded=ch["amount"], refunded=True)
        self.store.emit("charge.expired", ch)
        intent.update(
            status="canceled",
            cancellation_reason="automatic",
            canceled_at=objects.now(),
            amount_capturable=0,
            next_action=None,
        )
        self.store.emit("payment_intent.canceled", intent)
        return intent

    def _expire_when_due(self, intent_id: str, charge_id: str) -> None:
        with self.store.lock:
            intent = self.store.tables["payment_intent"].get(intent_id)
            if intent is None or intent["status"] != "requires_capture":
                return
            if intent["latest_charge"] == charge_id:
                self.expire_authorization(intent)


def missing_payment_method(intent: Obj | None) -> StripeError:
    """Confirming needs a payment method."""
    return unexpected_state(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
        "either update the PaymentIntent with a payment method and then confirm it again, or "
        "confirm it again directly with a payment method.",
        intent,
    )
