"""PaymentMethods: raw test card details checked as Stripe checks them, and the
``pm_card_*`` test ids turned into real PaymentMethods."""

from __future__ import annotations

import datetime
from typing import Any

from . import allowed, objects
from .cards import (
    TEST_BANK_METHODS,
    TEST_PAYMENT_METHODS,
    TEST_ROUTING_NUMBER,
    WALLETS,
    Card,
    bank_account_for,
    card_for_number,
    card_for_token,
    luhn_valid,
)
from .errors import StripeError, parameter_invalid, parameter_missing
from .forms import Params, get_dict, get_enum, get_int, get_str, merge_metadata, reject_unknown
from .store import Store

Obj = dict[str, Any]


TYPES = ["card", "us_bank_account"]


class PaymentMethods:
    """Creates and looks up PaymentMethods (cards and ACH bank accounts), remembering each
    one's test behaviour."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, params: Params) -> Obj:
        """``POST /v1/payment_methods``: ``type=card`` (raw details or a test token) or
        ``type=us_bank_account``."""
        reject_unknown(params, allowed.PAYMENT_METHOD_CREATE)
        pm_type = get_str(params, "type", required=True)
        return self.from_data(params, pm_type, "")

    def from_data(self, data: Params, pm_type: str | None, prefix: str) -> Obj:
        """A new PaymentMethod from ``type`` + its hash (``/v1/payment_methods`` or
        ``payment_method_data``); ``prefix`` names the parameters in errors."""

        def label(name: str) -> str:
            return f"{prefix}[{name}]" if prefix else name

        if pm_type not in TYPES:
            raise parameter_invalid(
                label("type"),
                f"Invalid type: the emulator supports {', '.join(TYPES)}, not `{pm_type}`.",
            )
        if pm_type not in data:
            raise parameter_missing(label(pm_type))
        if pm_type == "us_bank_account":
            return self._bank_payment_method(get_dict(data, pm_type), data, label(pm_type))
        return self._card_payment_method(get_dict(data, "card"), data, label("card"))

    def _bank_payment_method(self, raw: Params, params: Params, prefix: str) -> Obj:
        reject_unknown(
            raw,
            ("account_number", "routing_number", "account_holder_type", "account_type"),
            prefix=prefix,
        )
        number = get_str(raw, "account_number", required=True, label=f"{prefix}[account_number]")
        routing = get_str(raw, "routing_number", required=True, label=f"{prefix}[routing_number]")
        assert number is not None and routing is not None
        if not number.isdigit() or not 4 <= len(number) <= 17:
            raise parameter_invalid(f"{prefix}[account_number]", "Invalid account number.")
        if routing != TEST_ROUTING_NUMBER:
            raise parameter_invalid(
                f"{prefix}[routing_number]",
                f"Routing number must be the test routing number {TEST_ROUTING_NUMBER}.",
            )
        billing = get_dict(params, "billing_details")
        if not billing.get("name"):
            # Stripe requires the account holder's name for ACH Direct Debit.
            raise parameter_missing("billing_details[name]")
        account = bank_account_for(number)
        pm = objects.bank_payment_method(
            account,
            routing_number=routing,
            account_holder_type=get_enum(
                raw,
                "account_holder_type",
                ["individual", "company"],
                label=f"{prefix}[account_holder_type]",
            ),
            account_type=get_enum(
                raw, "account_type", ["checking", "savings"], label=f"{prefix}[account_type]"
            ),
            billing=billing,
            metadata=merge_metadata({}, params),
        )
        self.store.cards[pm["id"]] = account
        return self.store.insert(pm)

    def _card_payment_method(self, raw: Params, params: Params, prefix: str) -> Obj:
        reject_unknown(
            raw, ("number", "exp_month", "exp_year", "cvc", "token", "networks"), prefix=prefix
        )
        token = get_str(raw, "token", label=f"{prefix}[token]")
        if token is not None:
            return self._tokenised(token, params, prefix)
        number = (get_str(raw, "number", required=True, label=f"{prefix}[number]") or "").replace(
            " ", ""
        )
        exp_month = get_int(raw, "exp_month", required=True, label=f"{prefix}[exp_month]")
        exp_year = get_int(raw, "exp_year", required=True, label=f"{prefix}[exp_year]")
        cvc = get_str(raw, "cvc", label=f"{prefix}[cvc]")
        assert exp_month is not None and exp_year is not None
        if exp_year < 100:
            exp_year += 2000  # Stripe accepts two-digit years.
        if not number.isdigit() or not 12 <= len(number) <= 19:
            raise card_error("invalid_number", "Your card number is invalid.", f"{prefix}[number]")
        if not luhn_valid(number):
            raise card_error(
                "incorrect_number", "Your card number is incorrect.", f"{prefix}[number]"
            )
        today = datetime.date.today()
        if not 1 <= exp_month <= 12:
            raise card_error(
                "invalid_expiry_month",
                "Your card's expiration month is invalid.",
                f"{prefix}[exp_month]",
            )
        if exp_year < today.year or exp_year > today.year + 50:
            raise card_error(
                "invalid_expiry_year",
                "Your card's expiration year is invalid.",
                f"{prefix}[exp_year]",
            )
        if exp_year == today.year and exp_month < today.month:
            raise card_error(
                "invalid_expiry_month",
                "Your card's expiration month is invalid.",
                f"{prefix}[exp_month]",
            )
        if cvc is not None and not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise card_error(
                "invalid_cvc", "Your card's security code is invalid.", f"{prefix}[cvc]"
            )
        card = card_for_number(number)
        pm = objects.payment_method(
            card,
            exp_month,
            exp_year,
            billing=get_dict(params, "billing_details"),
            metadata=merge_metadata({}, params),
        )
        if cvc is not None:
            pm["card"]["checks"]["cvc_check"] = "pass"
        self.store.cards[pm["id"]] = card
        return self.store.insert(pm)

    def _tokenised(self, token: str, params: Params, prefix: str) -> Obj:
        """``card[token]=tok_visa`` (Stripe's test tokens); with ``wallet`` (a stand-in
        Express Checkout parameter) the card is marked as that wallet's."""
        card = card_for_token(token)
        if card is None:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such token: '{token}'",
                code="resource_missing",
                param=f"{prefix}[token]",
            )
        wallet = get_enum(params, "wallet", list(WALLETS))
        return self._fresh(card, params, wallet=wallet)

    def _fresh(self, card: Card, params: Params | None = None, wallet: str | None = None) -> Obj:
        year = datetime.date.today().year + 1
        params = params or {}
        pm = objects.payment_method(
            card,
            12,
            year,
            billing=get_dict(params, "billing_details"),
            metadata=merge_metadata({}, params),
            wallet=wallet,
        )
        self.store.cards[pm["id"]] = card
        return self.store.insert(pm)

    def get(self, pm_id: str, param: str = "payment_method") -> Obj:
        """A stored PaymentMethod, or a fresh one made from a ``pm_card_*`` test id."""
        card = TEST_PAYMENT_METHODS.get(pm_id)
        if card is not None:
            # Stripe turns a test id into a new PaymentMethod each time it is used.
            return self._fresh(card)
        bank = TEST_BANK_METHODS.get(pm_id)
        if bank is not None:
            pm = objects.bank_payment_method(
                bank,
                routing_number=TEST_ROUTING_NUMBER,
                account_holder_type="individual",
                account_type="checking",
                billing={"name": "Jenny Rosen"},
            )
            self.store.cards[pm["id"]] = bank
            return self.store.insert(pm)
        return self.store.get("payment_method", pm_id, param=param, noun="PaymentMethod")

    def from_params(self, params: Params) -> Obj | None:
        """The PaymentMethod a confirm names: ``payment_method_data`` or ``payment_method``."""
        if "payment_method_data" in params:
            data = get_dict(params, "payment_method_data")
            if "payment_method" in data:  # Stripe.js may pass a created pm through here.
                return self.get(str(data["payment_method"]), "payment_method_data[payment_method]")
            pm_type = get_str(data, "type", required=True, label="payment_method_data[type]")
            return self.from_data(data, pm_type, "payment_method_data")
        pm_id = get_str(params, "payment_method")
        return self.get(pm_id) if pm_id else None


def card_error(code: str, message: str, param: str) -> StripeError:
    """A 402 card_error raised while reading raw card details."""
    return StripeError(402, "card_error", message, code=code, param=param)
