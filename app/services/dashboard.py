"""The console's dashboard: today's funnel and revenue, the Stripe budget in use, queue
depth, webhook lag, stuck orders, and orders per minute over the last hour.

Every figure is read from the state the service already keeps, with indexed queries:

- submits, admitted, out of stock: the day's counts admit.lua keeps in Redis
  (``keys.day_stats``; a refused submit never reaches the database);
- paid, failed, expired, refunded and revenue: today's orders (``orders.created_at``,
  indexed), by the state they are in now — a cohort: an order submitted today and paid
  counts as paid today;
- the Stripe budget: the shared window of ``stripe_budget.lua`` (grants of the last
  second) and the budget in force;
- queue depth: Dramatiq's messages not yet done per queue;
- webhook lag: the age of the oldest inbox event not applied yet (received or failed;
  dead ones are the Attention page's);
- stuck orders: :func:`app.services.attention.stuck_order_count`.

"Today" is the UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import peewee
from redis import Redis

from app import keys
from app.gateways.jobs import queue_depths
from app.services.attention import stuck_order_count
from app.services.state_machine import (
    CANCELED,
    FAILED,
    FULFILLED,
    FULFILLING,
    PAID,
    REFUNDED,
)
from models import Order, OrderEvent, WebhookEvent
from models.db import is_postgres, utcnow
from models.statuses import WebhookStatus

# States of an order whose money was taken (a refund keeps it paid, for the funnel).
PAID_STATES = (PAID, FULFILLING, FULFILLED, REFUNDED)
CHART_MINUTES = 60


class Budget(Protocol):
    """The fleet's Stripe budget as the dashboard reads it (``StripeBudget``)."""

    def current(self) -> int:
        """The budget in force, grants per second."""

    def in_use(self) -> int:
        """Grants of the last second."""


@dataclass(frozen=True)
class Funnel:
    """Today's checkout funnel, in orders (submits: requests judged by admission)."""

    submits: int
    admitted: int
    out_of_stock: int
    paid: int
    failed: int
    expired: int
    refunded: int


@dataclass(frozen=True)
class Dashboard:
    """The dashboard's figures at one moment."""

    day: str  # YYYY-MM-DD, UTC
    funnel: Funnel
    revenue: dict[str, int]  # currency -> minor units taken today, net of refunds
    stripe_in_use: int  # grants of the last second
    stripe_budget: int  # grants per second in force
    queues: dict[str, int]  # queue -> messages not yet done
    webhook_lag_seconds: int | None  # None: no event waiting
    stuck_orders: int

    @property
    def queue_depth(self) -> int:
        """Messages not yet done on every queue."""
        return sum(self.queues.values())


@dataclass(frozen=True)
class Series:
    """Orders per minute: ``minutes`` (unix seconds of each minute's start, oldest first),
    orders created in it, and how many of those are paid now."""

    minutes: list[int]
    orders: list[int]
    paid: list[int]

    def as_json(self) -> dict[str, Any]:
        """The chart's JSON (uPlot's columns)."""
        return {"minutes": self.minutes, "orders": self.orders, "paid": self.paid}


def dashboard(redis: Redis, budget: Budget, *, now: datetime | None = None) -> Dashboard:
    """Every figure of the dashboard as of ``now`` (naive UTC; default: now)."""
    moment = now or utcnow()
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    counted = day_counts(redis, moment)
    cohort = _todays_orders(day_start)
    return Dashboard(
        day=moment.strftime("%Y-%m-%d"),
        funnel=Funnel(
            submits=counted["submits"],
            admitted=counted["admitted"],
            out_of_stock=counted["out_of_stock"],
            paid=cohort.paid,
            failed=cohort.failed,
            expired=_expired_today(day_start),
            refunded=cohort.refunded,
        ),
        revenue=cohort.revenue,
        stripe_in_use=budget.in_use(),
        stripe_budget=budget.current(),
        queues=queue_depths(redis),
        webhook_lag_seconds=webhook_lag_seconds(moment),
        stuck_orders=stuck_order_count(now=moment),
    )


def day_counts(redis: Redis, moment: datetime) -> dict[str, int]:
    """The day's submits, admitted and out-of-stock refusals (admit.lua counts them)."""
    found = redis.hmget(keys.day_stats(moment.strftime("%Y-%m-%d")), list(keys.DAY_STATS_FIELDS))
    return {name: int(value or 0) for name, value in zip(keys.DAY_STATS_FIELDS, found, strict=True)}


@dataclass(frozen=True)
class _Cohort:
    paid: int
    failed: int
    refunded: int
    revenue: dict[str, int]


def _todays_orders(day_start: datetime) -> _Cohort:
    """Today's orders by state and currency: one grouped query on the created_at index."""
    taken = peewee.fn.COALESCE(Order.amount_captured, Order.total) - Order.amount_refunded
    rows: Any = (  # tuples(): (state, currency, count, net, with a refund)
        Order.select(
            Order.state,
            Order.currency,
            peewee.fn.COUNT(Order.id),
            peewee.fn.SUM(taken),
            peewee.fn.SUM(peewee.Case(None, [(Order.amount_refunded > 0, 1)], 0)),
        )
        .where(Order.created_at >= day_start)
        .group_by(Order.state, Order.currency)
        .tuples()
    )
    paid = failed = refunded = 0
    revenue: dict[str, int] = {}
    for state, currency, count, net, with_refund in rows:
        refunded += int(with_refund or 0)
        if state == FAILED:
            failed += int(count)
        if state in PAID_STATES:
            paid += int(count)
            revenue[currency] = revenue.get(currency, 0) + int(net or 0)
    return _Cohort(
        paid=paid, failed=failed, refunded=refunded, revenue=dict(sorted(revenue.items()))
    )


def _expired_today(day_start: datetime) -> int:
    """Today's orders CANCELED because their hold ran out (a HOLD_EXPIRED event)."""
    return int(
        OrderEvent.select(peewee.fn.COUNT(peewee.fn.DISTINCT(OrderEvent.order)))
        .join(Order, on=(OrderEvent.order == Order.id))
        .where(
            (Order.created_at >= day_start)
            & (Order.state == CANCELED)
            & (OrderEvent.type == "HOLD_EXPIRED")
        )
        .scalar()
        or 0
    )


def webhook_lag_seconds(moment: datetime) -> int | None:
    """Seconds since the oldest inbox event still to apply arrived; None when none is."""
    oldest = (
        WebhookEvent.select(WebhookEvent.created_at)
        .where(WebhookEvent.status.in_([WebhookStatus.RECEIVED, WebhookStatus.FAILED]))
        .order_by(WebhookEvent.created_at)
        .first()
    )
    if oldest is None:
        return None
    return max(0, int((moment - oldest.created_at).total_seconds()))


def orders_per_minute(*, now: datetime | None = None, minutes: int = CHART_MINUTES) -> Series:
    """Orders created in each of the last ``minutes`` minutes (the current one last),
    and how many of them are paid now: one grouped query on the created_at index."""
    moment = now or utcnow()
    # Naive UTC: ``moment.timestamp()`` would read it as local time.
    last = int((moment - datetime(1970, 1, 1)).total_seconds() // 60)
    first = last - minutes + 1
    since = datetime(1970, 1, 1) + timedelta(minutes=first)
    bucket = _minute_of(Order.created_at)
    rows: Any = (  # tuples(): (minute, orders, paid)
        Order.select(
            bucket,
            peewee.fn.COUNT(Order.id),
            peewee.fn.SUM(peewee.Case(None, [(Order.state.in_(PAID_STATES), 1)], 0)),
        )
        .where(Order.created_at >= since)
        .group_by(bucket)
        .tuples()
    )
    counts = {_epoch_minute(minute): (int(n), int(p or 0)) for minute, n, p in rows}
    span = range(first, last + 1)
    return Series(
        minutes=[m * 60 for m in span],
        orders=[counts.get(m, (0, 0))[0] for m in span],
        paid=[counts.get(m, (0, 0))[1] for m in span],
    )


def _minute_of(column: peewee.Field) -> peewee.Node:
    """The minute of a datetime column, in SQL: ``date_trunc`` on PostgreSQL (a
    timestamp), ``strftime`` on SQLite (text); :func:`_epoch_minute` reads either."""
    if is_postgres():
        return peewee.fn.date_trunc("minute", column)
    return peewee.fn.strftime("%Y-%m-%d %H:%M", column)


def _epoch_minute(value: Any) -> int:
    """Minutes since the epoch of a bucket :func:`_minute_of` made (naive UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return int((moment - datetime(1970, 1, 1)).total_seconds() // 60)
