"""The read side of orders: the JSON bodies of the order, tracking and checkout endpoints.

An order is answered from its database row once the worker has written it, and from
the checkout read model in Redis before that (``GET /api/orders/<id>`` shows a PENDING
order with no events or refunds rather than a 404) or after the read model expired
(``GET /api/checkout/<id>`` falls back to the row). Views locate an order, check access
with the token hash and owner found here, then ask for the body.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from redis import Redis

from app import keys, lua
from app.errors import NotFound
from app.gateways.rate_limit import StripeBudget
from app.services import admission, checkout_status
from app.services.order_body import iso_utc_micro, order_events, order_view, priced
from app.services.pricing.promotions import PromotionTerms
from app.services.records import checkout_block, totals
from app.services.state_machine import FULFILLED, FULFILLING, PAID, PENDING, TERMINAL
from models import Order, OrderEvent
from models.statuses import CaptureMethod, PaymentStatus

# The path an order takes when all goes well; the track view's progress shows what is ahead.
NORMAL_PATH = (PENDING, PAID, FULFILLING, FULFILLED)


@dataclass(frozen=True)
class Located:
    """An order found by id: its row when written, else its checkout read model."""

    order_id: str
    token_hash: str | None
    user_id: str | None
    order: Order | None = None
    model: dict[str, Any] | None = None


def find_order(order_id: str) -> Order | None:
    """The order row, or None."""
    return Order.get_or_none(Order.id == order_id)


def locate_order(redis: Redis, order_id: str) -> Located:
    """The written order, else its read model (a submission not yet written); NotFound."""
    order = find_order(order_id)
    if order is not None:
        return Located(order_id, order.checkout_token_hash, order.user_id, order=order)
    return _from_read_model(redis, order_id) or _not_found()


def locate_checkout(redis: Redis, order_id: str) -> Located:
    """The checkout read model, else (it expired) the order row; NotFound."""
    return _from_read_model(redis, order_id) or _from_row(order_id)


def order_body(located: Located) -> dict[str, Any]:
    """The ``GET /api/orders/<id>`` body of a located order."""
    if located.order is not None:
        return order_view(located.order)
    return pending_view(located.order_id, located.model or {})


@dataclass(frozen=True)
class Waiting:
    """A long-poll's means and limits: the process's feed, the caps, who asks (the client
    IP, and the hash of the checkout token the request presents, if any)."""

    feed: checkout_status.ChangeFeed
    caps: checkout_status.WaiterCaps
    client_ip: str
    presented: str | None = None


def checkout_status_body(
    redis: Redis,
    order_id: str,
    *,
    authorize: Callable[[str | None, str | None], str],
    wait: int,
    since: int | None,
    waiting: Waiting,
    budget: StripeBudget | None = None,
) -> dict[str, Any]:
    """The checkout status body of ``order_id`` for a caller ``authorize`` admits (it is
    given the order's token hash and owner, answers the credential, raises otherwise).

    From the read model it long-polls up to ``wait`` seconds for a version after
    ``since`` (default: the current one) on the process's change feed, counted against
    the caps (RateLimited beyond them, once access is checked); the row answers at once.
    """
    if not wait or (since is not None and since < checkout_status.FIRST_VERSION):
        # Nothing to wait for (a caller that has seen no version yet is answered at once):
        # the plain read, without listening or entering the caps.
        return _plain_status(redis, order_id, authorize, budget)
    with waiting.feed.listen(order_id, wait) as listener:
        # One round trip reads the model and, for its token's holder with nothing newer
        # yet, enters the caps: a woken answer then costs one more (read and leave).
        watch = waiting.caps.open(redis, order_id, waiting.presented, waiting.client_ip, since)
        try:
            located = _located(order_id, watch.model) or _from_row(order_id)
            credential = authorize(located.token_hash, located.user_id)
            if located.order is not None:
                return checkout_view_from_order(located.order)
            watch.refuse()
            current = located.model or {}
            baseline = current["version"] if since is None else since
            if current["version"] <= baseline:
                if not watch.held:  # not counted by the token: by the credential found
                    watch = waiting.caps.watch(redis, order_id, credential, waiting.client_ip)
                changed = listener.watched(watch, baseline)
                current = changed or checkout_status.read(redis, order_id) or current
        finally:
            watch.release()
    return _model_body(redis, order_id, current, budget)


def _plain_status(
    redis: Redis,
    order_id: str,
    authorize: Callable[[str | None, str | None], str],
    budget: StripeBudget | None,
) -> dict[str, Any]:
    """The status body at once: the read model with, in the same round trip, the queue
    estimate it shows while the intent is being created (asked either way: the estimate
    rides the read's round trip, which it would otherwise double)."""
    if budget is None:
        located = locate_checkout(redis, order_id)
        authorize(located.token_hash, located.user_id)
        return checkout_body(redis, located)
    name, names, args = budget.peek_call()
    read = ("HGETALL", keys.checkout(order_id))
    rate, (raw, rank) = lua.run_beside(
        redis, name, names, args, read, admission.queue_rank(order_id)
    )
    model = checkout_status.decode(raw) if raw else None
    located = _located(order_id, model) or _from_row(order_id)
    authorize(located.token_hash, located.user_id)
    if located.order is not None:
        return checkout_view_from_order(located.order)
    estimate = _estimate(admission.position_of(rank), int(rate))
    return _model_body(redis, order_id, located.model or {}, budget, estimate)


def checkout_body(
    redis: Redis, located: Located, *, budget: StripeBudget | None = None
) -> dict[str, Any]:
    """The checkout status body of a located order (read model or row), at once."""
    if located.order is not None:
        return checkout_view_from_order(located.order)
    return _model_body(redis, located.order_id, located.model or {}, budget)


def _model_body(
    redis: Redis,
    order_id: str,
    model: dict[str, Any],
    budget: StripeBudget | None,
    estimate: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The body from the read model. While the intent is being created, ``queue`` says
    how many buyers are ahead and about how long the wait is at the ``budget``'s intents
    per second (``estimate`` when already read, else asked only then; no budget: 0)."""
    body = checkout_view(order_id, model)
    if body["payment"]["status"] == PaymentStatus.CREATING and body["state"] == PENDING:
        body["queue"] = estimate or queue_estimate(redis, order_id, budget)
    return body


def queue_estimate(redis: Redis, order_id: str, budget: StripeBudget | None) -> dict[str, int]:
    """``{position, etaSeconds}``: buyers ahead in the queue to Stripe, and the wait at
    the budget's rate (asked in the same round trip as the position)."""
    if budget is None:
        position, stripe_rate = admission.queue_position(redis, order_id), 0
    else:
        name, names, args = budget.peek_call()
        rate, (rank,) = lua.run_beside(redis, name, names, args, admission.queue_rank(order_id))
        position, stripe_rate = admission.position_of(rank), int(rate)
    return _estimate(position, stripe_rate)


def _estimate(position: int, stripe_rate: int) -> dict[str, int]:
    """``{position, etaSeconds}`` at ``stripe_rate`` intents a second (0: no ETA)."""
    eta = math.ceil((position + 1) / stripe_rate) if stripe_rate > 0 else 0
    return {"position": position, "etaSeconds": eta}


def track(order_number: str, email: str) -> dict[str, Any]:
    """The public view of the order with this number and e-mail; NotFound otherwise."""
    order = Order.get_or_none(Order.order_number == order_number.upper())
    # Compare e-mails in constant time and answer the same 404 for both mismatches.
    if order is None or not hmac.compare_digest(
        order.email.strip().lower().encode(), email.strip().lower().encode()
    ):
        raise NotFound("No order matches this order number and e-mail.")
    return public_view(order)


def lookup_by_intent(
    intent_id: str, client_secret: str, token_secrets: Sequence[str]
) -> dict[str, Any]:
    """Back from a redirect: the order of ``intent_id`` and its checkout token, when
    ``client_secret`` is that intent's (constant-time); NotFound otherwise, the same for
    an unknown intent, a wrong secret or another order's secret."""
    order = Order.get_or_none(Order.payment_intent_id == intent_id)
    stored = (order.client_secret if order is not None else None) or ""
    # Compare even when there is nothing to compare with: every miss costs the same.
    matches = hmac.compare_digest(stored.encode(), client_secret.encode()) and bool(stored)
    token = None
    if order is not None and matches:
        token = checkout_status.recover_token(order.id, order.checkout_token_hash, token_secrets)
    if order is None or token is None:
        raise NotFound("No order matches this payment.")
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "checkoutToken": token,
    }


def pending_view(order_id: str, model: dict[str, Any]) -> dict[str, Any]:
    """The order as the read model knows it before the worker wrote the row."""
    submission = model.get("submission") or {}
    return {
        "orderId": order_id,
        "orderNumber": model.get("orderNumber"),
        "state": model.get("state") or PENDING,
        "email": submission.get("email"),
        **priced(model.get("lineItems") or [], model.get("totals") or None),
        "shippingOptionId": submission.get("shippingOptionId"),
        "promotion": (
            PromotionTerms.from_json(model["promotion"]).summary()
            if model.get("promotion")
            else None
        ),
        "shippingAddress": submission.get("shippingAddress"),
        "billingAddress": submission.get("billingAddress"),
        "paymentIntentId": model.get("intentId") or None,
        "paymentStatus": model.get("paymentStatus") or PaymentStatus.CREATING,
        "reservationId": model.get("reservationId") or submission.get("reservationId"),
        "amountRefunded": 0,
        "refunds": [],
        "dispute": None,
        "events": [],
        "createdAt": submission.get("submittedAt"),
    }


def public_view(order: Order) -> dict[str, Any]:
    """What anyone with the order number and e-mail may see (no payloads, no ids)."""
    events = order_events(order)
    return {
        "orderNumber": order.order_number,
        "email": order.email,
        "state": order.state,
        **priced(order.line_items or [], totals(order)),
        "createdAt": iso_utc_micro(order.created_at),
        "events": [{"ts": iso_utc_micro(e.ts), "type": e.type} for e in events],
        "progress": progress(order, events),
    }


def progress(order: Order, events: list[OrderEvent]) -> list[dict[str, Any]]:
    """``[{state, reachedAt}]``: the states reached, oldest first, from the audit trail,
    then the states still ahead on the normal path (``reachedAt`` null).

    PENDING is reached when the order was created; each ``STATE_CHANGED`` event adds its
    ``to``. Nothing is ahead of a terminal state (FAILED, CANCELED, REFUNDED) or FULFILLED.
    """
    reached = [{"state": PENDING.value, "reachedAt": iso_utc_micro(order.created_at)}]
    for event in events:
        target = (event.payload or {}).get("to") if event.type == "STATE_CHANGED" else None
        if target:
            reached.append({"state": target, "reachedAt": iso_utc_micro(event.ts)})
    if order.state in TERMINAL:
        return reached
    seen = {step["state"] for step in reached}
    furthest = max((NORMAL_PATH.index(s) for s in seen if s in NORMAL_PATH), default=0)
    ahead = [s for s in NORMAL_PATH[furthest + 1 :] if s not in seen]
    return reached + [{"state": state.value, "reachedAt": None} for state in ahead]


def checkout_view(order_id: str, model: dict[str, Any]) -> dict[str, Any]:
    """The contract's checkout status body from the Redis read model.

    While a retry (``POST /api/checkout/<id>/confirm``) awaits its outcome (``confirming``,
    cleared when the worker applies it), the payment reads ``requires_confirmation``
    without an error, whatever a late webhook of the previous attempt wrote meanwhile.
    """
    state = model.get("state") or PENDING
    confirming = bool(model.get("confirming")) and state == PENDING
    payment: dict[str, Any] = {
        "status": PaymentStatus.REQUIRES_CONFIRMATION
        if confirming
        else model.get("paymentStatus") or PaymentStatus.CREATING,
        "intentId": model.get("intentId") or None,
        "clientSecret": model.get("clientSecret") or None,
        "captureMethod": model.get("captureMethod") or CaptureMethod.AUTOMATIC,
    }
    if model.get("userId"):
        # A JWT buyer's saved cards, while the order can still be paid.
        secret = model.get("customerSessionClientSecret") if state == PENDING else None
        payment["customerSessionClientSecret"] = secret or None
    return {
        "orderId": order_id,
        "orderNumber": model.get("orderNumber"),
        "state": state,
        "payment": payment,
        **priced(model.get("lineItems") or [], model.get("totals") or None),
        "holdExpiresAt": model.get("holdExpiresAt") or None,
        "checkout": model.get("checkout") or None,
        "error": None if confirming else model.get("error") or None,
        "version": model.get("version", 0),
    }


def checkout_view_from_order(order: Order) -> dict[str, Any]:
    """The checkout status body from the order row (the read model expired)."""
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "payment": {
            "status": order.payment_status,
            "intentId": order.payment_intent_id,
            # Only a live order may still be paid: the secret is useless otherwise.
            "clientSecret": order.client_secret if order.state == PENDING else None,
            "captureMethod": order.capture_method,
            # A CustomerSession lives 30 minutes: the read model's is gone by now.
            **({"customerSessionClientSecret": None} if order.user_id else {}),
        },
        **priced(order.line_items or [], totals(order)),
        "holdExpiresAt": None,
        "checkout": checkout_block(order),
        "error": order.last_payment_error or None,
        "version": 0,
    }


def _from_read_model(redis: Redis, order_id: str) -> Located | None:
    return _located(order_id, checkout_status.read(redis, order_id))


def _located(order_id: str, model: dict[str, Any] | None) -> Located | None:
    """The order located by its read model, if that can answer."""
    if model is None or not model.get("tokenHash"):
        # Absent, or only what a publish wrote after the read model was lost (Redis
        # flushed, or the model expired): without admission's fields (the token hash
        # above all) it cannot answer, so the order row does.
        return None
    return Located(order_id, model.get("tokenHash"), model.get("userId") or None, model=model)


def _from_row(order_id: str) -> Located:
    """The order located by its row; NotFound."""
    order = find_order(order_id)
    if order is None:
        _not_found()
    return Located(order_id, order.checkout_token_hash, order.user_id, order=order)


def _not_found() -> NoReturn:
    raise NotFound("No such order.")
