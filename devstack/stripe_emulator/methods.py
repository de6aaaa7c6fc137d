"""PaymentMethods: raw test card details checked as Stripe checks them, and the
``pm_card_*`` test ids turned into real PaymentMethods."""

from __future__ import annotations

import datetime
from typing import Any

from . import allowed, objects
from .cards import TEST_PAYMENT_METHODS, card_for_number, luhn_valid
from .errors import StripeError, parameter_invalid, parameter_missing
from .forms import Params, get_dict, get_int, get_str, merge_metadata, reject_unknown
from .store import Store

Obj = dict[str, Any]


class PaymentMethods:
    """Creates and looks up card PaymentMethods, remembering each one's test behaviour."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, params: Params) -> Obj:
        """``POST /v1/payment_methods`` with ``type=card`` and raw card details."""
        reject_unknown(params, allowed.PAYMENT_METHOD_CREATE)
        pm_type = get_str(params, "type", required=True)
        if pm_type != "card":
            raise parameter_invalid(
                "type", f"Invalid type: the emulator only supports `card`, not `{pm_type}`."
            )
        if "card" not in params:
            raise parameter_missing("card")
        return self._card_payment_method(get_dict(params, "card"), params, "card")

    def _card_payment_method(self, raw: Params, params: Params, prefix: str) -> Obj:
        reject_unknown(
            raw, ("number", "exp_month", "exp_year", "cvc", "token", "networks"), prefix=prefix
        )
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

    def get(self, pm_id: str, param: str = "payment_method") -> Obj:
        """A stored PaymentMethod, or a fresh one made from a ``pm_card_*`` test id."""
        card = TEST_PAYMENT_METHODS.get(pm_id)
        if card is None:
            return self.store.get("payment_method", pm_id, param=param, noun="PaymentMethod")
        # Stripe turns a test id into a new PaymentMethod each time it is used.
        year = datetime.date.today().year + 1
        pm = objects.payment_method(card, 12, year)
        self.store.cards[pm["id"]] = card
        return self.store.insert(pm)

    def from_params(self, params: Params) -> Obj | None:
        if "payment_method_data" in params:
            data = get_dict(params, "payment_method_data")
            if data.get("type") != "card":
                raise parameter_invalid(
                    "payment_method_data[type]", "Only `card` payment_method_data is supported."
                )
            if "payment_method" in data:  # Stripe.js may pass a created pm through here.
                return self.get(str(data["payment_method"]), "payment_method_data[payment_method]")
            return self._card_payment_method(
                get_dict(data, "card"), data, "payment_method_data[card]"
            )
        pm_id = get_str(params, "payment_method")
        return self.get(pm_id) if pm_id else None


def card_error(code: str, message: str, param: str) -> StripeError:
    """A 402 card_error raised while reading raw card details."""
    return StripeError(402, "card_error", message, code=code, param=param)
