"""``/_emulator/*``: the control endpoints tests and the Stripe.js stand-in drive.

JSON in, JSON out, no API key, CORS open. They stand in for what happens outside the
API at Stripe: the cardholder's 3-D Secure answer, a bank settling a payment, the
webhook endpoint registration, and the knobs for chaos.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from .cards import BANK_FAILURES
from .errors import invalid_request
from .payments import Timing
from .pipeline import emulator
from .webhooks import enabled_events

bp = Blueprint("stripe_emulator_control", __name__, url_prefix="/_emulator")


def _ok(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _raw(body: str) -> Response:
    return Response(body, mimetype="application/json")


def _body() -> dict[str, Any]:
    if not request.data:
        return {}
    try:
        body = json.loads(request.data)
    except ValueError:
        raise invalid_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def _outcome(body: dict[str, Any], allowed: tuple[str, str]) -> str:
    outcome = body.get("outcome")
    if outcome not in allowed:
        raise invalid_request(f"outcome must be one of: {', '.join(allowed)}", param="outcome")
    return str(outcome)


@bp.post("/payment_intents/<intent_id>/authenticate")
def authenticate(intent_id: str) -> Response:
    """3-D Secure outcome for an intent in requires_action: ``complete`` or ``fail``."""
    outcome = _outcome(_body(), ("complete", "fail"))
    emu = emulator()
    with emu.store.lock:
        intent = emu.store.get("payment_intent", intent_id, param="intent")
        return _raw(emu.store.render(emu.payments.authenticate(intent, outcome)))


@bp.post("/checkout_sessions/<session_id>/pay")
def pay_checkout_session(session_id: str) -> Response:
    """Pay an open Checkout Session as its hosted page would: ``{"paymentMethod":
    "pm_card_visa"}``; answers the session (a decline answers the 402 card error; a
    3-D Secure card leaves its intent waiting for ``.../authenticate``)."""
    method = _body().get("paymentMethod")
    if not isinstance(method, str) or not method:
        raise invalid_request("paymentMethod must be a PaymentMethod id", param="paymentMethod")
    emu = emulator()
    with emu.store.lock:
        session = emu.store.get("checkout.session", session_id, param="session")
        pm = emu.payments.methods.get(method, "paymentMethod")
        emu.checkout.pay(session, pm, request.host_url)
        return _raw(emu.store.render(session))


@bp.post("/payment_intents/<intent_id>/settle")
def settle(intent_id: str) -> Response:
    """Settle a processing intent: ``succeeded`` or ``failed`` (bank debits: optional
    ``failureCode``, one of BANK_FAILURES)."""
    body = _body()
    outcome = _outcome(body, ("succeeded", "failed"))
    code = body.get("failureCode")
    if code is not None and code not in BANK_FAILURES:
        raise invalid_request(
            f"failureCode must be one of: {', '.join(BANK_FAILURES)}", param="failureCode"
        )
    emu = emulator()
    with emu.store.lock:
        intent = emu.store.get("payment_intent", intent_id, param="intent")
        return _raw(emu.store.render(emu.payments.settle(intent, outcome, code)))


@bp.post("/payment_intents/<intent_id>/expire_authorization")
def expire_authorization(intent_id: str) -> Response:
    """Let a requires_capture intent's authorisation lapse now: canceled, ``automatic``."""
    emu = emulator()
    with emu.store.lock:
        intent = emu.store.get("payment_intent", intent_id, param="intent")
        return _raw(emu.store.render(emu.payments.expire_authorization(intent)))


@bp.post("/disputes/<dispute_id>/close")
def close_dispute(dispute_id: str) -> Response:
    """The card network decides a dispute: ``{"outcome": "won" | "lost"}``."""
    outcome = _outcome(_body(), ("won", "lost"))
    emu = emulator()
    with emu.store.lock:
        dispute = emu.store.get("dispute", dispute_id, param="dispute")
        return _raw(emu.store.render(emu.disputes.close(dispute, outcome)))


@bp.post("/confirmation_tokens/<token_id>/expire")
def expire_confirmation_token(token_id: str) -> Response:
    """Make a ConfirmationToken expire now, as 12 hours passing would."""
    emu = emulator()
    with emu.store.lock:
        token = emu.payments.tokens.get(token_id)
        return _raw(emu.store.render(emu.payments.tokens.expire(token)))


@bp.post("/tax/calculations/<calc_id>/expire")
def expire_tax_calculation(calc_id: str) -> Response:
    """Make a Stripe Tax calculation expire now, as 90 days passing would."""
    emu = emulator()
    with emu.store.lock:
        return _raw(emu.store.render(emu.tax.expire(calc_id)))


@bp.get("/tax/transactions")
def tax_transactions() -> Response:
    """Every tax transaction and reversal, oldest first (``?reference=`` filters; Stripe
    has no list endpoint: tests look up what a service recorded)."""
    wanted = request.args.get("reference")
    emu = emulator()
    with emu.store.lock:
        rows = [
            t
            for t in emu.store.tables["tax.transaction"].values()
            if wanted is None or t["reference"] == wanted
        ]
        return _raw(json.dumps({"object": "list", "data": rows}))


@bp.route("/timing", methods=["GET", "POST"])
def timing() -> Response:
    """Read or change the background delays: ``{"authorizationWindowSeconds",
    "bankDebitSettleMs" (null: settle only by the control endpoint), "asyncDelayMs"}``."""
    settings = emulator().payments.timing
    if request.method == "POST":
        body = _body()
        if "authorizationWindowSeconds" in body:
            settings.authorization_window = _positive(body, "authorizationWindowSeconds")
        if "bankDebitSettleMs" in body:
            settle_ms = body["bankDebitSettleMs"]
            if settle_ms is None:
                settings.bank_debit_settle = None
            else:
                settings.bank_debit_settle = _positive(body, "bankDebitSettleMs", zero=True) / 1000
        if "asyncDelayMs" in body:
            settings.async_delay = _positive(body, "asyncDelayMs", zero=True) / 1000
    return _ok(timing_json(settings))


def timing_json(settings: Timing) -> dict[str, Any]:
    """The timing settings as the control endpoint shows them."""
    settle = settings.bank_debit_settle
    return {
        "authorizationWindowSeconds": settings.authorization_window,
        "bankDebitSettleMs": None if settle is None else round(settle * 1000),
        "asyncDelayMs": round(settings.async_delay * 1000),
    }


def _positive(body: dict[str, Any], name: str, *, zero: bool = False) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise invalid_request(f"{name} must be a non-negative number", param=name)
    if value == 0 and not zero:
        raise invalid_request(f"{name} must be a positive number", param=name)
    return float(value)


@bp.get("/deliveries")
def deliveries() -> Response:
    """The webhook delivery log, oldest first (``?eventId=`` / ``?type=`` filter it)."""
    rows = emulator().webhooks.deliveries(request.args.get("eventId"), request.args.get("type"))
    return _ok({"object": "list", "data": rows})


@bp.post("/events/<event_id>/resend")
def resend(event_id: str) -> Response:
    """Deliver an event to the webhook endpoint again."""
    emu = emulator()
    with emu.store.lock:
        event = emu.store.get("event", event_id, param="id")
    try:
        emu.webhooks.resend(event)
    except ValueError as exc:
        raise invalid_request(str(exc)) from None
    return _ok({"resent": event_id}, 202)


@bp.post("/reset")
def reset() -> Response:
    """Forget all state; the webhook endpoint stays configured."""
    emulator().reset()
    return _ok({"reset": True})


@bp.route("/chaos", methods=["GET", "POST"])
def chaos() -> Response:
    """Read or change the chaos settings."""
    emu = emulator()
    if request.method == "POST":
        try:
            emu.chaos.update(_body())
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
    return _ok(emu.chaos.config.to_json())


@bp.get("/requests")
def requests_per_second() -> Response:
    """How many /v1 requests each second brought, and how many were answered 429."""
    return _ok(emulator().chaos.request_log())


@bp.route("/webhook", methods=["GET", "POST"])
def webhook() -> Response:
    """Read or set the webhook endpoint: ``{"url", "secret", "maxAttempts", "firstRetryMs",
    "timeoutMs", "enabledEvents"}``; ``{"url": null}`` turns delivery off, ``["*"]``
    enables every event type."""
    config = emulator().webhooks.config
    if request.method == "POST":
        body = _body()
        if "url" in body:
            url = body["url"]
            if url is not None and (
                not isinstance(url, str) or not url.startswith(("http://", "https://"))
            ):
                raise invalid_request("url must be an http(s) URL or null", param="url")
            config.url = url
        if "secret" in body:
            secret = body["secret"]
            if secret is not None and not (isinstance(secret, str) and secret.startswith("whsec_")):
                raise invalid_request("secret must start with whsec_", param="secret")
            config.secret = secret
        if "enabledEvents" in body:
            config.events = _enabled_events(body["enabledEvents"])
        for name, attr, scale in (
            ("maxAttempts", "max_attempts", 1),
            ("firstRetryMs", "first_retry", 1000),
            ("timeoutMs", "timeout", 1000),
        ):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise invalid_request(f"{name} must be a positive number", param=name)
                setattr(config, attr, int(value) if scale == 1 else value / scale)
    return _ok(config.to_json())


def _enabled_events(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise invalid_request("enabledEvents must be a list of event types", param="enabledEvents")
    try:
        return enabled_events(value)
    except ValueError as exc:
        raise invalid_request(str(exc), param="enabledEvents") from None


@bp.get("/health")
def health() -> Response:
    """Liveness for supervisors and test fixtures."""
    return _ok({"ok": True})
