"""The checkout use case: an admitted submission becomes an order with its PaymentIntent.

The submit endpoint only admits (Redis); the worker calls :func:`place_order`, which
prices the cart from the database, writes order + reservation + first audit events in
ONE transaction (idempotent: a second run finds the order), creates the PaymentIntent
(key ``pi-create-<orderId>``, so retries never create a second one), publishes the
client secret, and returns the next step: when the hold's expiry must run.

Server-side confirmation (wave 2): when the submission carries a ``confirmationTokenId``
the intent is created AND confirmed in one Stripe call (key
``pi-create-<orderId>-<tokenId>``; one token per order, so still one intent per order);
the intent as Stripe answered is handed back in :class:`Placement` for the layer above
(``confirmation.py``) to apply to the order.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import peewee
from redis import Redis

from app import keys
from app.errors import IdempotencyKeyReused, InvalidRequest, PaymentProviderError
from app.gateways.payments import FINAL_STATUSES, Intent
from app.services import (
    admission,
    checkout_status,
    customers,
    hosted,
    promotions,
    records,
    shop_events,
)
from app.services.catalog import product_prices
from app.services.holds import release_hold
from app.services.inventory import Inventory
from app.services.pricing import DEFAULT_PRICER, Quote, price_cart
from app.services.pricing.promotions import PromotionTerms
from app.services.pricing.stripe_tax import pricer_for
from app.services.records import checkout_fields, lock_order, to_utc_naive, touch
from app.services.state_machine import (
    CANCELED,
    FAILED,
    PENDING,
    record_event,
    record_events,
    transition,
)
from models import Order, OrderEvent, Reservation, statements
from models.db import database, utcnow
from models.statuses import CaptureMethod, PaymentStatus, ShopEventType

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unprocessable:
    """Why a submission could not become an order (published to the read model)."""

    code: str
    message: str


@dataclass(frozen=True)
class Placement:
    """What :func:`place_order` did, and the next steps: run the hold's expiry at
    ``expire_at``; apply ``confirmed`` (the intent a server-side confirmation just left,
    still to be applied to the order); send the ``outbox_ids``."""

    order: Order | None
    expire_at: datetime | None = None
    confirmed: Intent | None = None
    outbox_ids: list[int] = field(default_factory=list)


def place_order(order_id: str, runtime: Runtime) -> Placement:
    """Submission → order → PaymentIntent; says when the hold's expiry must run."""
    written = written_submission(order_id, runtime)
    order, confirmed = written.order, None
    if order is not None and order.state == PENDING:
        order, confirmed = open_payment(order, runtime, written)
    if order is None or order.state != PENDING:
        return Placement(order)
    return Placement(order, written.hold_expires_at or hold_expiry(order.id), confirmed)


def hold_expiry(order_id: str) -> datetime | None:
    """When the order's hold expires (its reservation row), None without one."""
    reservation = statements.get(Reservation, order_id, by=Reservation.order)
    return reservation.expires_at if reservation is not None else None


def create_order_from_submission(order_id: str, runtime: Runtime) -> Order | None:
    """Make sure the order of an admitted submission exists and has its PaymentIntent.

    Returns the order, or None when the submission is gone or unprocessable (its hold
    is released and the reason published). Retryable Stripe errors propagate.
    """
    written = written_submission(order_id, runtime)
    if written.order is None or written.order.state != PENDING:
        return written.order
    return open_payment(written.order, runtime, written)[0]


@dataclass(frozen=True)
class Written:
    """The order of an admitted submission (or None); when this run wrote it now, the
    submission it was written from (read once per run) and when its hold expires."""

    order: Order | None
    submission: dict[str, Any] | None = None
    hold_expires_at: datetime | None = None


def write_submission(order_id: str, runtime: Runtime) -> Order | None:
    """The order row of an admitted submission (written now if need be), or None."""
    return written_submission(order_id, runtime).order


def written_submission(order_id: str, runtime: Runtime) -> Written:
    """:func:`write_submission`, saying whether the order was written now, and from what."""
    redis = runtime.redis
    view, unwritten = admitted(redis, order_id)
    # A submission still waiting in {shop}:pending has no row yet (the row is written
    # before it leaves): no SELECT. A row written by a run that died before removing it
    # is found by the INSERT's conflict (write_order), as a concurrent run's is.
    order = None if unwritten and writable(view) else statements.get(Order, order_id)
    submission: dict[str, Any] | None = None
    expires_at: datetime | None = None
    if order is None:
        if view is None or not view.get("submission"):
            log.warning("submission %s is gone; nothing to create", order_id)
            admission.mark_written(redis, order_id)
            return Written(None)
        if view.get("state") not in (None, "", PENDING):
            # Expired (or refused) before a worker got to it.
            admission.mark_written(redis, order_id)
            return Written(None)
        try:
            order, created = write_order(order_id, view, runtime)
        except (InvalidRequest, IdempotencyKeyReused) as exc:
            reject_submission(runtime, order_id, view, Unprocessable(exc.code, exc.message))
            return Written(None)
        if created:
            submission, expires_at = view["submission"], hold_expiry_of(view)
    if unwritten:  # (it never enters {shop}:pending again once out)
        admission.mark_written(redis, order_id)
    return Written(order, submission, expires_at)


def admitted(redis: Redis, order_id: str) -> tuple[dict[str, Any] | None, bool]:
    """The submission's read model, and whether it still waits in ``{shop}:pending`` for
    its row (one round trip)."""
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.checkout(order_id))
    pipe.zscore(keys.PENDING, order_id)
    raw, score = pipe.execute()
    return (checkout_status.decode(raw) if raw else None), score is not None


def writable(view: dict[str, Any] | None) -> bool:
    """Whether a read model holds a submission a worker may still write (PENDING)."""
    if view is None or not view.get("submission"):
        return False
    return view.get("state") in (None, "", PENDING)


def hold_expiry_of(view: dict[str, Any]) -> datetime:
    """When an admitted submission's hold expires (the reservation row keeps it too)."""
    return to_utc_naive(view["holdExpiresAt"])


def submission_lines(submission: dict[str, Any]) -> list[tuple[str, int]]:
    """The ``(sku, quantity)`` lines of a stored submission."""
    lines = []
    for item in submission.get("items") or []:
        if isinstance(item, dict):
            lines.append((str(item["sku"]), int(item["quantity"])))
        else:
            lines.append((str(item[0]), int(item[1])))
    return lines


def stored_promotion(terms: PromotionTerms) -> dict[str, Any]:
    """``orders.promotion``: the code, its words and the terms the order was priced with."""
    return {**terms.summary(), "terms": asdict(terms)}


def write_order(order_id: str, view: dict[str, Any], runtime: Runtime) -> tuple[Order, bool]:
    """Price the submission and write order + reservation + ORDER_CREATED + STOCK_HELD.

    One transaction; returns (the order, True), or (that order, False) when another
    worker wrote it first.
    Raises InvalidRequest when the cart can no longer be priced (e.g. a SKU removed), and
    IdempotencyKeyReused when another order holds the key (:func:`key_taken`). With
    ``TAX_PROVIDER=stripe`` the tax is the quote's cached calculation (or a new one),
    kept as ``tax_calculation_id``; TaxUnavailable propagates (the actor retries).
    """
    currency = runtime.config.store_currency
    submission = view["submission"]
    lines = submission_lines(submission)
    # The code's terms as admission saw them (it redeemed the code): priced as they were.
    promotion = PromotionTerms.from_json(view["promotion"]) if view.get("promotion") else None
    pricer = pricer_for(runtime)

    def priced() -> Quote:
        return price_cart(
            lines,
            submission.get("shippingAddress"),
            currency,
            product_prices(sku for sku, _ in lines),
            shipping_option_id=submission.get("shippingOptionId"),
            promotion=promotion,
            pricer=pricer,
        )

    # The table's pricer calls nobody: the prices are then read in the order's own
    # transaction (an autocommitted SELECT was a PostgreSQL transaction of its own).
    # Stripe Tax's call stays outside it: no transaction waits on the network.
    quote = None if pricer is DEFAULT_PRICER else priced()
    reservation_id = submission.get("reservationId") or view.get("reservationId")
    expires_at = hold_expiry_of(view)
    try:
        with database().atomic():
            if quote is None:
                quote = priced()
            order = statements.create(
                Order,
                id=order_id,
                order_number=view["orderNumber"],
                idempotency_key=submission.get("idempotencyKey") or f"order:{order_id}",
                state=PENDING,
                email=submission["email"],
                user_id=view.get("userId") or None,
                line_items=[line.to_dict() for line in quote.line_items],
                subtotal=quote.subtotal,
                discount=quote.discount,
                shipping=quote.shipping,
                shipping_option=quote.shipping_option_id,
                promotion_code=None if promotion is None else promotion.code,
                promotion=None if promotion is None else stored_promotion(promotion),
                tax=quote.tax,
                tax_calculation_id=quote.tax_calculation_id,
                total=quote.total,
                currency=quote.currency,
                shipping_address=submission.get("shippingAddress") or {},
                billing_address=submission.get("billingAddress"),
                reservation_id=reservation_id,
                checkout_token_hash=view.get("tokenHash") or "",
                payment_status=PaymentStatus.CREATING,
                capture_method=view.get("captureMethod") or CaptureMethod.AUTOMATIC,
            )
            statements.create(
                Reservation,
                id=reservation_id,
                order=order,
                items=[list(x) for x in lines],
                expires_at=expires_at,
            )
            trail = record_events(
                order,
                [
                    (
                        "ORDER_CREATED",
                        {
                            "orderNumber": order.order_number,
                            "total": order.total,
                            "currency": order.currency,
                            "requestFingerprint": submission.get("requestFingerprint"),
                        },
                    ),
                    (
                        "STOCK_HELD",
                        {
                            "reservationId": reservation_id,
                            "items": [list(x) for x in lines],
                            "expiresAt": admission.iso_utc(expires_at),
                        },
                    ),
                ],
                actor="worker",
            )
            # The trail is these two events, no refund: the body needs no read back.
            shop_events.record(order, ShopEventType.ORDER_CREATED, trail=trail)
    except peewee.IntegrityError:
        # A concurrent run (or one that died before leaving {shop}:pending) wrote it
        # first (same order id): use theirs.
        existing = statements.get(Order, order_id)
        if existing is not None:
            return existing, False
        taken = key_taken(submission)
        if taken is None:
            raise
        raise taken from None
    return order, True


def key_taken(submission: dict[str, Any]) -> IdempotencyKeyReused | None:
    """Why another order holds this submission's key (its 24 h Redis claim lapsed), or None.

    The same request again is told the order it made (its number, which the buyer can
    track with the e-mail they sent); another request is refused as the submit's 422 is.
    Either way at once: retrying would hit the unique index forever.
    """
    original = Order.get_or_none(Order.idempotency_key == submission.get("idempotencyKey"))
    if original is None:
        return None
    created = (
        OrderEvent.select()
        .where((OrderEvent.order == original.id) & (OrderEvent.type == "ORDER_CREATED"))
        .first()
    )
    fingerprint = submission.get("requestFingerprint")
    if (
        fingerprint
        and created is not None
        and created.payload.get("requestFingerprint") == (fingerprint)
    ):
        return IdempotencyKeyReused(
            f"This Idempotency-Key already placed order {original.order_number}; "
            "no new order was made."
        )
    return IdempotencyKeyReused(
        "This Idempotency-Key was used for another request; use a new key for a new checkout."
    )


def reject_submission(
    runtime: Runtime, order_id: str, view: dict[str, Any], why: Unprocessable
) -> None:
    """A submission that will never become an order: release its hold, publish why."""
    submission = view.get("submission") or {}
    reservation_id = submission.get("reservationId") or view.get("reservationId")
    if reservation_id:
        Inventory(runtime.redis).release(reservation_id)
    if view.get("promotion"):
        code = PromotionTerms.from_json(view["promotion"]).code
        promotions.give_back(runtime.redis, order_id, code)
    checkout_status.publish(
        runtime.redis,
        order_id,
        state=CANCELED if why.code == "hold_expired" else FAILED,
        paymentStatus=PaymentStatus.CANCELED,
        error={"code": why.code, "message": why.message},
    )
    admission.mark_written(runtime.redis, order_id)
    log.warning("submission %s unprocessable: %s (%s)", order_id, why.code, why.message)


# --- the PaymentIntent of a new order ---


# Recorded by the expiry of an order that has no saved intent id (expiry.py): from then
# on no intent is created for the order, so Stripe's search can be trusted once the
# search delay has passed.
INTENT_LOOKUP = "PAYMENT_INTENT_LOOKUP"


def intent_metadata(order: Order) -> dict[str, str]:
    """The metadata every PaymentIntent of ours carries."""
    return {
        "orderId": order.id,
        "reservationId": order.reservation_id,
        "orderNumber": order.order_number,
    }


def ensure_intent(order: Order, runtime: Runtime) -> Order:
    """Create the order's PaymentIntent (once: key ``pi-create-<orderId>``) and publish it.

    Retryable provider errors propagate (the actor retries); permanent ones fail the
    order and release its hold.
    """
    return open_payment(order, runtime)[0]


def return_url(config_public_url: str, order_id: str) -> str:
    """Where a redirect-based payment method sends the buyer back: the order page."""
    return f"{config_public_url}/order/{order_id}"


def token_in(submission: dict[str, Any] | None) -> str | None:
    """The ConfirmationToken of a stored submission, if any."""
    token = (submission or {}).get("confirmationTokenId")
    return str(token) if token else None


def open_payment(
    order: Order, runtime: Runtime, written: Written | None = None
) -> tuple[Order, Intent | None]:
    """Create the order's intent — and confirm it, with the submitted token — then publish.

    Returns the order and, when a token confirmed it now, the intent Stripe answered (to
    be applied by the caller). A token Stripe refuses (spent, expired) still leaves the
    order an unconfirmed intent, so the buyer may retry (``/confirm`` or client secret).
    ``written``: the order was written by this run, from that submission (not read again).
    """
    if order.payment_intent_id is not None or order.checkout_session_id is not None:
        # A re-run (duplicate message): republish, keeping any decline already shown.
        checkout_status.publish(runtime.redis, order.id, **checkout_fields(order))
        offer_saved_cards(order, runtime)
        return order, None
    submission = written.submission if written is not None else None
    # An order this run wrote, under its order lock, cannot have an expiry's lookup yet.
    if submission is None and intent_creation_stopped(order.id):
        log.warning("order %s: its hold expired; no intent is created any more", order.id)
        return order, None
    if submission is None:
        submission = admission.load_submission(runtime.redis, order.id)
    if hosted.wants_hosted(submission):
        assert submission is not None
        return open_hosted(order, runtime, submission), None
    token = token_in(submission)
    refusal = None
    try:
        intent = create_intent(order, runtime, token)
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        if token is None:
            fail_without_intent(order, runtime, exc)
            return Order.get_by_id(order.id), None
        log.warning("order %s: confirmation token refused: %s", order.id, exc.message)
        refusal = {"code": "confirmation_failed", "message": exc.message}
        token = None
        try:
            intent = create_intent(order, runtime, None)
        except PaymentProviderError as again:
            if again.retryable:
                raise
            fail_without_intent(order, runtime, again)
            return Order.get_by_id(order.id), None
    if token is not None:
        return store_intent(order.id, intent, runtime, status=PaymentStatus.CREATING), intent
    order = store_intent(order.id, intent, runtime)
    if order.state == PENDING:
        # The client secret the buyer waits for: tried again through a Redis failover,
        # then raised so the actor's retry publishes it (the re-run path above).
        fields = {**checkout_fields(order), "error": refusal}
        records.publish_with_retries(runtime, order, fields, reraise=True)
        offer_saved_cards(order, runtime)
    return order, None


def offer_saved_cards(order: Order, runtime: Runtime) -> None:
    """A JWT buyer's checkout status gets a CustomerSession secret (once), so the Payment
    Element lists the buyer's saved cards. Without one the buyer still pays with a new
    card: a permanent refusal is logged, a retryable one retried by the actor."""
    if not order.user_id or order.state != PENDING:
        return
    view = checkout_status.read(runtime.redis, order.id) or {}
    if view.get("customerSessionClientSecret"):
        return
    customer = customers.customer_of(order.user_id)
    if customer is None:
        return
    try:
        secret = runtime.gateway.create_customer_session(customer)
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        log.warning("order %s: no customer session: %s", order.id, exc.message)
        return
    checkout_status.publish(runtime.redis, order.id, customerSessionClientSecret=secret)


def save_requested(runtime: Runtime, order_id: str) -> bool:
    """Whether the buyer asked to save the payment method (``savePaymentMethod``)."""
    submission = admission.load_submission(runtime.redis, order_id) or {}
    return submission.get("savePaymentMethod") is True


def open_hosted(order: Order, runtime: Runtime, submission: dict[str, Any]) -> Order:
    """A Checkout Session instead of an intent; its total checked against ours first."""
    expires_at = hosted.fix_expiry(order.id)
    try:
        session = hosted.create_session(order, runtime, submission, expires_at)
    except PaymentProviderError as exc:
        if exc.retryable:
            raise
        fail_without_intent(order, runtime, exc)
        return Order.get_by_id(order.id)
    problem = hosted.total_mismatch(order, session)
    if problem is not None:
        hosted.SESSION_MISMATCHES.inc()
        hosted.expire_quietly(runtime.gateway, session.id, order.id)  # never payable
        error = PaymentProviderError(problem, retryable=False, provider_code=hosted.AMOUNT_MISMATCH)
        fail_without_intent(
            order, runtime, error, published={"code": hosted.AMOUNT_MISMATCH, "message": problem}
        )
        return Order.get_by_id(order.id)
    return hosted.record_session(order.id, session, expires_at, runtime)


def create_intent(order: Order, runtime: Runtime, token: str | None) -> Intent:
    """Stripe's create call; with ``token``, create and confirm in one call.

    A JWT buyer's intent is made for their Stripe Customer (created once, here, if need
    be), and saves its method on success when they asked (``savePaymentMethod``).
    """
    customer = customers.ensure_customer(order.user_id, runtime.gateway) if order.user_id else None
    save = customer is not None and save_requested(runtime, order.id)
    return runtime.gateway.create_intent(
        amount=order.total,
        currency=order.currency,
        idempotency_key=f"pi-create-{order.id}" + (f"-{token}" if token else ""),
        metadata=intent_metadata(order),
        receipt_email=order.email,
        description=f"Order {order.order_number}",
        capture_method=order.capture_method,
        confirmation_token=token,
        return_url=return_url(runtime.config.public_url, order.id) if token else None,
        customer=customer,
        setup_future_usage=customers.SAVE_USAGE if save else None,
    )


def unopened_order_ids(limit: int, *, older_than: datetime) -> list[str]:
    """PENDING orders written before ``older_than`` that have neither a PaymentIntent nor
    a Checkout Session (the clock re-enqueues ``create_payment_intent`` for them).

    The submission leaves ``{shop}:pending`` once its row is written, before the intent
    is created: an actor that fails after that (a Redis failover mid-way) and whose retry
    message is lost with the primary left an order nobody would open, and its buyer's
    hold ran out (the failover suite's "ended_before_paying: CANCELED").
    """
    rows: Any = (  # tuples(): each row is (id,)
        Order.select(Order.id)
        .where(
            (Order.state == PENDING)
            & Order.payment_intent_id.is_null()
            & Order.checkout_session_id.is_null()
            & (Order.created_at < older_than)
        )
        .order_by(Order.created_at)
        .limit(limit)
        .tuples()
    )
    return [str(row[0]) for row in rows]


def intent_creation_stopped(order_id: str) -> bool:
    """Whether the expiry is looking this order's intent up at Stripe (see INTENT_LOOKUP)."""
    return (
        OrderEvent.select()
        .where((OrderEvent.order == order_id) & (OrderEvent.type == INTENT_LOOKUP))
        .exists()
    )


def store_intent(
    order_id: str, intent: Intent, runtime: Runtime, *, status: str | None = None
) -> Order:
    """Record the new intent on the order; cancel it if the order closed meanwhile.

    ``status`` overrides the payment status saved (a confirmed intent is saved as
    ``creating`` so that applying its real status afterwards records the change).
    """
    with database().atomic():
        # One statement sets the intent on an order that has none yet (the row's lock
        # taken by the UPDATE, as FOR UPDATE took it) and answers the row as it is now.
        order = statements.update_returning(
            Order,
            order_id,
            {
                Order.payment_intent_id: intent.id,
                Order.client_secret: intent.client_secret,
                Order.payment_status: status or intent.status,
                Order.updated_at: utcnow(),
            },
            expect={Order.payment_intent_id: None},
        )
        if order is None:  # it had one already: nothing to write
            order = lock_order(order_id)
        else:
            record_event(
                order,
                "PAYMENT_INTENT_CREATED",
                {"intentId": intent.id, "amount": intent.amount, "currency": intent.currency},
                actor="worker",
            )
    if order.state != PENDING and intent.status not in FINAL_STATUSES:
        # The hold expired while the intent was being created: it must never be paid.
        runtime.gateway.cancel_intent(
            intent.id, reason="abandoned", idempotency_key=f"pi-cancel-{order.id}"
        )
    return order


def fail_without_intent(
    order: Order,
    runtime: Runtime,
    exc: PaymentProviderError,
    published: dict[str, Any] | None = None,
) -> None:
    """A permanent error creating the intent (or session): FAILED, hold released, error
    published (``published``, else a generic ``payment_setup_failed``)."""
    with database().atomic():
        order = lock_order(order.id)
        if order.state != PENDING:
            return
        release_hold(order, runtime, reason="payment_setup_failed")
        promotions.give_back_after_commit(runtime.redis, order)
        touch(
            order,
            payment_status=PaymentStatus.CANCELED,
            last_payment_error={"code": exc.provider_code, "message": exc.message},
        )
        transition(
            order,
            FAILED,
            "payment_setup_failed",
            actor="worker",
            payload={"providerCode": exc.provider_code},
        )
    checkout_status.publish(
        runtime.redis,
        order.id,
        **checkout_fields(order),
        error=published
        or {"code": "payment_setup_failed", "message": "The payment could not be set up."},
    )
    log.error("order %s: permanent error creating its payment: %s", order.id, exc.message)
