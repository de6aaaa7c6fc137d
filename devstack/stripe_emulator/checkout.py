"""Checkout Sessions: create, expire, pay (the hosted page and the control endpoint).

A session holds its priced lines and shipping; paying creates its PaymentIntent (one per
session, reused for a retry after a decline) and confirms it through the same code the
PaymentIntent API uses, so test cards, 3-D Secure and bank debits behave as they do there.
The session follows its intent through the store's event hook: ``payment_intent.succeeded``
completes it ``paid``, ``.processing`` completes it ``unpaid`` (a bank debit), and a later
settlement emits ``checkout.session.async_payment_succeeded`` / ``_failed``.
"""

from __future__ import annotations

from typing import Any

from . import objects
from .errors import invalid_request, parameter_invalid, parameter_missing
from .forms import (
    Params,
    get_dict,
    get_enum,
    get_int,
    get_str,
    merge_metadata,
    reject_unknown,
)
from .payments import Payments
from .scheduler import Scheduler
from .store import Store

Obj = dict[str, Any]

SESSION_CREATE = {
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "customer_email",
    "client_reference_id",
    "metadata",
    "payment_intent_data",
    "shipping_options",
    "expires_at",
    "currency",
    "payment_method_types",
    "expand",
    "locale",
    "submit_type",
    "discounts",
}
# Stripe: a session expires 30 minutes to 24 hours after it is created.
MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 3600
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


class CheckoutSessions:
    """Every Checkout Session call, on top of the store and the PaymentIntent machine."""

    def __init__(self, store: Store, payments: Payments, scheduler: Scheduler) -> None:
        self.store = store
        self.payments = payments
        self.scheduler = scheduler
        store.observers.append(self._on_event)

    # --- API --------------------------------------------------------------------------

    def create(self, params: Params, base_url: str) -> Obj:
        """``POST /v1/checkout/sessions`` (mode ``payment`` with ``price_data`` lines)."""
        reject_unknown(params, SESSION_CREATE)
        mode = get_enum(params, "mode", ["payment", "setup", "subscription"])
        if mode is None:
            raise parameter_missing("mode")
        if mode != "payment":
            raise parameter_invalid("mode", "The emulator supports mode `payment` only.")
        success_url = get_str(params, "success_url", required=True) or ""
        cancel_url = get_str(params, "cancel_url")
        for name, url in (("success_url", success_url), ("cancel_url", cancel_url)):
            if url is not None and not url.startswith(("http://", "https://")):
                raise parameter_invalid(name, "Not a valid URL")
        lines = self._lines(params)
        currency = lines[0]["currency"]
        shipping = self._shipping(params, currency)
        coupon = self._coupon(params, currency)
        created = objects.now()
        expires_at = get_int(params, "expires_at")
        if expires_at is None:
            expires_at = created + MAX_EXPIRY
        elif not created + MIN_EXPIRY <= expires_at <= created + MAX_EXPIRY:
            raise parameter_invalid(
                "expires_at",
                "The `expires_at` timestamp must be at least 30 minutes and at most 24 hours "
                "from Checkout Session creation.",
            )
        pi_data = get_dict(params, "payment_intent_data")
        reject_unknown(
            pi_data, ("metadata", "description", "capture_method"), "payment_intent_data"
        )
        session = checkout_session(
            lines,
            shipping,
            currency=currency,
            success_url=success_url,
            cancel_url=cancel_url,
            customer_email=get_str(params, "customer_email"),
            client_reference_id=get_str(params, "client_reference_id"),
            metadata=merge_metadata({}, params),
            created=created,
            expires_at=expires_at,
            base_url=base_url,
            payment_method_types=["card", "us_bank_account"] if currency == "usd" else ["card"],
            coupon=coupon,
        )
        self.payments._check_amount(session["amount_total"], currency)
        self.store.insert(session)
        self.store.session_items[session["id"]] = [line_item(line) for line in lines]
        self.store.session_intent_data[session["id"]] = {
            "metadata": merge_metadata({}, pi_data),
            "description": get_str(pi_data, "description"),
            "capture_method": get_enum(
                pi_data, "capture_method", ["automatic", "manual"], label="capture_method"
            ),
        }
        session_id = session["id"]
        self.scheduler.call_later(expires_at - created, lambda: self._expire_when_due(session_id))
        return session

    def _lines(self, params: Params) -> list[Obj]:
        raw = params.get("line_items")
        if not raw:
            raise parameter_missing("line_items")
        if not isinstance(raw, list):
            raise parameter_invalid("line_items", "Invalid array")
        lines = []
        for i, line in enumerate(raw):
            label = f"line_items[{i}]"
            if not isinstance(line, dict):
                raise parameter_invalid(label, "Invalid hash")
            reject_unknown(line, ("price_data", "quantity"), label)
            data = get_dict(line, "price_data")
            if not data:
                raise invalid_request(
                    f"You must specify either `price` or `price_data` in `{label}`.",
                    param=f"{label}[price_data]",
                )
            reject_unknown(
                data, ("currency", "unit_amount", "product_data"), f"{label}[price_data]"
            )
            product = get_dict(data, "product_data")
            name = get_str(
                product, "name", required=True, label=f"{label}[price_data][product_data][name]"
            )
            lines.append(
                {
                    "name": name,
                    "currency": (
                        get_str(
                            data, "currency", required=True, label=f"{label}[price_data][currency]"
                        )
                        or ""
                    ).lower(),
                    "unit_amount": get_int(
                        data,
                        "unit_amount",
                        required=True,
                        minimum=0,
                        label=f"{label}[price_data][unit_amount]",
                    ),
                    "quantity": get_int(
                        line, "quantity", required=True, minimum=1, label=f"{label}[quantity]"
                    ),
                }
            )
        if len({line["currency"] for line in lines}) > 1:
            raise parameter_invalid("line_items", "All line items must have the same currency.")
        return lines

    def _coupon(self, params: Params, currency: str) -> Obj | None:
        """``discounts[0][coupon]``: one coupon for the whole session (redeemed once)."""
        raw = params.get("discounts")
        if not raw:
            return None
        if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
            raise parameter_invalid("discounts", "The emulator takes exactly one discount.")
        reject_unknown(raw[0], ("coupon",), "discounts[0]")
        coupon_id = get_str(raw[0], "coupon", required=True, label="discounts[0][coupon]")
        coupon = self.store.get("coupon", coupon_id or "", param="discounts[0][coupon]")
        if not coupon["valid"]:
            raise parameter_invalid("discounts[0][coupon]", f"Coupon {coupon_id} is not valid.")
        if coupon["amount_off"] is not None and coupon["currency"] != currency:
            raise parameter_invalid(
                "discounts[0][coupon]", "The coupon's currency is not the session's."
            )
        coupon["times_redeemed"] += 1
        if coupon["max_redemptions"] and coupon["times_redeemed"] >= coupon["max_redemptions"]:
            coupon["valid"] = False
        return coupon

    def _shipping(self, params: Params, currency: str) -> Obj | None:
        raw = params.get("shipping_options")
        if not raw:
            return None
        if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
            raise parameter_invalid(
                "shipping_options", "The emulator takes exactly one shipping option."
            )
        rate = get_dict(raw[0], "shipping_rate_data")
        label = "shipping_options[0][shipping_rate_data]"
        reject_unknown(rate, ("type", "fixed_amount", "display_name"), label)
        fixed = get_dict(rate, "fixed_amount")
        amount = get_int(
            fixed, "amount", required=True, minimum=0, label=f"{label}[fixed_amount][amount]"
        )
        rate_currency = (
            get_str(fixed, "currency", required=True, label=f"{label}[fixed_amount][currency]")
            or ""
        ).lower()
        if rate_currency != currency:
            raise parameter_invalid(f"{label}[fixed_amount][currency]", "Currency mismatch.")
        return {
            "id": objects.new_id("shr"),
            "amount": amount,
            "display_name": get_str(
                rate, "display_name", required=True, label=f"{label}[display_name]"
            ),
        }

    def expire(self, session: Obj) -> Obj:
        """``POST /v1/checkout/sessions/<id>/expire``: only an open session expires."""
        if session["status"] != "open":
            raise invalid_request(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".'
            )
        intent_id = session["payment_intent"]
        if intent_id:
            intent = self.store.get("payment_intent", intent_id)
            if intent["status"] in (
                "requires_payment_method",
                "requires_action",
                "requires_confirmation",
            ):
                self.payments.cancel(intent, {})
        session.update(status="expired", url=None)
        self.store.emit("checkout.session.expired", session)
        return session

    def _expire_when_due(self, session_id: str) -> None:
        with self.store.lock:
            session = self.store.tables["checkout.session"].get(session_id)
            if session is not None and session["status"] == "open":
                self.expire(session)

    # --- paying -----------------------------------------------------------------------

    def pay(self, session: Obj, pm: Obj, base_url: str) -> Obj:
        """Pay as the hosted page does; a decline raises the 402, the session stays open."""
        if session["status"] != "open":
            raise invalid_request(
                f"This Checkout Session is {session['status']}; it can no longer be paid."
            )
        intent = self._intent(session)
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise invalid_request(
                f"This Checkout Session's payment is {intent['status']}; it cannot be paid again."
            )
        intent["payment_method"] = pm["id"]
        if session["customer_details"] is None or not session["customer_details"]["email"]:
            session["customer_details"] = customer_details(session["customer_email"])
        self.payments.confirm(intent, {"payment_method": pm["id"]}, base_url)
        return intent

    def _intent(self, session: Obj) -> Obj:
        """The session's PaymentIntent, created at the first attempt (as at Stripe)."""
        if session["payment_intent"]:
            return self.store.get("payment_intent", session["payment_intent"])
        extra = self.store.session_intent_data[session["id"]]
        params: Params = {
            "amount": str(session["amount_total"]),
            "currency": session["currency"],
            "payment_method_types": session["payment_method_types"],
            "metadata": extra["metadata"],
        }
        if extra["description"]:
            params["description"] = extra["description"]
        if extra["capture_method"]:
            params["capture_method"] = extra["capture_method"]
        if session["customer_email"]:
            params["receipt_email"] = session["customer_email"]
        intent = self.payments.create_intent(params, "")
        session["payment_intent"] = intent["id"]
        self.store.session_by_intent[intent["id"]] = session["id"]
        return intent

    def _on_event(self, type_: str, obj: Obj) -> None:
        """Follow the session's intent: complete, then settle asynchronously."""
        if obj.get("object") != "payment_intent":
            return
        session_id = self.store.session_by_intent.get(obj["id"])
        if session_id is None:
            return
        session = self.store.tables["checkout.session"][session_id]
        if type_ == "payment_intent.amount_capturable_updated" and session["status"] == "open":
            # Manual capture: the card is authorised, nothing is paid until the capture.
            session.update(status="complete", payment_status="unpaid", url=None)
            self.store.emit("checkout.session.completed", session)
        elif type_ == "payment_intent.succeeded":
            if session["status"] == "open":
                session.update(status="complete", payment_status="paid", url=None)
                self.store.emit("checkout.session.completed", session)
            elif session["payment_status"] == "unpaid":
                session["payment_status"] = "paid"
                if obj.get("capture_method") != "manual":  # a capture is no async payment
                    self.store.emit("checkout.session.async_payment_succeeded", session)
        elif type_ == "payment_intent.processing" and session["status"] == "open":
            session.update(status="complete", payment_status="unpaid", url=None)
            self.store.emit("checkout.session.completed", session)
        elif type_ == "payment_intent.payment_failed" and session["status"] == "complete":
            self.store.emit("checkout.session.async_payment_failed", session)

    def redirect_url(self, session: Obj) -> str:
        """Where the page sends the buyer after paying: ``success_url``, id filled in."""
        return str(session["success_url"]).replace(SESSION_ID_PLACEHOLDER, session["id"])


def checkout_session(
    lines: list[Obj],
    shipping: Obj | None,
    *,
    currency: str,
    success_url: str,
    cancel_url: str | None,
    customer_email: str | None,
    client_reference_id: str | None,
    metadata: dict[str, str],
    created: int,
    expires_at: int,
    base_url: str,
    payment_method_types: list[str],
    coupon: Obj | None = None,
) -> Obj:
    """A new open ``checkout.session`` (the 2026 fixture's keys)."""
    session_id = objects.new_id("cs_test", 58)
    subtotal = sum(line["unit_amount"] * line["quantity"] for line in lines)
    shipping_amount = shipping["amount"] if shipping else 0
    discount = coupon_discount(coupon, subtotal)
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": subtotal,
        "amount_total": subtotal - discount + shipping_amount,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "provider": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": customer_details(customer_email) if customer_email else None,
        "customer_email": customer_email,
        "discounts": [{"coupon": coupon["id"], "promotion_code": None}] if coupon else [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": None,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": payment_method_types,
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": (
            {
                "amount_subtotal": shipping_amount,
                "amount_tax": 0,
                "amount_total": shipping_amount,
                "shipping_rate": shipping["id"],
            }
            if shipping
            else None
        ),
        "shipping_details": None,
        "shipping_options": (
            [{"shipping_amount": shipping_amount, "shipping_rate": shipping["id"]}]
            if shipping
            else []
        ),
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {
            "amount_discount": discount,
            "amount_shipping": shipping_amount,
            "amount_tax": 0,
        },
        "ui_mode": "hosted",
        "url": f"{base_url.rstrip('/')}/c/pay/{session_id}",
        "wallet_options": None,
    }


def coupon_discount(coupon: Obj | None, subtotal: int) -> int:
    """What a coupon takes off the lines (never more than they cost; shipping excluded)."""
    if coupon is None:
        return 0
    if coupon["amount_off"] is not None:
        return min(int(coupon["amount_off"]), subtotal)
    return min(subtotal, round(subtotal * float(coupon["percent_off"]) / 100))


def create_coupon(params: Params) -> Obj:
    """``POST /v1/coupons``: ``amount_off`` + ``currency`` or ``percent_off``."""
    reject_unknown(
        params,
        ("amount_off", "currency", "percent_off", "duration", "max_redemptions", "name",
         "metadata", "id", "expand"),
    )  # fmt: skip
    amount_off = get_int(params, "amount_off", minimum=1)
    percent = get_str(params, "percent_off")
    if (amount_off is None) == (percent is None):
        raise invalid_request("You must pass exactly one of amount_off or percent_off.")
    currency = (get_str(params, "currency") or "").lower() or None
    if amount_off is not None and currency is None:
        raise parameter_invalid("currency", "amount_off requires a currency.")
    try:
        percent_off = float(percent) if percent is not None else None
    except ValueError:
        raise parameter_invalid("percent_off", f"Invalid decimal: {percent}") from None
    if percent_off is not None and not 0 < percent_off <= 100:
        raise parameter_invalid("percent_off", "percent_off must be between 0 and 100.")
    return {
        "id": get_str(params, "id") or objects.new_id("co", 8)[3:],
        "object": "coupon",
        "amount_off": amount_off,
        "created": objects.now(),
        "currency": currency if amount_off is not None else None,
        "duration": get_enum(params, "duration", ["once", "forever", "repeating"]) or "once",
        "duration_in_months": None,
        "livemode": False,
        "max_redemptions": get_int(params, "max_redemptions", minimum=1),
        "metadata": merge_metadata({}, params),
        "name": get_str(params, "name"),
        "percent_off": percent_off,
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
    }


def customer_details(email: str | None) -> Obj:
    """What the page collected about the buyer (their e-mail)."""
    return {
        "address": None,
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": None,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def line_item(line: Obj) -> Obj:
    """A session's ``item`` with its one-time ``price`` (from ``price_data``)."""
    amount = line["unit_amount"] * line["quantity"]
    price_id = objects.new_id("price")
    return {
        "id": objects.new_id("li"),
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": line["currency"],
        "description": line["name"],
        "metadata": {},
        "price": {
            "id": price_id,
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": objects.now(),
            "currency": line["currency"],
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": objects.new_id("prod", 14),
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": line["unit_amount"],
            "unit_amount_decimal": str(line["unit_amount"]),
        },
        "quantity": line["quantity"],
    }
