"""The ``/v1`` endpoints. Each is thin: look up, call the domain, render JSON.

Handlers run inside :func:`pipeline.api`'s pipeline, under the store lock.
"""

from __future__ import annotations

import base64
import fnmatch
import json
from typing import Any

from flask import Blueprint

from . import checkout
from .errors import invalid_request, parameter_invalid, parameter_missing, unrecognized_url
from .forms import get_int, get_list, get_str, merge_metadata, reject_unknown
from .pipeline import Call, api
from .search import parse

Obj = dict[str, Any]

bp = Blueprint("stripe_api", __name__, url_prefix="/v1")

LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}


def _intent(call: Call, intent_id: str) -> Obj:
    """The intent, checking ``client_secret`` when the caller holds a publishable key."""
    intent = call.emulator.store.get("payment_intent", intent_id, param="intent")
    if call.publishable:
        secret = get_str(call.params, "client_secret")
        if not secret:
            raise parameter_missing("client_secret")
        if secret != intent["client_secret"]:
            raise invalid_request(
                "The client_secret provided does not match the client_secret associated with "
                "the PaymentIntent.",
                param="client_secret",
                code="payment_intent_invalid_parameter",
            )
    return intent


def _render(call: Call, obj: Obj) -> str:
    return call.emulator.store.render(obj, call.expand)


# --- PaymentIntents -------------------------------------------------------------------


@bp.post("/payment_intents")
@api()
def create_payment_intent(call: Call) -> str:
    """Create (and optionally confirm) a PaymentIntent."""
    return _render(call, call.emulator.payments.create_intent(call.params, call.base_url))


@bp.get("/payment_intents")
@api()
def list_payment_intents(call: Call) -> str:
    """List PaymentIntents, newest first."""
    reject_unknown(call.params, LIST_PARAMS | {"customer"})
    customer = get_str(call.params, "customer")
    return call.emulator.store.list_page(
        "payment_intent",
        call.params,
        "/v1/payment_intents",
        (lambda o: o["customer"] == customer) if customer else None,
    )


@bp.get("/payment_intents/search")
@api()
def search_payment_intents(call: Call) -> str:
    """Search PaymentIntents with Stripe's query language."""
    reject_unknown(call.params, {"query", "limit", "page", "expand"})
    query = get_str(call.params, "query", required=True) or ""
    limit = get_int(call.params, "limit", minimum=1, maximum=100) or 10
    page = get_str(call.params, "page")
    offset = _page_offset(page) if page else 0
    predicate = parse(query)
    store = call.emulator.store
    rows = [o for o in reversed(store.tables["payment_intent"].values()) if predicate(o)]
    chunk = rows[offset : offset + limit]
    has_more = len(rows) > offset + limit
    expand = [p.removeprefix("data.") for p in call.expand if p != "total_count"]
    result: Obj = {
        "object": "search_result",
        "data": [store.expand(o, expand) for o in chunk] if expand else chunk,
        "has_more": has_more,
        "next_page": _page_token(offset + limit) if has_more else None,
        "url": "/v1/payment_intents/search",
    }
    if "total_count" in call.expand:
        result["total_count"] = len(rows)
    return json.dumps(result)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _page_offset(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise parameter_invalid("page", f"Invalid page: {token}") from None
    if not isinstance(offset, int) or offset < 0:
        raise parameter_invalid("page", f"Invalid page: {token}")
    return offset


@bp.get("/payment_intents/<intent_id>")
@api(publishable=True)
def retrieve_payment_intent(call: Call, intent_id: str) -> str:
    """Retrieve a PaymentIntent (pk keys need its client_secret)."""
    reject_unknown(
        call.params, {"client_secret", "expand", "key", "_stripe_version", "_stripe_account"}
    )
    return _render(call, _intent(call, intent_id))


@bp.post("/payment_intents/<intent_id>")
@api()
def update_payment_intent(call: Call, intent_id: str) -> str:
    """Update a PaymentIntent."""
    intent = _intent(call, intent_id)
    return _render(call, call.emulator.payments.update_intent(intent, call.params))


@bp.post("/payment_intents/<intent_id>/confirm")
@api(publishable=True)
def confirm_payment_intent(call: Call, intent_id: str) -> str:
    """Confirm a PaymentIntent (pk keys need its client_secret)."""
    intent = _intent(call, intent_id)
    return _render(call, call.emulator.payments.confirm(intent, call.params, call.base_url))


@bp.post("/payment_intents/<intent_id>/cancel")
@api()
def cancel_payment_intent(call: Call, intent_id: str) -> str:
    """Cancel a PaymentIntent."""
    intent = _intent(call, intent_id)
    return _render(call, call.emulator.payments.cancel(intent, call.params))


@bp.post("/payment_intents/<intent_id>/capture")
@api()
def capture_payment_intent(call: Call, intent_id: str) -> str:
    """Capture an authorised PaymentIntent."""
    intent = _intent(call, intent_id)
    return _render(call, call.emulator.payments.capture(intent, call.params))


# --- PaymentMethods -------------------------------------------------------------------


@bp.post("/payment_methods")
@api(publishable=True)
def create_payment_method(call: Call) -> str:
    """Create a card PaymentMethod from raw test card details."""
    return _render(call, call.emulator.payments.methods.create(call.params))


@bp.get("/payment_methods/<pm_id>")
@api()
def retrieve_payment_method(call: Call, pm_id: str) -> str:
    """Retrieve a PaymentMethod (a ``pm_card_*`` id yields a fresh one, as at Stripe)."""
    return _render(call, call.emulator.payments.methods.get(pm_id, "payment_method"))


@bp.post("/payment_methods/<pm_id>")
@api()
def update_payment_method(call: Call, pm_id: str) -> str:
    """Update a PaymentMethod's metadata."""
    reject_unknown(call.params, {"metadata", "expand", "billing_details"})
    pm = call.emulator.store.get(
        "payment_method", pm_id, param="payment_method", noun="PaymentMethod"
    )
    pm["metadata"] = merge_metadata(pm["metadata"], call.params)
    return _render(call, pm)


@bp.get("/payment_methods")
@api()
def list_payment_methods(call: Call) -> str:
    """List PaymentMethods, newest first."""
    reject_unknown(call.params, LIST_PARAMS | {"type", "customer"})
    pm_type = get_str(call.params, "type")
    customer = get_str(call.params, "customer")

    def keep(o: Obj) -> bool:
        return (not pm_type or o["type"] == pm_type) and (not customer or o["customer"] == customer)

    return call.emulator.store.list_page("payment_method", call.params, "/v1/payment_methods", keep)


# --- ConfirmationTokens ---------------------------------------------------------------


@bp.get("/confirmation_tokens/<token_id>")
@api()
def retrieve_confirmation_token(call: Call, token_id: str) -> str:
    """Retrieve a ConfirmationToken (the server reads what the buyer chose)."""
    reject_unknown(call.params, {"expand"})
    return _render(call, call.emulator.payments.tokens.get(token_id))


@bp.post("/test_helpers/confirmation_tokens")
@api()
def create_test_confirmation_token(call: Call) -> str:
    """Create a ConfirmationToken server-side, as Stripe's test helper does."""
    return _render(call, call.emulator.payments.tokens.create(call.params, from_stripe_js=False))


@bp.post("/confirmation_tokens")
@api(publishable=True)
def create_confirmation_token(call: Call) -> str:
    """Stripe.js's ``createConfirmationToken`` (publishable keys only, as at Stripe)."""
    if not call.publishable:
        raise unrecognized_url("POST", "/v1/confirmation_tokens")
    return _render(call, call.emulator.payments.tokens.create(call.params, from_stripe_js=True))


# --- Charges --------------------------------------------------------------------------


@bp.get("/charges/<charge_id>")
@api()
def retrieve_charge(call: Call, charge_id: str) -> str:
    """Retrieve a Charge."""
    return _render(call, call.emulator.store.get("charge", charge_id, param="id"))


@bp.post("/charges/<charge_id>")
@api()
def update_charge(call: Call, charge_id: str) -> str:
    """Update a Charge's metadata or description."""
    reject_unknown(call.params, {"metadata", "description", "expand"})
    charge = call.emulator.store.get("charge", charge_id, param="id")
    charge["metadata"] = merge_metadata(charge["metadata"], call.params)
    if "description" in call.params:
        charge["description"] = get_str(call.params, "description") or None
    return _render(call, charge)


@bp.get("/charges")
@api()
def list_charges(call: Call) -> str:
    """List Charges, optionally for one PaymentIntent."""
    reject_unknown(call.params, LIST_PARAMS | {"payment_intent", "customer"})
    intent = get_str(call.params, "payment_intent")
    return call.emulator.store.list_page(
        "charge",
        call.params,
        "/v1/charges",
        (lambda o: o["payment_intent"] == intent) if intent else None,
    )


# --- Refunds --------------------------------------------------------------------------


@bp.post("/refunds")
@api()
def create_refund(call: Call) -> str:
    """Refund all or part of a charge."""
    return _render(call, call.emulator.refunds.create(call.params))


@bp.get("/refunds")
@api()
def list_refunds(call: Call) -> str:
    """List Refunds, optionally by charge or PaymentIntent."""
    reject_unknown(call.params, LIST_PARAMS | {"charge", "payment_intent"})
    charge = get_str(call.params, "charge")
    intent = get_str(call.params, "payment_intent")

    def keep(o: Obj) -> bool:
        return (not charge or o["charge"] == charge) and (
            not intent or o["payment_intent"] == intent
        )

    return call.emulator.store.list_page("refund", call.params, "/v1/refunds", keep)


@bp.get("/refunds/<refund_id>")
@api()
def retrieve_refund(call: Call, refund_id: str) -> str:
    """Retrieve a Refund."""
    return _render(call, call.emulator.store.get("refund", refund_id, param="refund"))


@bp.post("/refunds/<refund_id>")
@api()
def update_refund(call: Call, refund_id: str) -> str:
    """Update a Refund's metadata."""
    refund = call.emulator.store.get("refund", refund_id, param="refund")
    return _render(call, call.emulator.refunds.update(refund, call.params))


# --- Disputes and Events --------------------------------------------------------------


@bp.get("/disputes/<dispute_id>")
@api()
def retrieve_dispute(call: Call, dispute_id: str) -> str:
    """Retrieve a Dispute."""
    return _render(call, call.emulator.store.get("dispute", dispute_id, param="dispute"))


@bp.post("/disputes/<dispute_id>")
@api()
def update_dispute(call: Call, dispute_id: str) -> str:
    """Stage (``submit=false``) or submit evidence; update metadata."""
    dispute = call.emulator.store.get("dispute", dispute_id, param="dispute")
    return _render(call, call.emulator.disputes.update(dispute, call.params))


@bp.post("/disputes/<dispute_id>/close")
@api()
def close_dispute(call: Call, dispute_id: str) -> str:
    """Accept the dispute: it is lost."""
    reject_unknown(call.params, {"expand"})
    dispute = call.emulator.store.get("dispute", dispute_id, param="dispute")
    return _render(call, call.emulator.disputes.close(dispute))


@bp.get("/events")
@api()
def list_events(call: Call) -> str:
    """List Events, filtered by ``type`` (``*`` wildcard), ``types[]`` or ``created``."""
    reject_unknown(call.params, LIST_PARAMS | {"type", "types", "delivery_success"})
    type_ = get_str(call.params, "type")
    types = get_list(call.params, "types")
    if type_ and types:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", stored=False
        )
    if len(types) > 20:
        raise parameter_invalid("types", "You may pass at most 20 event types.")

    def keep(event: Obj) -> bool:
        if type_:
            return fnmatch.fnmatchcase(event["type"], type_)
        return not types or event["type"] in types

    return call.emulator.store.list_page("event", call.params, "/v1/events", keep)


@bp.get("/events/<event_id>")
@api()
def retrieve_event(call: Call, event_id: str) -> str:
    """Retrieve an Event."""
    return _render(call, call.emulator.store.get("event", event_id, param="id"))


# --- Coupons and Checkout Sessions ------------------------------------------------------


@bp.post("/coupons")
@api()
def create_coupon(call: Call) -> str:
    """Create a coupon (what a Checkout Session's ``discounts`` names)."""
    coupon = checkout.create_coupon(call.params)
    if coupon["id"] in call.emulator.store.tables["coupon"]:
        raise invalid_request("Coupon already exists.", param="id", code="resource_already_exists")
    return _render(call, call.emulator.store.insert(coupon))


@bp.get("/coupons/<coupon_id>")
@api()
def retrieve_coupon(call: Call, coupon_id: str) -> str:
    """Retrieve a coupon."""
    return _render(call, call.emulator.store.get("coupon", coupon_id, param="coupon"))


def _session(call: Call, session_id: str) -> Obj:
    return call.emulator.store.get("checkout.session", session_id, param="session")


@bp.post("/checkout/sessions")
@api()
def create_checkout_session(call: Call) -> str:
    """Create a Checkout Session (mode ``payment``); its ``url`` is the hosted page."""
    return _render(call, call.emulator.checkout.create(call.params, call.base_url))


@bp.get("/checkout/sessions")
@api()
def list_checkout_sessions(call: Call) -> str:
    """List Checkout Sessions, newest first, optionally by ``payment_intent`` or ``status``."""
    reject_unknown(call.params, LIST_PARAMS | {"payment_intent", "status", "customer"})
    intent = get_str(call.params, "payment_intent")
    status = get_str(call.params, "status")

    def keep(o: Obj) -> bool:
        return (not intent or o["payment_intent"] == intent) and (
            not status or o["status"] == status
        )

    return call.emulator.store.list_page(
        "checkout.session", call.params, "/v1/checkout/sessions", keep
    )


@bp.get("/checkout/sessions/<session_id>")
@api()
def retrieve_checkout_session(call: Call, session_id: str) -> str:
    """Retrieve a Checkout Session."""
    reject_unknown(call.params, {"expand"})
    return _render(call, _session(call, session_id))


@bp.post("/checkout/sessions/<session_id>/expire")
@api()
def expire_checkout_session(call: Call, session_id: str) -> str:
    """Expire an open Checkout Session (its buyer can no longer pay)."""
    reject_unknown(call.params, {"expand"})
    return _render(call, call.emulator.checkout.expire(_session(call, session_id)))


@bp.get("/checkout/sessions/<session_id>/line_items")
@api()
def list_checkout_session_line_items(call: Call, session_id: str) -> str:
    """A session's line items (one page holds them all: a cart has at most 100 lines)."""
    reject_unknown(call.params, LIST_PARAMS)
    _session(call, session_id)
    items = call.emulator.store.session_items.get(session_id, [])
    limit = get_int(call.params, "limit", minimum=1, maximum=100) or 10
    return json.dumps(
        {
            "object": "list",
            "data": items[:limit],
            "has_more": len(items) > limit,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }
    )
