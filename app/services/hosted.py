"""Hosted Stripe Checkout: an order paid on Stripe's page through a Checkout Session.

The worker creates the session instead of a PaymentIntent (:func:`open_session`, key
``cs-create-<orderId>``): our priced lines as ``price_data``, tax as a line, shipping as
a fixed shipping rate, so that Stripe's ``amount_total`` must equal the order's total —
checked before the session is recorded; a mismatch expires the session and fails the
order (never a charge of another amount). Stripe requires ``expires_at`` 30 minutes to
24 hours ahead; the hold is kept until the session expires (plus a grace, so Stripe's own
``checkout.session.expired`` normally arrives first).

The session's PaymentIntent appears with the buyer's first attempt: it is recorded on
the order (:func:`adopt_intent`) once Stripe says it is the session's, and from then on
the usual intent rules apply (I10: only the order's own session and intent count).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client import Counter

from app.errors import InvalidRequest, NotFound, PaymentProviderError
from app.gateways.payments import CheckoutSession, Intent, PaymentGateway, SessionLine
from app.services import checkout_status
from app.services.inventory import Inventory
from app.services.records import checkout_fields, lock_order, touch
from app.services.state_machine import PENDING, record_event
from models import Order, Reservation
from models.db import database, utcnow
from models.statuses import PaymentStatus

if TYPE_CHECKING:
    from app.config import Config
    from app.runtime import Runtime

log = logging.getLogger(__name__)

HOSTED = "hosted"
# Stripe refuses an ``expires_at`` under 30 minutes ahead; ours leaves room for the
# request's own latency and clock skew.
SESSION_MIN_SECONDS = 30 * 60 + 120
# Our expiry runs this long after Stripe's: its checkout.session.expired usually comes first.
HOLD_GRACE_SECONDS = 60
SESSION_OPEN, SESSION_COMPLETE, SESSION_EXPIRED = "open", "complete", "expired"
AMOUNT_MISMATCH = "amount_mismatch"

SESSION_MISMATCHES = Counter(
    "checkout_session_mismatch_total",
    "Checkout Sessions ignored or refused because they are not the order's (I10) or "
    "their total differs from the order's.",
)


# --- the submit's return URLs ---------------------------------------------------------


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_hosted_submit(data: dict[str, Any], config: Config) -> None:
    """A ``"ui": "hosted"`` submit: the shop offers Stripe's page (``CHECKOUT_UI``), and
    its return URLs are on the shop's origins (``FRONTEND_ORIGINS``, ``PUBLIC_URL``)."""
    if config.checkout_ui == "elements":
        raise InvalidRequest(
            "This shop does not offer Stripe's hosted page.",
            {"ui": ["Hosted Checkout is off (CHECKOUT_UI=elements)."]},
        )
    check_return_urls(data, [*config.frontend_origins, config.public_url])


def check_return_urls(data: dict[str, Any], allowed: Sequence[str]) -> None:
    """``successUrl`` / ``cancelUrl`` must be absolute URLs on an allowed origin (no open
    redirect through our session); InvalidRequest on the field otherwise."""
    origins = {o for o in (origin_of(url) for url in allowed) if o}
    errors = {}
    for name, key in (("success_url", "successUrl"), ("cancel_url", "cancelUrl")):
        url = data.get(name)
        if url is None:
            continue
        origin = origin_of(url)
        if origin is None:
            errors[key] = ["Must be an absolute http(s) URL."]
        elif origin not in origins:
            errors[key] = ["Must be on the shop's own origin (FRONTEND_ORIGINS)."]
    if errors:
        raise InvalidRequest("The return URLs are not acceptable.", errors)


# --- creating the session -------------------------------------------------------------


def wants_hosted(submission: dict[str, Any] | None) -> bool:
    """Whether the submission asked for Stripe's hosted page."""
    return (submission or {}).get("ui") == HOSTED


def session_lines(order: Order) -> tuple[list[SessionLine], SessionLine | None]:
    """The order's totals as Stripe accepts them: priced lines (tax as one more line),
    and the shipping as a fixed rate (a discount goes as a coupon: :func:`order_discount`)."""
    lines = [
        SessionLine(str(line["name"]), int(line["unitAmount"]), int(line["quantity"]))
        for line in order.line_items
    ]
    if order.tax:
        lines.append(SessionLine("Tax", order.tax, 1))
    shipping = SessionLine("Shipping", order.shipping, 1) if order.shipping else None
    return lines, shipping


def order_discount(order: Order) -> int:
    """The order's discount in minor units (0 when none; the field comes with promotion
    codes): sent to Stripe as a coupon, so that its total still equals ours."""
    return int(getattr(order, "discount", 0) or 0)


def session_expiry(order: Order, now: datetime) -> datetime:
    """When the session expires: the hold's end, and at least Stripe's 30 minutes away."""
    reservation = Reservation.get_or_none(Reservation.order == order.id)
    hold_end = reservation.expires_at if reservation is not None else now
    return max(hold_end, now + timedelta(seconds=SESSION_MIN_SECONDS)).replace(microsecond=0)


def fix_expiry(order_id: str) -> datetime:
    """The session's ``expires_at``, chosen once and saved before Stripe is called, so a
    retry sends the same parameters with the same idempotency key."""
    with database().atomic():
        order = lock_order(order_id)
        expires: datetime | None = order.checkout_expires_at
        if expires is None:
            expires = session_expiry(order, utcnow())
            touch(order, checkout_expires_at=expires)
        return expires


def unix(moment: datetime) -> int:
    """A naive UTC datetime as unix seconds."""
    return int(moment.replace(tzinfo=UTC).timestamp())


def create_session(
    order: Order, runtime: Runtime, submission: dict[str, Any], expires_at: datetime
) -> CheckoutSession:
    """Stripe's create call (key ``cs-create-<orderId>``: a retry returns the same one)."""
    lines, shipping = session_lines(order)
    metadata = {
        "orderId": order.id,
        "reservationId": order.reservation_id,
        "orderNumber": order.order_number,
    }
    return runtime.gateway.create_checkout_session(
        lines=lines,
        shipping=shipping,
        currency=order.currency,
        customer_email=order.email,
        metadata=metadata,
        success_url=str(submission["successUrl"]),
        cancel_url=str(submission["cancelUrl"]),
        expires_at=unix(expires_at),
        idempotency_key=f"cs-create-{order.id}",
        discount=order_discount(order),
        capture_method=order.capture_method,
    )


def total_mismatch(order: Order, session: CheckoutSession) -> str | None:
    """Why Stripe's session would charge another amount than the order's, or None."""
    if session.amount_total == order.total and session.currency.lower() == order.currency:
        return None
    return (
        f"Stripe's total ({session.amount_total} {session.currency}) differs from the "
        f"order's ({order.total} {order.currency}); nothing was charged."
    )


def expire_quietly(gateway: PaymentGateway, session_id: str, order_id: str) -> CheckoutSession:
    """Expire the session at Stripe; one no longer open is read back as it is."""
    try:
        return gateway.expire_checkout_session(session_id, idempotency_key=f"cs-expire-{order_id}")
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        return gateway.retrieve_checkout_session(session_id)


def record_session(
    order_id: str, session: CheckoutSession, expires_at: datetime, runtime: Runtime
) -> Order:
    """Save the session on the order and keep the hold until it expires (plus the grace).

    An order closed meanwhile (its hold expired while Stripe answered) must never be
    paid: its session is expired at Stripe.
    """
    hold_until = expires_at + timedelta(seconds=HOLD_GRACE_SECONDS)
    with database().atomic():
        order = lock_order(order_id)
        if order.state == PENDING and order.checkout_session_id is None:
            touch(
                order,
                checkout_session_id=session.id,
                checkout_url=session.url,
                payment_status=PaymentStatus.REQUIRES_PAYMENT_METHOD,
            )
            record_event(
                order,
                "CHECKOUT_SESSION_CREATED",
                {
                    "sessionId": session.id,
                    "amount": session.amount_total,
                    "currency": session.currency,
                    "expiresAt": iso(expires_at),
                },
                actor="worker",
            )
            Reservation.update(expires_at=hold_until, updated_at=utcnow()).where(
                Reservation.order == order.id
            ).execute()
            seconds = max(1, int((hold_until - utcnow()).total_seconds()))
            Inventory(runtime.redis).extend(order.reservation_id, seconds)
    if order.state != PENDING:
        expire_quietly(runtime.gateway, session.id, order.id)
        return order
    checkout_status.publish(
        runtime.redis, order.id, **checkout_fields(order), holdExpiresAt=iso(hold_until)
    )
    return order


def iso(moment: datetime) -> str:
    """A naive UTC datetime as ISO 8601 with a Z, to the second."""
    return moment.replace(microsecond=0).isoformat() + "Z"


# --- events and ownership (I10) -------------------------------------------------------


def foreign_session(order: Order, session: CheckoutSession, *, actor: str) -> bool:
    """True (audited, counted, logged at ERROR) unless ``session`` is ``order``'s own:
    the session the order recorded, for the order's total and currency (I10)."""
    problems = []
    if session.id != order.checkout_session_id:
        problems.append("session")
    if session.amount_total != order.total:
        problems.append("amount")
    if session.currency.lower() != str(order.currency).lower():
        problems.append("currency")
    if not problems:
        return False
    record_event(
        order,
        "PAYMENT_MISMATCH_IGNORED",
        {
            "sessionId": session.id,
            "status": session.status,
            "amount": session.amount_total,
            "currency": session.currency,
            "expectedSessionId": order.checkout_session_id,
            "mismatch": problems,
        },
        actor,
    )
    SESSION_MISMATCHES.inc()
    log.error(
        "PAYMENT_MISMATCH on order %s: session %s (%s %s) is not its own (%s); ignored",
        order.id,
        session.id,
        session.amount_total,
        session.currency,
        ", ".join(problems),
    )
    return True


def adopt_intent(
    order: Order, session: CheckoutSession | None, intent: Intent | None, *, actor: str
) -> None:
    """Record the session's PaymentIntent on its order, once Stripe says it is the
    session's (inside the caller's transaction); anything else changes nothing."""
    if session is None or intent is None or order.payment_intent_id is not None:
        return
    if session.id != order.checkout_session_id or session.payment_intent != intent.id:
        return
    touch(order, payment_intent_id=intent.id)
    record_event(
        order,
        "PAYMENT_INTENT_CREATED",
        {
            "intentId": intent.id,
            "amount": intent.amount,
            "currency": intent.currency,
            "sessionId": session.id,
        },
        actor,
    )


def session_of_intent(
    gateway: PaymentGateway, order: Order, intent: Intent
) -> CheckoutSession | None:
    """The hosted order's session, re-read, when ``intent`` may be the one its buyer's
    attempt just made and ``order`` (as read before the event's transaction) has not
    recorded it yet; None otherwise."""
    if order.checkout_session_id is None or order.payment_intent_id:
        return None
    session = gateway.retrieve_checkout_session(order.checkout_session_id)
    return session if session.payment_intent == intent.id else None


def close_session(order: Order, runtime: Runtime) -> Intent | None:
    """Make the order's session unpayable (expired at Stripe, I8) unless it completed;
    return its intent as Stripe has it now (recorded on the order), or None."""
    assert order.checkout_session_id is not None
    gateway = runtime.gateway
    session = gateway.retrieve_checkout_session(order.checkout_session_id)
    if session.status == SESSION_OPEN:
        session = expire_quietly(gateway, session.id, order.id)
    if session.payment_intent is None:
        return None
    intent = gateway.retrieve_intent(session.payment_intent)
    with database().atomic():
        adopt_intent(lock_order(order.id), session, intent, actor="expiry")
    return intent


# --- the success page -----------------------------------------------------------------


def lookup_by_session(session_id: str, token_secrets: Sequence[str]) -> dict[str, Any]:
    """Back from Stripe's page: the order of ``session_id`` and its checkout token.

    A session id is a long random bearer value Stripe hands only to the buyer's browser
    (the ``successUrl``); an unknown one is NotFound, like every other miss.
    """
    order = Order.get_or_none(Order.checkout_session_id == session_id)
    stored = (order.checkout_session_id if order is not None else None) or ""
    matches = hmac.compare_digest(stored.encode(), session_id.encode()) and bool(stored)
    token = None
    if order is not None and matches:
        token = checkout_status.recover_token(order.id, order.checkout_token_hash, token_secrets)
    if order is None or token is None:
        raise NotFound("No order matches this Checkout Session.")
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "checkoutToken": token,
    }
