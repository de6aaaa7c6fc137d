"""The admin side of orders: refund requests (idempotent), fulfilment, cancel checks,
and the paginated listings of orders and webhook inbox rows. No Flask here.

Listings are keyset-paginated, newest first; the cursor is opaque to callers (base64url
of the last row's sort key), so a page never repeats or skips a row when new ones arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import peewee
from redis import Redis

from app import keys
from app.errors import IdempotencyKeyReused, InvalidRequest, InvalidState, NotFound
from app.services import authorizations, order_views, shop_webhooks
from app.services.admission import fingerprint, idempotency_key_hash
from app.services.fulfillment import update_fulfillment
from app.services.order_views import iso_utc_micro
from app.services.records import totals
from app.services.refunds import request_refund
from app.services.state_machine import AUTHORIZED, PENDING
from app.services.webhooks import REPLAYABLE, order_id_of_event, revive
from models import Order, Refund, ShopDelivery, WebhookEvent
from models.statuses import RefundStatus

if TYPE_CHECKING:
    from app.runtime import Runtime


@dataclass(frozen=True)
class RefundRequest:
    """What the refund endpoint answers, and whether the actor must (still) run."""

    response: dict[str, Any]
    replayed: bool
    submit: bool


@dataclass(frozen=True)
class Page:
    """One page of a listing: the rows and the cursor of the next page (or None)."""

    data: list[dict[str, Any]]
    next_cursor: str | None

    def body(self) -> dict[str, Any]:
        """The JSON body ``{data, nextCursor}``."""
        return {"data": self.data, "nextCursor": self.next_cursor}


# --- refunds ---------------------------------------------------------------------------


def refund_order(
    redis: Redis,
    order_id: str,
    *,
    idempotency_key: str,
    amount: int | None = None,
    reason: str | None = None,
    restock: bool = False,
    actor: str = "admin",
) -> RefundRequest:
    """Record a refund request once per Idempotency-Key (REFUND_REQUESTED, pending, by
    ``actor``).

    The same key with the same request answers the first refund again; with another
    request (or another order) it raises IdempotencyKeyReused. A refused request
    (NotFound, InvalidState) does not use up its key.
    """
    request = {"orderId": order_id, "amount": amount, "reason": reason, "restock": restock}
    digest = fingerprint(request)
    key_hash = idempotency_key_hash(idempotency_key)
    claim = keys.refund_claim(key_hash)
    claimed = bool(redis.set(claim, digest, nx=True, ex=keys.REFUND_CLAIM_TTL_SECONDS))
    if not claimed and redis.get(claim) != digest:
        raise IdempotencyKeyReused("This Idempotency-Key was used with another request.")
    stored_key = f"admin:{key_hash}"  # apart from the webhook's "stripe:<id>" keys
    try:
        refund, created = _request_once(order_id, stored_key, amount, reason, restock, actor)
    except (NotFound, InvalidState):
        if claimed:
            redis.delete(claim)
        raise
    if not created and not _same_request(refund, order_id, amount, reason, restock):
        # Redis lost the claim, but the database still knows what the key was used for.
        raise IdempotencyKeyReused("This Idempotency-Key was used with another request.")
    return RefundRequest(
        response={"refundId": refund.id, "status": RefundStatus.PENDING},
        replayed=not created,
        # A replay re-submits a refund Stripe has not seen yet (the first enqueue may
        # have been lost); the actor is idempotent (Stripe key refund-<refundId>).
        submit=refund.status == RefundStatus.PENDING and refund.stripe_refund_id is None,
    )


def _request_once(
    order_id: str, key: str, amount: int | None, reason: str | None, restock: bool, actor: str
) -> tuple[Refund, bool]:
    try:
        return request_refund(
            order_id,
            idempotency_key=key,
            amount=amount,
            reason=reason,
            restock=restock,
            actor=actor,
        )
    except peewee.IntegrityError:  # a concurrent request with this key wrote it first
        return Refund.get(Refund.idempotency_key == key), False


def _same_request(
    refund: Refund, order_id: str, amount: int | None, reason: str | None, restock: bool
) -> bool:
    return (
        refund.__data__.get("order") == order_id  # the FK id, no query
        and refund.reason == reason
        and bool(refund.restock) == restock
        and (amount is None or refund.amount == amount)
    )


# --- captures (manual capture) -----------------------------------------------------------


@dataclass(frozen=True)
class CaptureRequest:
    """What the capture endpoint answers; ``request_id`` is what the actor runs."""

    response: dict[str, Any]
    replayed: bool
    request_id: str


def capture_order(
    redis: Redis,
    order_id: str,
    *,
    idempotency_key: str,
    amount: int | None = None,
    restock: list[dict[str, Any]] | None = None,
    actor: str = "admin",
) -> CaptureRequest:
    """Record a capture request once per Idempotency-Key (``CAPTURE_REQUESTED`` by
    ``actor``).

    Same key, same request: the first answer again; same key, other request:
    IdempotencyKeyReused. A refused request (NotFound, InvalidState, InvalidRequest)
    does not use up its key.
    """
    request = {"orderId": order_id, "amount": amount, "restock": restock or []}
    digest = fingerprint(request)
    key_hash = idempotency_key_hash(idempotency_key)
    claim = keys.capture_claim(key_hash)
    claimed = bool(redis.set(claim, digest, nx=True, ex=keys.CONFIRM_CLAIM_TTL_SECONDS))
    if not claimed and redis.get(claim) != digest:
        raise IdempotencyKeyReused("This Idempotency-Key was used with another request.")
    request_id = f"cap_{key_hash[:24]}"
    try:
        created = authorizations.record_capture_request(
            order_id, request_id, amount=amount, restock=restock or [], actor=actor
        )
    except (NotFound, InvalidState, InvalidRequest):
        if claimed:
            redis.delete(claim)
        raise
    response = {"orderId": order_id, "captureId": request_id, "status": "queued"}
    return CaptureRequest(response, replayed=not created, request_id=request_id)


# --- fulfilment and cancel ---------------------------------------------------------------


@dataclass(frozen=True)
class Fulfilment:
    """The fulfilment endpoint's answer: the order, 200 — or 202 with a capture to run."""

    body: dict[str, Any]
    status: int = 200
    capture_request_id: str | None = None


def fulfil(
    order_id: str,
    action: str,
    *,
    runtime: Runtime,
    carrier: str | None,
    tracking_number: str | None,
    actor: str = "admin",
) -> Fulfilment:
    """Start or complete fulfilment (by ``actor``); the full order body afterwards.

    Starting an AUTHORIZED order captures first (202): the capture actor moves it to
    PAID, then FULFILLING.
    """
    order = Order.get_or_none(Order.id == order_id)
    if action == "start" and order is not None and order.state == AUTHORIZED:
        request_id = authorizations.fulfilment_request_id(order_id)
        details = {"carrier": carrier, "trackingNumber": tracking_number}
        authorizations.record_capture_request(
            order_id,
            request_id,
            fulfil=True,
            details={k: v for k, v in details.items() if v},
            actor=actor,
        )
        return Fulfilment(order_views.order_view(Order.get_by_id(order_id)), 202, request_id)
    order = update_fulfillment(
        order_id,
        action,
        runtime=runtime,
        carrier=carrier,
        tracking_number=tracking_number,
        actor=actor,
    )
    return Fulfilment(order_views.order_view(Order.get_by_id(order.id)))


CANCELABLE = (PENDING, AUTHORIZED)


def check_cancelable(redis: Redis, order_id: str) -> None:
    """NotFound for an unknown order, InvalidState unless it is a written PENDING or
    AUTHORIZED order (an authorisation is voided)."""
    located = order_views.locate_order(redis, order_id)
    if located.order is None:
        raise InvalidState("The order is still being created; try again in a moment.")
    if located.order.state not in CANCELABLE:
        raise InvalidState(
            f"Only PENDING or AUTHORIZED orders can be canceled; this one is {located.order.state}."
        )


# --- listings --------------------------------------------------------------------------


def encode_cursor(value: list[Any]) -> str:
    """An opaque cursor for a sort key."""
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The sort key inside a cursor; InvalidRequest on ``cursor`` when it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        value = None
    if not isinstance(value, list) or len(value) != size:
        raise InvalidRequest("Invalid cursor.", fields={"cursor": ["Invalid cursor."]})
    return value


def order_summary(order: Order) -> dict[str, Any]:
    """One order in the admin listing."""
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "email": order.email,
        "totals": totals(order),
        "amountRefunded": order.amount_refunded,
        "paymentIntentId": order.payment_intent_id,
        "paymentStatus": order.payment_status,
        "createdAt": iso_utc_micro(order.created_at),
    }


def list_orders(*, state: str | None, limit: int, cursor: str | None) -> Page:
    """Orders newest first (created_at, then id), optionally in one state."""
    return search_orders(OrderFilter(state=state), limit=limit, cursor=cursor)


@dataclass(frozen=True)
class OrderFilter:
    """What the console's order list narrows by; every part optional.

    ``text`` is an order number, an order id, a PaymentIntent id or a buyer's e-mail
    (case-insensitive), matched exactly; ``created_from`` / ``created_to`` are whole UTC
    days, both included; ``sku``: orders with a line of that SKU.
    """

    text: str | None = None
    state: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    sku: str | None = None


def _filtered(filters: OrderFilter) -> peewee.ModelSelect[Order]:
    query = Order.select()
    if filters.text:
        text = filters.text.strip()
        query = query.where(
            (Order.order_number == text.upper())
            | (Order.id == text)
            | (Order.payment_intent_id == text)
            | (peewee.fn.LOWER(Order.email) == text.lower())
        )
    if filters.state:
        query = query.where(Order.state == filters.state)
    if filters.created_from:
        query = query.where(Order.created_at >= datetime.combine(filters.created_from, time()))
    if filters.created_to:
        after = datetime.combine(filters.created_to + timedelta(days=1), time())
        query = query.where(Order.created_at < after)
    if filters.sku:
        # The lines are JSON text (compact, sorted keys): a LIKE narrows, _has_sku decides.
        query = query.where(Order.line_items.contains(f'"sku":"{filters.sku}"'))
    return query


def _has_sku(order: Order, sku: str | None) -> bool:
    return sku is None or any(line.get("sku") == sku for line in order.line_items or [])


def newest_orders(
    query: peewee.ModelSelect[Order], *, limit: int, cursor: str | None
) -> tuple[list[Order], str | None]:
    """One keyset page of ``query``'s orders, newest first (created_at, then id), and the
    cursor of the next page (None: the last)."""
    if cursor:
        created, last_id = decode_cursor(cursor, 2)
        moment = _moment(created)
        if not _is_order_id(last_id):
            # A list, a huge number, NUL or a lone surrogate would reach the database (an
            # error taken for an outage, or a 500).
            _bad_cursor()
        query = query.where(
            (Order.created_at < moment) | ((Order.created_at == moment) & (Order.id < last_id))
        )
    rows = list(query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    following = (
        encode_cursor([rows[-1].created_at.isoformat(), rows[-1].id]) if more and rows else None
    )
    return rows, following


def search_orders(filters: OrderFilter, *, limit: int, cursor: str | None) -> Page:
    """Orders matching ``filters``, newest first (created_at, then id), a keyset page."""
    rows, following = newest_orders(_filtered(filters), limit=limit, cursor=cursor)
    # The cursor follows the rows read, so a SKU's near-miss dropped here skips nothing.
    return Page([order_summary(o) for o in rows if _has_sku(o, filters.sku)], following)


EXPORT_BATCH = 500


def export_orders(filters: OrderFilter) -> Iterator[dict[str, Any]]:
    """Every order matching ``filters``, newest first, read in keyset batches."""
    cursor = None
    while True:
        page = search_orders(filters, limit=EXPORT_BATCH, cursor=cursor)
        yield from page.data
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _is_order_id(value: Any) -> bool:
    """Whether a cursor's id could be an order's: printable ASCII, as long as the column."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= Order.id.max_length
        and value.isascii()
        and value.isprintable()
    )


def _moment(value: Any) -> datetime:
    """A cursor's timestamp back as the naive datetime the database stores."""
    if not isinstance(value, str):
        _bad_cursor()
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        _bad_cursor()


def _bad_cursor() -> NoReturn:
    raise InvalidRequest("Invalid cursor.", fields={"cursor": ["Invalid cursor."]})


def webhook_event_row(row: WebhookEvent) -> dict[str, Any]:
    """One inbox row as the admin sees it (no payload)."""
    return {
        "eventId": row.event_id,
        "type": row.type,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "createdAt": iso_utc_micro(row.created_at),
        "processedAt": iso_utc_micro(row.processed_at),
    }


def list_webhook_events(
    *, status: str | None, limit: int, cursor: str | None, with_order: bool = False
) -> Page:
    """Inbox rows newest first, optionally with one status.

    ``with_order`` (the console) adds each row's ``orderId`` (or None) and whether a
    replay can change anything (``replayable``: not yet processed or ignored).
    """
    query = WebhookEvent.select()
    if status:
        query = query.where(WebhookEvent.status == status)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        # A row id is a positive 64-bit integer; a bigger one overflows the driver.
        if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 < last_id < 2**63:
            _bad_cursor()
        query = query.where(WebhookEvent.id < last_id)
    rows = list(query.order_by(WebhookEvent.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode_cursor([rows[-1].id]) if more and rows else None
    if with_order:
        return Page([_inbox_row_with_order(r) for r in rows], following)
    return Page([webhook_event_row(r) for r in rows], following)


def _inbox_row_with_order(row: WebhookEvent) -> dict[str, Any]:
    return {
        **webhook_event_row(row),
        "orderId": order_id_of_event(row.payload),
        "replayable": row.status in REPLAYABLE,
    }


def webhook_event_for_replay(event_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored payload of an inbox row and its listing body; NotFound when unknown.

    A dead row is revived first (``received``, a fresh retry budget), so the replay
    runs with the actor's full retries again.
    """
    row = WebhookEvent.get_or_none(WebhookEvent.event_id == event_id)
    if row is None:
        raise NotFound("No such webhook event.")
    if revive(event_id):
        row = WebhookEvent.get_by_id(row.id)
    return row.payload, webhook_event_row(row)


@dataclass(frozen=True)
class Resend:
    """What a resend did: the deliveries to enqueue now; ``replayed`` when its key had
    already resent the event (nothing was done again)."""

    deliveries: list[int]
    replayed: bool = False


def resend_shop_event(
    redis: Redis, event_id: str, endpoints: shop_webhooks.Endpoints, *, idempotency_key: str
) -> Resend:
    """:func:`shop_webhooks.resend` once per Idempotency-Key.

    The same key again (a double click, a reload) resends nothing (``replayed``); with
    another event it raises IdempotencyKeyReused. NotFound for an unknown event (the key
    is not used up).
    """
    claim = keys.resend_claim(idempotency_key_hash(idempotency_key))
    if not redis.set(claim, event_id, nx=True, ex=keys.RESEND_CLAIM_TTL_SECONDS):
        if redis.get(claim) != event_id:
            raise IdempotencyKeyReused("This Idempotency-Key was used with another request.")
        return Resend([], replayed=True)
    try:
        return Resend(shop_webhooks.resend(event_id, endpoints))
    except NotFound:
        redis.delete(claim)
        raise


def list_shop_deliveries(*, status: str | None, limit: int, cursor: str | None) -> Page:
    """Shop webhook deliveries newest first, optionally with one status."""
    query = ShopDelivery.select()
    if status:
        query = query.where(ShopDelivery.status == status)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 < last_id < 2**63:
            _bad_cursor()
        query = query.where(ShopDelivery.id < last_id)
    rows = list(query.order_by(ShopDelivery.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode_cursor([rows[-1].id]) if more and rows else None
    return Page([shop_webhooks.delivery_row(r) for r in rows], following)
