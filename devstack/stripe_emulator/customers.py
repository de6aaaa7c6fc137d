"""Customers, the PaymentMethods saved on them, and CustomerSessions (wave 3).

As at Stripe: a PaymentMethod belongs to at most one Customer (attaching it to another
is refused), a detached one can never be attached again, deleting a Customer detaches
its methods, and a CustomerSession's client secret lets Stripe.js list the methods the
Payment Element may redisplay (``allow_redisplay`` in the session's filters) for 30
minutes. Every method here runs under the store's lock (the API layer takes it).
"""

from __future__ import annotations

from typing import Any

from . import objects
from .errors import invalid_request, parameter_invalid, parameter_missing, resource_missing
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
from .store import Store

Obj = dict[str, Any]

CUSTOMER_CREATE = {"email", "name", "description", "metadata", "expand", "phone"}
ENABLED = ["enabled", "disabled"]
REDISPLAY_VALUES = ["always", "limited", "unspecified"]
PAYMENT_ELEMENT_FEATURES = {
    "payment_method_allow_redisplay_filters",
    "payment_method_redisplay",
    "payment_method_redisplay_limit",
    "payment_method_remove",
    "payment_method_save",
    "payment_method_save_usage",
}


class Customers:
    """``/v1/customers``, attach / detach, and ``/v1/customer_sessions``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- Customers --------------------------------------------------------------------

    def create(self, params: Params) -> Obj:
        """``POST /v1/customers``."""
        reject_unknown(params, CUSTOMER_CREATE)
        cus = objects.customer(
            email=get_str(params, "email"),
            name=get_str(params, "name"),
            description=get_str(params, "description"),
            metadata=merge_metadata({}, params),
        )
        cus["phone"] = get_str(params, "phone")
        self.store.insert(cus)
        self.store.emit("customer.created", cus)
        return cus

    def get(self, customer_id: str, param: str = "customer") -> Obj:
        """A live Customer, or Stripe's 404 (a deleted one is gone for the API's verbs)."""
        cus = self.store.tables["customer"].get(customer_id)
        if cus is None or cus.get("deleted"):
            raise resource_missing("customer", customer_id, param)
        return cus

    def delete(self, customer_id: str) -> Obj:
        """``DELETE /v1/customers/<id>``: its PaymentMethods are detached, as at Stripe."""
        cus = self.get(customer_id, "id")
        for pm in list(self.store.tables["payment_method"].values()):
            if pm["customer"] == customer_id:
                self._detach(pm)
        # The event carries the Customer as it was; the API answers the deleted stub.
        self.store.emit("customer.deleted", cus)
        gone = objects.deleted_customer(customer_id)
        self.store.tables["customer"][customer_id] = gone
        return gone

    # --- PaymentMethods on a Customer -------------------------------------------------

    def attach(self, pm: Obj, params: Params) -> Obj:
        """``POST /v1/payment_methods/<id>/attach``."""
        reject_unknown(params, {"customer", "expand"})
        customer_id = get_str(params, "customer")
        if not customer_id:
            raise parameter_missing("customer")
        self.get(customer_id)
        self.attach_to(pm, customer_id)
        return pm

    def attach_to(self, pm: Obj, customer_id: str, allow_redisplay: str | None = None) -> None:
        """Save ``pm`` on the Customer (a payment's ``setup_future_usage`` does it too)."""
        if pm["customer"] == customer_id:
            return
        if pm["customer"] is not None:
            raise invalid_request(
                "The payment method you provided has already been attached to a customer.",
                param="payment_method",
            )
        if pm["id"] in self.store.detached:
            raise invalid_request(
                "This PaymentMethod was previously used without being attached to a Customer "
                "or was detached from a Customer, and may not be used again.",
                param="payment_method",
            )
        pm["customer"] = customer_id
        if allow_redisplay and pm["allow_redisplay"] == "unspecified":
            pm["allow_redisplay"] = allow_redisplay
        self.store.emit("payment_method.attached", pm)

    def detach(self, pm: Obj, params: Params) -> Obj:
        """``POST /v1/payment_methods/<id>/detach``."""
        reject_unknown(params, {"expand"})
        if pm["customer"] is None:
            raise invalid_request(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible.",
                param="payment_method",
            )
        self._detach(pm)
        return pm

    def _detach(self, pm: Obj) -> None:
        previous = {"customer": pm["customer"]}
        pm["customer"] = None
        self.store.detached.add(pm["id"])
        self.store.emit("payment_method.detached", pm, previous=previous)

    def owned_by(self, customer_id: str, pm_type: str | None) -> Any:
        """The predicate of ``GET /v1/customers/<id>/payment_methods``."""
        return lambda pm: pm["customer"] == customer_id and (not pm_type or pm["type"] == pm_type)

    # --- CustomerSessions -------------------------------------------------------------

    def create_session(self, params: Params) -> Obj:
        """``POST /v1/customer_sessions`` (the Payment Element component; others stay off)."""
        reject_unknown(params, {"customer", "components", "expand"})
        customer_id = get_str(params, "customer")
        if not customer_id:
            raise parameter_missing("customer")
        self.get(customer_id)
        components = get_dict(params, "components")
        reject_unknown(
            components,
            {"payment_element", "buy_button", "pricing_table", "customer_sheet"},
            prefix="components",
        )
        element = get_dict(components, "payment_element")
        if not element:
            raise invalid_request(
                "You must enable at least one component.", param="components", stored=False
            )
        session = objects.customer_session(customer_id, self._payment_element(element))
        self.store.tables["customer_session"][session["client_secret"]] = session
        return session

    def _payment_element(self, raw: Params) -> Obj:
        prefix = "components[payment_element]"
        reject_unknown(raw, {"enabled", "features"}, prefix=prefix)
        enabled = get_bool(raw, "enabled", label=f"{prefix}[enabled]")
        if enabled is None:
            raise parameter_missing(f"{prefix}[enabled]")
        features = get_dict(raw, "features")
        reject_unknown(features, PAYMENT_ELEMENT_FEATURES, prefix=f"{prefix}[features]")

        def flag(name: str) -> str:
            return get_enum(features, name, ENABLED, label=f"{prefix}[features][{name}]") or (
                "disabled"
            )

        filters = get_list(features, "payment_method_allow_redisplay_filters") or ["always"]
        bad = [f for f in filters if f not in REDISPLAY_VALUES]
        if bad:
            raise parameter_invalid(
                f"{prefix}[features][payment_method_allow_redisplay_filters]",
                f"Invalid allow_redisplay filter: {bad[0]}",
            )
        limit = get_int(
            features,
            "payment_method_redisplay_limit",
            minimum=1,
            maximum=10,
            label=f"{prefix}[features][payment_method_redisplay_limit]",
        )
        usage = get_enum(
            features,
            "payment_method_save_usage",
            ["off_session", "on_session"],
            label=f"{prefix}[features][payment_method_save_usage]",
        )
        return {
            "enabled": enabled,
            "features": {
                "payment_method_allow_redisplay_filters": filters,
                "payment_method_redisplay": flag("payment_method_redisplay"),
                "payment_method_redisplay_limit": limit,
                "payment_method_remove": flag("payment_method_remove"),
                "payment_method_save": flag("payment_method_save"),
                "payment_method_save_usage": usage,
            }
            if enabled
            else None,
        }

    def session(self, client_secret: str) -> Obj:
        """A live CustomerSession by its secret (Stripe.js's credential), else 404/400."""
        session = self.store.tables["customer_session"].get(client_secret)
        if session is None:
            raise invalid_request(
                "Invalid customerSessionClientSecret.",
                param="customer_session_client_secret",
                code="resource_missing",
                status=404,
            )
        if session["expires_at"] <= objects.now():
            raise invalid_request(
                "This CustomerSession has expired.",
                param="customer_session_client_secret",
                code="customer_session_expired",
            )
        return session

    def remove_for_session(self, session: Obj, pm_id: str) -> Obj:
        """Detach one of the session's Customer's methods, if the session may remove."""
        features = session["components"]["payment_element"].get("features") or {}
        if features.get("payment_method_remove") != "enabled":
            raise invalid_request(
                "This CustomerSession does not allow removing payment methods "
                "(components[payment_element][features][payment_method_remove]).",
                param="payment_method",
            )
        pm = self.store.tables["payment_method"].get(pm_id)
        if pm is None or pm["customer"] != session["customer"]:
            raise resource_missing("PaymentMethod", pm_id, "payment_method")
        self._detach(pm)
        return pm

    def redisplayed(self, session: Obj) -> list[Obj]:
        """The saved methods the session's Payment Element shows, newest first."""
        element = session["components"]["payment_element"]
        features = element.get("features") or {}
        if not element["enabled"] or features.get("payment_method_redisplay") != "enabled":
            return []
        filters = features["payment_method_allow_redisplay_filters"]
        rows = [
            pm
            for pm in reversed(self.store.tables["payment_method"].values())
            if pm["customer"] == session["customer"] and pm["allow_redisplay"] in filters
        ]
        return rows[: features.get("payment_method_redisplay_limit") or 3]
