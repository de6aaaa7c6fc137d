"""ConfirmationTokens: the buyer's payment details collected by Stripe.js (or the test
helper), handed to the server, and used once to confirm a PaymentIntent.

A token carries a preview of its PaymentMethod, the ``shipping``, ``return_url`` and
``setup_future_usage`` the client chose, and expires 12 hours after creation. Using it
marks it with the PaymentIntent (``payment_intent``); a second use, or a use after
``expires_at``, is refused with a 400 ``invalid_request_error`` on ``confirmation_token``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import allowed, objects
from .errors import StripeError, invalid_request, parameter_missing, resource_missing
from .forms import Params, get_dict, get_enum, get_str, reject_unknown
from .methods import PaymentMethods
from .store import Store

Obj = dict[str, Any]

SETUP_FUTURE_USAGE = ["off_session", "on_session"]


@dataclass
class TokenUse:
    """A valid token about to confirm an intent, with the PaymentMethod behind it."""

    token: Obj
    payment_method: Obj


class ConfirmationTokens:
    """Creates, reads and spends ConfirmationTokens."""

    def __init__(self, store: Store, methods: PaymentMethods) -> None:
        self.store = store
        self.methods = methods

    def create(self, params: Params, *, from_stripe_js: bool) -> Obj:
        """``POST /v1/test_helpers/confirmation_tokens`` or Stripe.js's
        ``POST /v1/confirmation_tokens`` (``from_stripe_js``: ``use_stripe_sdk`` is true)."""
        reject_unknown(params, allowed.CONFIRMATION_TOKEN_CREATE)
        if "payment_method" in params and "payment_method_data" in params:
            raise invalid_request(
                "You may only specify one of these parameters: payment_method, "
                "payment_method_data.",
                param="payment_method",
                stored=False,
            )
        if "payment_method" not in params and "payment_method_data" not in params:
            raise parameter_missing("payment_method_data")
        pm = self.methods.from_params(params)
        assert pm is not None
        shipping = get_dict(params, "shipping")
        if shipping:
            if not shipping.get("name"):
                raise parameter_missing("shipping[name]")
            if not isinstance(shipping.get("address"), dict):
                raise parameter_missing("shipping[address]")
        mandate = get_dict(params, "mandate_data")
        token = objects.confirmation_token(
            pm,
            return_url=get_str(params, "return_url") or None,
            setup_future_usage=get_enum(params, "setup_future_usage", SETUP_FUTURE_USAGE),
            shipping_raw=shipping or None,
            use_stripe_sdk=from_stripe_js,
            mandate_data=_mandate(mandate) if mandate else None,
        )
        self.store.token_methods[token["id"]] = pm["id"]
        return self.store.insert(token)

    def get(self, token_id: str) -> Obj:
        """The token, or Stripe's 404."""
        return self.store.get("confirmation_token", token_id, param="confirmation_token")

    def check(self, token_id: str) -> TokenUse:
        """The token and its PaymentMethod, if it can still confirm a payment."""
        token = self.store.tables["confirmation_token"].get(token_id)
        if token is None:
            raise resource_missing("confirmation_token", token_id, "confirmation_token")
        if token["payment_intent"] or token["setup_intent"]:
            raise token_error(
                "This ConfirmationToken has already been used to confirm a previous "
                "PaymentIntent or SetupIntent. Create a new ConfirmationToken.",
                "confirmation_token_already_used",
            )
        if token["expires_at"] <= objects.now():
            raise token_error(
                "This ConfirmationToken has expired. Create a new ConfirmationToken.",
                "confirmation_token_expired",
            )
        pm = self.store.get(
            "payment_method", self.store.token_methods[token_id], param="confirmation_token"
        )
        return TokenUse(token, pm)

    def spend(self, use: TokenUse, intent: Obj) -> None:
        """Mark the token used by ``intent``: it confirms nothing else afterwards."""
        use.token["payment_intent"] = intent["id"]

    def expire(self, token: Obj) -> Obj:
        """Control: make the token expire now (as 12 hours passing would)."""
        token["expires_at"] = objects.now() - 1
        return token


def token_error(message: str, code: str) -> StripeError:
    """A token that cannot be used (again): 400 on ``confirmation_token``."""
    return invalid_request(message, param="confirmation_token", code=code)


def _mandate(raw: Params) -> Obj:
    """``mandate_data`` as the token shows it (online acceptance, as Stripe.js sends)."""
    acceptance = get_dict(raw, "customer_acceptance")
    online = get_dict(acceptance, "online")
    return {
        "customer_acceptance": {
            "online": {
                "ip_address": online.get("ip_address"),
                "user_agent": online.get("user_agent"),
            },
            "type": acceptance.get("type") or "online",
        }
    }
