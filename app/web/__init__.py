"""The reference checkout page: a small catalog and cart, the checkout form, the
Payment Element, and the order and failure pages. Vanilla JS modules, no build step.

``bp`` is registered by ``create_app``. The pages are static shells; everything they
show comes from the public JSON API (``/api/products``, ``/api/checkout/...``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

from app.context import current_config
from app.web.csp import content_security_policy

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/web",
)


def _page(template: str, **context: Any) -> str:
    config = current_config()
    return render_template(
        template,
        stripe_js_url=config.stripe_js_url,
        publishable_key=config.stripe_publishable_key,
        currency=config.store_currency,
        checkout_ui=config.checkout_ui,
        **context,
    )


@bp.get("/")
def checkout() -> str:
    """The catalog, cart and checkout form."""
    return _page("web/checkout.html")


@bp.get("/order/<order_id>")
def order(order_id: str) -> str:
    """The order page: state (PENDING → PAID) as the webhook moves it."""
    return _page("web/order.html", order_id=order_id)


@bp.get("/checkout/return")
def hosted_return() -> str:
    """Back from Stripe's hosted page (``?session_id=``): looks the order up, opens it."""
    return _page("web/return.html")


@bp.get("/checkout/failed")
def failed() -> str:
    """The failure page for an order that can no longer be paid."""
    return _page("web/failed.html")


@bp.after_request
def _security_headers(response: Response) -> Response:
    """CSP and friends on every page and asset of this blueprint."""
    response.headers["Content-Security-Policy"] = content_security_policy(current_config())
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
