"""What needs a person now: the console's Attention page and the dashboard's stuck orders.

Five lists, each from an indexed query and each capped at :data:`ROWS_SHOWN`:

- PENDING orders whose hold ended more than :data:`HOLD_GRACE` ago (the clock expires a
  hold within seconds; one still PENDING a minute later is stuck);
- AUTHORIZED orders within 24 h of ``capture_before`` (capture them or lose the money);
- open disputes (not won, lost or closed), through the partial index ``orders_disputed``;
- dead letters: Stripe inbox events that failed past the actor's retries (``dead``);
- failing shop endpoints: endpoints with deliveries given up (``failed``) or retrying
  after a failed attempt.

The first three are orders: their number, without the cap, is the dashboard's "stuck
orders" (:func:`stuck_order_count`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import peewee

from app.services import webhooks
from app.services.authorizations import lapsing
from app.services.order_body import iso_utc_micro
from app.services.state_machine import PENDING
from models import Order, Reservation, ShopDelivery, WebhookEvent
from models.db import utcnow
from models.statuses import DisputeStatus, ShopDeliveryStatus, WebhookStatus

ROWS_SHOWN = 100
# The clock re-enqueues an expiry that is overdue by its STALE_SECONDS (60 s): a PENDING
# order past its hold by more than this was missed by both the message and the sweep.
HOLD_GRACE = timedelta(seconds=60)
CLOSED_DISPUTES = frozenset({DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WARNING_CLOSED})


@dataclass(frozen=True)
class Attention:
    """The Attention page: each list newest problem first or soonest deadline first."""

    overdue_holds: list[dict[str, Any]]
    lapsing_authorizations: list[dict[str, Any]]
    open_disputes: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    failing_endpoints: list[dict[str, Any]]

    @property
    def empty(self) -> bool:
        """Nothing needs a person."""
        return not any(
            (
                self.overdue_holds,
                self.lapsing_authorizations,
                self.open_disputes,
                self.dead_letters,
                self.failing_endpoints,
            )
        )


def attention(*, now: datetime | None = None) -> Attention:
    """Everything the Attention page lists, as of ``now`` (naive UTC; default: now)."""
    moment = now or utcnow()
    return Attention(
        overdue_holds=[
            _order_row(o, since=o.reservation_expires_at)
            for o in _overdue_holds(moment).limit(ROWS_SHOWN)
        ],
        lapsing_authorizations=[
            _order_row(o, since=o.capture_before) for o in lapsing(moment).limit(ROWS_SHOWN)
        ],
        open_disputes=[_dispute_row(o) for o in _open_disputes()[:ROWS_SHOWN]],
        dead_letters=dead_letters(),
        failing_endpoints=failing_endpoints(),
    )


def stuck_order_count(*, now: datetime | None = None) -> int:
    """How many orders the Attention page lists (overdue holds, lapsing authorisations,
    open disputes), without its cap; an order in two lists counts once."""
    moment = now or utcnow()
    ids = {o.id for o in _overdue_holds(moment).select(Order.id)}
    ids |= {o.id for o in lapsing(moment).select(Order.id)}
    ids |= {o.id for o in _open_disputes(Order.id, Order.dispute)}
    return len(ids)


def _overdue_holds(moment: datetime) -> Any:
    """PENDING orders past their hold (each with ``reservation_expires_at``), oldest first."""
    return (
        Order.select(Order, Reservation.expires_at.alias("reservation_expires_at"))
        .join(Reservation, on=(Reservation.order == Order.id))
        .where((Order.state == PENDING) & (Reservation.expires_at < moment - HOLD_GRACE))
        .order_by(Reservation.expires_at)
        .objects()
    )


def _open_disputes(*columns: Any) -> list[Order]:
    """Disputed orders (the partial index ``orders_disputed``) whose dispute is open,
    newest first; ``columns`` to read fewer than all."""
    rows = (
        Order.select(*columns).where(Order.dispute.is_null(False)).order_by(Order.created_at.desc())
    )
    return [o for o in rows if (o.dispute or {}).get("status") not in CLOSED_DISPUTES]


def _order_row(order: Order, *, since: datetime | None) -> dict[str, Any]:
    """An order as the lists show it; ``when`` is the deadline that makes it stuck."""
    return {
        "orderId": order.id,
        "orderNumber": order.order_number,
        "state": order.state,
        "email": order.email,
        "total": order.total,
        "currency": order.currency,
        "when": iso_utc_micro(since),
    }


def _dispute_row(order: Order) -> dict[str, Any]:
    dispute = order.dispute or {}
    return {
        **_order_row(order, since=None),
        "when": dispute.get("evidenceDueBy"),
        "disputeStatus": dispute.get("status"),
        "reason": dispute.get("reason"),
        "disputed": dispute.get("amount"),
    }


def dead_letters() -> list[dict[str, Any]]:
    """Stripe inbox events dead after the actor's retries, newest first (Replay on the
    Webhooks page); with the order they concern when the payload names one."""
    rows = (
        WebhookEvent.select()
        .where(WebhookEvent.status == WebhookStatus.DEAD)
        .order_by(WebhookEvent.id.desc())
        .limit(ROWS_SHOWN)
    )
    return [
        {
            "eventId": row.event_id,
            "type": row.type,
            "attempts": row.attempts,
            "lastError": row.last_error,
            "createdAt": iso_utc_micro(row.created_at),
            "orderId": _known_order(webhooks.order_id_of_event(row.payload or {})),
        }
        for row in rows
    ]


def _known_order(order_id: str | None) -> str | None:
    """The id when such an order exists (a link to it must not 404)."""
    if not order_id or not Order.select().where(Order.id == order_id).exists():
        return None
    return order_id


def failing_endpoints() -> list[dict[str, Any]]:
    """Shop endpoints with deliveries given up or retrying after a failure: how many,
    since when, and the latest answer (Resend on the Webhooks page)."""
    failing = (ShopDelivery.status == ShopDeliveryStatus.FAILED) | (
        (ShopDelivery.status == ShopDeliveryStatus.PENDING) & (ShopDelivery.attempts > 0)
    )
    groups: Any = (  # dicts(): endpoint, failing, since, latest
        ShopDelivery.select(
            ShopDelivery.endpoint,
            peewee.fn.COUNT(ShopDelivery.id).alias("failing"),
            peewee.fn.MIN(ShopDelivery.created_at).alias("since"),
            peewee.fn.MAX(ShopDelivery.id).alias("latest"),
        )
        .where(failing)
        .group_by(ShopDelivery.endpoint)
        .order_by(peewee.fn.MIN(ShopDelivery.created_at))
        .limit(ROWS_SHOWN)
        .dicts()
    )
    rows = []
    for group in groups:
        latest = ShopDelivery.get_by_id(group["latest"])
        rows.append(
            {
                "endpoint": group["endpoint"],
                "failing": int(group["failing"]),
                "since": iso_utc_micro(_as_datetime(group["since"])),
                "lastStatusCode": latest.last_status_code,
                "lastError": latest.last_error,
                "orderId": latest.event.__data__["order"],
            }
        )
    return rows


def _as_datetime(value: Any) -> datetime | None:
    """An aggregate's datetime: SQLite answers MIN() over a DateTimeField as text."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
