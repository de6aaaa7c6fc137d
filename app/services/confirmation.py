"""Server-side confirmation (wave 2): the buyer's ConfirmationToken pays the order.

The browser collects the payment method (``stripe.createConfirmationToken``) and sends
its ``ctoken_…`` with the cart; the worker creates AND confirms the intent in one Stripe
call (``checkout.place_order``) and this module applies the answer to the order. After a
decline the buyer retries with a new token on the same order, intent and hold
(``POST /api/checkout/<orderId>/confirm``): :func:`request_confirmation` admits the
retry at the edge (Redis only), :func:`confirm_payment` runs it in the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from redis import Redis

from app import keys, lua
from app.errors import IdempotencyKeyReused, InvalidState, PaymentProviderError
from app.gateways.payments import Intent
from app.services import checkout, checkout_status
from app.services.admission import fingerprint, idempotency_key_hash
from app.services.order_views import Located
from app.services.payments import apply_intent
from app.services.records import lock_order, publish_after_commit
from app.services.state_machine import PENDING, record_event
from models import Order
from models.db import database
from models.statuses import PaymentStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

# A payment in these statuses is already succeeding: a new attempt is refused (409).
SUCCEEDING = frozenset(
    {PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.REQUIRES_CAPTURE}
)


@dataclass(frozen=True)
class ConfirmRequest:
    """What ``POST /api/checkout/<id>/confirm`` answers, and whether to enqueue."""

    response: dict[str, Any]
    replayed: bool


def place_order(order_id: str, runtime: Runtime) -> checkout.Placement:
    """The checkout use case, then the server-side confirmation's answer applied."""
    placed = checkout.place_order(order_id, runtime)
    if placed.order is None or placed.confirmed is None:
        return placed
    order, outbox_ids = apply_attempt(placed.order.id, placed.confirmed, runtime)
    expire_at = placed.expire_at if order.state == PENDING else None
    return replace(placed, order=order, expire_at=expire_at, outbox_ids=outbox_ids)


def apply_attempt(
    order_id: str,
    intent: Intent,
    runtime: Runtime,
    refusal: dict[str, Any] | None = None,
    *,
    attempt: str | None = None,
) -> tuple[Order, list[int]]:
    """Apply a confirmation's answer; always publish, so a waiting buyer wakes up.

    ``attempt`` (a retry's token) gives the order's in-flight claim back on commit,
    before the outcome is published: a buyer woken by it may retry at once.
    """
    with database().atomic():
        if attempt is not None:
            database().after_commit(lambda: release_attempt(runtime.redis, order_id, attempt))
        order = lock_order(order_id)
        outbox_ids = apply_intent(order, intent, runtime, actor="worker")
        if order.state == PENDING:
            declined = order.payment_status == PaymentStatus.REQUIRES_PAYMENT_METHOD
            error = refusal or (order.last_payment_error if declined else None)
            publish_after_commit(runtime, order, error=error, extra={"confirming": None})
    return order, outbox_ids


def request_confirmation(
    redis: Redis, located: Located, *, idempotency_key: str, confirmation_token: str
) -> ConfirmRequest:
    """Admit a new attempt (once per Idempotency-Key); InvalidState when it cannot be paid.

    The same key and token answer the first response again (``replayed``); the same key
    with another token raises IdempotencyKeyReused. A refused request does not use up
    its key. An admitted one clears the last decline from the status and marks the payment
    ``requires_confirmation`` until the worker applies this attempt's outcome, so the
    buyer's long-poll waits for it instead of acting on what the last attempt left there
    (a decline, or the ``requires_action`` of a 3-D Secure the buyer failed).
    """
    order_id = located.order_id
    response = {
        "orderId": order_id,
        "state": PENDING,
        "statusUrl": f"/api/checkout/{order_id}",
    }
    digest = fingerprint({"orderId": order_id, "confirmationTokenId": confirmation_token})
    claim = keys.confirm_claim(idempotency_key_hash(idempotency_key))
    if not redis.set(claim, digest, nx=True, ex=keys.CONFIRM_CLAIM_TTL_SECONDS):
        if redis.get(claim) != digest:
            raise IdempotencyKeyReused("This Idempotency-Key was used with another request.")
        return ConfirmRequest(response, replayed=True)
    try:
        check_confirmable(located)
        claim_attempt(redis, order_id, confirmation_token)
    except InvalidState:
        redis.delete(claim)
        raise
    checkout_status.publish(
        redis,
        order_id,
        error=None,
        paymentStatus=PaymentStatus.REQUIRES_CONFIRMATION,
        confirming=confirmation_token,  # until apply_attempt publishes the outcome
    )
    return ConfirmRequest(response, replayed=False)


def claim_attempt(redis: Redis, order_id: str, confirmation_token: str) -> None:
    """Take the order's one in-flight attempt; InvalidState while another holds it.

    Without it every confirm was admitted: 300 calls queued 300 Stripe confirmations on
    the fleet's shared budget. The claim lives until the worker applied the outcome
    (:func:`release_attempt`), or ``CONFIRMING_TTL_SECONDS`` if the message is lost.
    """
    taken = redis.set(
        keys.confirming(order_id), confirmation_token, nx=True, ex=keys.CONFIRMING_TTL_SECONDS
    )
    if not taken:
        raise InvalidState(
            "A payment attempt of this order is in flight; wait for its outcome in the "
            "checkout status."
        )


def release_attempt(redis: Redis, order_id: str, confirmation_token: str) -> None:
    """Give the order's in-flight claim back if this attempt still holds it."""
    lua.run(redis, "unclaim", [keys.confirming(order_id)], [confirmation_token])


def check_confirmable(located: Located) -> None:
    """InvalidState unless the order is PENDING with an intent that may be paid again."""
    state: str
    status: str | None
    intent_id: str | None
    if located.order is not None:
        state, status = located.order.state, located.order.payment_status
        intent_id = located.order.payment_intent_id
    else:
        model = located.model or {}
        state, status = model.get("state") or PENDING, model.get("paymentStatus")
        intent_id = model.get("intentId")
    if state != PENDING:
        raise InvalidState(f"Only PENDING orders can be paid; this one is {state}.")
    if status in SUCCEEDING:
        raise InvalidState(f"A payment of this order is already {status}.")
    if not intent_id:
        raise InvalidState("The payment is still being set up; wait for the checkout status.")


def confirm_payment(order_id: str, confirmation_token: str, runtime: Runtime) -> list[int]:
    """A new attempt on the order's intent with ``confirmation_token``; outbox ids to send.

    Stripe key ``pi-confirm-<orderId>-<tokenId>``: a redelivered message never confirms
    twice. A token Stripe refuses (spent, expired) or an intent that moved on is shown
    to the buyer as ``confirmation_failed`` and the intent's current status applied.
    """
    order = Order.get_or_none(Order.id == order_id)
    if order is None or order.state != PENDING or order.payment_intent_id is None:
        log.warning("order %s: nothing to confirm (%s)", order_id, order and order.state)
        release_attempt(runtime.redis, order_id, confirmation_token)
        return []
    with database().atomic():
        record_event(
            lock_order(order_id),
            "PAYMENT_CONFIRMATION_REQUESTED",
            {"intentId": order.payment_intent_id, "confirmationToken": confirmation_token},
            "worker",
        )
    gateway = runtime.gateway
    refusal = None
    try:
        intent = gateway.confirm_intent(
            order.payment_intent_id,
            confirmation_token=confirmation_token,
            return_url=checkout.return_url(runtime.config.public_url, order_id),
            idempotency_key=f"pi-confirm-{order_id}-{confirmation_token}",
        )
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        log.warning("order %s: confirmation refused: %s", order_id, exc.message)
        refusal = {"code": "confirmation_failed", "message": exc.message}
        intent = gateway.retrieve_intent(order.payment_intent_id)
    return apply_attempt(order_id, intent, runtime, refusal, attempt=confirmation_token)[1]
