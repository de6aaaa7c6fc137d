"""The hosted Checkout page (``/c/pay/<session id>``), on the emulator's own origin.

Plain HTML forms, no script: the buyer types a test card (or a test bank account),
answers the 3-D Secure challenge, sees a decline and tries again, and is sent to the
session's ``success_url`` (``{CHECKOUT_SESSION_ID}`` filled in) or ``cancel_url``.
Card details reach only the emulator, as they reach only Stripe in production.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Blueprint, Response, request

from .errors import StripeError
from .payments import format_amount
from .pipeline import emulator

bp = Blueprint("stripe_emulator_hosted", __name__, url_prefix="/c/pay")

Obj = dict[str, Any]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
    "label{display:block;margin:.6rem 0 .2rem}input{width:100%;padding:.4rem;font-size:1rem}"
    "button{margin-top:1rem;padding:.6rem 1rem;font-size:1rem}"
    ".error{color:#b00020}table{width:100%}td:last-child{text-align:right}"
)


def _page(title: str, body: str, status: int = 200) -> Response:
    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return Response(doc, status=status, mimetype="text/html")


def _redirect(url: str, status: int) -> Response:
    return Response(status=status, headers={"Location": url})


def _session(session_id: str) -> Obj:
    return emulator().store.get("checkout.session", session_id, param="session")


def _summary(session: Obj) -> str:
    items = emulator().store.session_items.get(session["id"], [])
    currency = session["currency"]
    rows = "".join(
        f"<tr><td>{html.escape(i['description'])} x {i['quantity']}</td>"
        f"<td>{format_amount(i['amount_total'], currency)}</td></tr>"
        for i in items
    )
    shipping = session["total_details"]["amount_shipping"]
    if shipping:
        rows += f"<tr><td>Shipping</td><td>{format_amount(shipping, currency)}</td></tr>"
    rows += (
        f"<tr><th>Total due</th><th>{format_amount(session['amount_total'], currency)}</th></tr>"
    )
    return f"<table>{rows}</table>"


def _form(session: Obj, error: str | None = None) -> Response:
    sid = html.escape(session["id"])
    total = format_amount(session["amount_total"], session["currency"])
    email = html.escape(session["customer_email"] or "")
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    bank = ""
    if "us_bank_account" in session["payment_method_types"]:
        bank = (
            f'<h2>Bank debit</h2><form method="post" action="/c/pay/{sid}">'
            '<input type="hidden" name="method" value="us_bank_account">'
            '<label for="account">Account number</label>'
            '<input id="account" name="account_number" value="000123456789" inputmode="numeric">'
            '<label for="holder">Account holder</label>'
            '<input id="holder" name="name" value="Jenny Rosen">'
            '<button type="submit">Pay by bank debit</button></form>'
        )
    cancel = (
        f'<p><a href="/c/pay/{sid}/cancel">Back to the shop</a></p>'
        if session["cancel_url"]
        else ""
    )
    body = (
        f"<h1>Pay {html.escape(total)}</h1>{_summary(session)}{alert}"
        f"<p>Email: {email}</p>"
        f'<form method="post" action="/c/pay/{sid}">'
        '<input type="hidden" name="method" value="card">'
        '<label for="number">Card number</label>'
        '<input id="number" name="number" autocomplete="cc-number" inputmode="numeric">'
        '<label for="expiry">Expiration (MM / YY)</label>'
        '<input id="expiry" name="expiry" autocomplete="cc-exp" placeholder="MM / YY">'
        '<label for="cvc">CVC</label><input id="cvc" name="cvc" autocomplete="cc-csc">'
        '<label for="name">Name on card</label><input id="name" name="name" autocomplete="cc-name">'
        f'<button type="submit">Pay {html.escape(total)}</button></form>{bank}{cancel}'
    )
    return _page("Checkout", body, 402 if error else 200)


def _closed(session: Obj) -> Response:
    if session["status"] == "complete":
        return _redirect(emulator().checkout.redirect_url(session), 303)
    return _page("Checkout", "<h1>This checkout session has expired</h1>", 410)


@bp.get("/<session_id>")
def show(session_id: str) -> Response:
    """The payment form, the session's lines and total."""
    emu = emulator()
    with emu.store.lock:
        session = _session(session_id)
        if session["status"] != "open":
            return _closed(session)
        return _form(session)


@bp.post("/<session_id>")
def pay(session_id: str) -> Response:
    """Pay with the typed card or bank account: success, 3-D Secure, or the form again."""
    emu = emulator()
    form = request.form
    with emu.store.lock:
        session = _session(session_id)
        if session["status"] != "open":
            return _closed(session)
        try:
            pm = emu.payments.methods.from_data(_method_params(form), form.get("method"), "")
            intent = emu.checkout.pay(session, pm, request.host_url)
        except StripeError as exc:
            return _form(session, exc.message)
        return _after_attempt(session, intent)


@bp.post("/<session_id>/authenticate")
def authenticate(session_id: str) -> Response:
    """The 3-D Secure challenge's answer: ``outcome=complete`` or ``fail``."""
    emu = emulator()
    with emu.store.lock:
        session = _session(session_id)
        if session["status"] != "open" or not session["payment_intent"]:
            return _closed(session)
        intent = emu.store.get("payment_intent", session["payment_intent"])
        if intent["status"] != "requires_action":
            return _after_attempt(session, intent)
        outcome = "complete" if request.form.get("outcome") == "complete" else "fail"
        emu.payments.authenticate(intent, outcome)
        return _after_attempt(session, intent)


@bp.get("/<session_id>/cancel")
def cancel(session_id: str) -> Response:
    """Back to the shop: the session stays open until it expires."""
    session = _session(session_id)
    return _redirect(session["cancel_url"] or "/", 303)


def _after_attempt(session: Obj, intent: Obj) -> Response:
    if session["status"] == "complete":
        return _redirect(emulator().checkout.redirect_url(session), 303)
    if intent["status"] == "requires_action":
        sid = html.escape(session["id"])
        body = (
            "<h1>3D Secure 2 Test Page</h1><p>Authenticate this payment.</p>"
            f'<form method="post" action="/c/pay/{sid}/authenticate">'
            '<button type="submit" name="outcome" value="complete">Complete authentication</button>'
            '<button type="submit" name="outcome" value="fail">Fail authentication</button></form>'
        )
        return _page("3D Secure", body)
    error = (intent.get("last_payment_error") or {}).get("message") or "The payment failed."
    return _form(session, error)


def _method_params(form: Any) -> dict[str, Any]:
    """The form as ``payment_method_data``: a card or a test bank account."""
    if form.get("method") == "us_bank_account":
        return {
            "us_bank_account": {
                "account_number": form.get("account_number", ""),
                "routing_number": "110000000",
                "account_holder_type": "individual",
            },
            "billing_details": {"name": form.get("name", "")},
        }
    month, _, year = form.get("expiry", "").replace(" ", "").partition("/")
    return {
        "card": {
            "number": form.get("number", "").replace(" ", ""),
            "exp_month": month,
            "exp_year": year,
            "cvc": form.get("cvc", ""),
        },
        "billing_details": {"name": form.get("name", "")},
    }
