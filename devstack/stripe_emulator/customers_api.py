"""The ``/v1`` endpoints of Customers, saved PaymentMethods and CustomerSessions.

Thin, as in :mod:`.api`: look up, call :class:`~.customers.Customers`, render JSON.
``GET /v1/elements/customer_session`` is the emulator's own: what the Stripe.js
stand-in's Payment Element asks with a ``customerSessionClientSecret`` (real Stripe.js
uses a private endpoint for the same).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint

from .errors import parameter_missing, resource_missing
from .forms import get_str, reject_unknown
from .pipeline import Call, api

Obj = dict[str, Any]

bp = Blueprint("stripe_customers", __name__, url_prefix="/v1")

LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}


def _render(call: Call, obj: Obj) -> str:
    return call.emulator.store.render(obj, call.expand)


def _method(call: Call, pm_id: str) -> Obj:
    return call.emulator.store.get(
        "payment_method", pm_id, param="payment_method", noun="PaymentMethod"
    )


@bp.post("/customers")
@api()
def create_customer(call: Call) -> str:
    """Create a Customer."""
    return _render(call, call.emulator.payments.customers.create(call.params))


@bp.get("/customers/<customer_id>")
@api()
def retrieve_customer(call: Call, customer_id: str) -> str:
    """Retrieve a Customer (a deleted one answers ``{id, object, deleted: true}``)."""
    reject_unknown(call.params, {"expand"})
    found = call.emulator.store.get("customer", customer_id, param="id")
    return _render(call, found)


@bp.delete("/customers/<customer_id>")
@api()
def delete_customer(call: Call, customer_id: str) -> str:
    """Delete a Customer; its PaymentMethods are detached."""
    reject_unknown(call.params, set())
    return _render(call, call.emulator.payments.customers.delete(customer_id))


@bp.get("/customers/<customer_id>/payment_methods")
@api()
def list_customer_payment_methods(call: Call, customer_id: str) -> str:
    """The Customer's saved PaymentMethods, newest first."""
    reject_unknown(call.params, LIST_PARAMS | {"type", "allow_redisplay"})
    customers = call.emulator.payments.customers
    customers.get(customer_id)
    return call.emulator.store.list_page(
        "payment_method",
        call.params,
        f"/v1/customers/{customer_id}/payment_methods",
        customers.owned_by(customer_id, get_str(call.params, "type")),
    )


@bp.get("/customers/<customer_id>/payment_methods/<pm_id>")
@api()
def retrieve_customer_payment_method(call: Call, customer_id: str, pm_id: str) -> str:
    """One of the Customer's PaymentMethods (404 when it is not theirs)."""
    reject_unknown(call.params, {"expand"})
    call.emulator.payments.customers.get(customer_id)
    pm = _method(call, pm_id)
    if pm["customer"] != customer_id:
        raise resource_missing("PaymentMethod", pm_id, "payment_method")
    return _render(call, pm)


@bp.post("/payment_methods/<pm_id>/attach")
@api()
def attach_payment_method(call: Call, pm_id: str) -> str:
    """Save a PaymentMethod on a Customer."""
    return _render(call, call.emulator.payments.customers.attach(_method(call, pm_id), call.params))


@bp.post("/payment_methods/<pm_id>/detach")
@api()
def detach_payment_method(call: Call, pm_id: str) -> str:
    """Take a PaymentMethod off its Customer (for good)."""
    return _render(call, call.emulator.payments.customers.detach(_method(call, pm_id), call.params))


@bp.post("/customer_sessions")
@api()
def create_customer_session(call: Call) -> str:
    """Create a CustomerSession for the Payment Element."""
    return _render(call, call.emulator.payments.customers.create_session(call.params))


@bp.get("/elements/customer_session")
@api(publishable=True)
def elements_customer_session(call: Call) -> str:
    """Emulator-only: the saved cards a CustomerSession lets the Payment Element show."""
    reject_unknown(call.params, {"customer_session_client_secret", "key", "_stripe_version"})
    secret = get_str(call.params, "customer_session_client_secret")
    if not secret:
        raise parameter_missing("customer_session_client_secret")
    customers = call.emulator.payments.customers
    session = customers.session(secret)
    features = session["components"]["payment_element"]["features"] or {}
    methods = [
        {
            "id": pm["id"],
            "type": pm["type"],
            "card": {
                "brand": pm["card"]["brand"],
                "last4": pm["card"]["last4"],
                "exp_month": pm["card"]["exp_month"],
                "exp_year": pm["card"]["exp_year"],
            }
            if pm["type"] == "card"
            else None,
        }
        for pm in customers.redisplayed(session)
    ]
    return json.dumps(
        {
            "object": "emulator.elements_customer_session",
            "customer": session["customer"],
            "features": features,
            "payment_methods": methods,
        }
    )


@bp.post("/elements/customer_session/detach")
@api(publishable=True)
def elements_remove_saved_card(call: Call) -> str:
    """Emulator-only: the Payment Element's remove button (``payment_method_remove``)."""
    reject_unknown(
        call.params,
        {"customer_session_client_secret", "payment_method", "key", "_stripe_version"},
    )
    secret = get_str(call.params, "customer_session_client_secret")
    pm_id = get_str(call.params, "payment_method")
    if not secret:
        raise parameter_missing("customer_session_client_secret")
    if not pm_id:
        raise parameter_missing("payment_method")
    customers = call.emulator.payments.customers
    session = customers.session(secret)
    return _render(call, customers.remove_for_session(session, pm_id))
