"""app/services/dashboard.py: the dashboard's figures, on SQLite and PostgreSQL (the
per-minute buckets are SQL of each)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app import keys
from app.gateways.jobs import BROKER_NAMESPACE
from app.gateways.rate_limit import StripeBudget
from app.services import dashboard
from app.services.state_machine import record_event
from models import WebhookEvent
from tests.models.test_constraints import make_order

NOW = datetime(2026, 12, 7, 15, 30, 20)  # naive UTC, as the columns store it


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Both databases."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url


class FixedBudget:
    """A budget with known figures."""

    def current(self) -> int:
        return 25

    def in_use(self) -> int:
        return 7


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


@pytest.mark.usefixtures("db")
class TestFunnelAndRevenue:
    def test_todays_orders_by_state_and_currency(self, redis: Any) -> None:
        make_order(state="PAID", created_at=at(10), total=1250)
        make_order(state="FULFILLED", created_at=at(20), total=3000, amount_captured=2500)
        make_order(state="PAID", created_at=at(30), total=2000, amount_refunded=500)
        make_order(state="REFUNDED", created_at=at(40), total=900, amount_refunded=900)
        make_order(state="PAID", created_at=at(50), total=5000, currency="eur")
        make_order(state="FAILED", created_at=at(60), total=100)
        make_order(state="PENDING", created_at=at(70), total=100)
        make_order(state="PAID", created_at=NOW - timedelta(days=1), total=99_999)  # yesterday
        expired = make_order(state="CANCELED", created_at=at(80))
        record_event(expired, "HOLD_EXPIRED", {})
        make_order(state="CANCELED", created_at=at(90))  # canceled by hand: not expired

        figures = dashboard.dashboard(redis, FixedBudget(), now=NOW)

        funnel = figures.funnel
        assert (funnel.paid, funnel.failed, funnel.expired, funnel.refunded) == (5, 1, 1, 2)
        # usd: 1250 + 2500 (captured) + (2000 - 500) + (900 - 900); eur: 5000
        assert figures.revenue == {"eur": 5000, "usd": 5250}
        assert figures.day == "2026-12-07"

    def test_submit_counts_come_from_admission(self, redis: Any) -> None:
        redis.hset(
            keys.day_stats("2026-12-07"),
            mapping={"submits": 9, "admitted": 6, "out_of_stock": 2},
        )
        redis.hset(keys.day_stats("2026-12-06"), mapping={"submits": 100})
        funnel = dashboard.dashboard(redis, FixedBudget(), now=NOW).funnel
        assert (funnel.submits, funnel.admitted, funnel.out_of_stock) == (9, 6, 2)

    def test_a_quiet_day(self, redis: Any) -> None:
        figures = dashboard.dashboard(redis, FixedBudget(), now=NOW)
        assert figures.funnel == dashboard.Funnel(0, 0, 0, 0, 0, 0, 0)
        assert figures.revenue == {}
        assert figures.webhook_lag_seconds is None
        assert figures.stuck_orders == 0


@pytest.mark.usefixtures("db")
class TestRightNow:
    def test_budget_queues_lag_and_stuck(self, redis: Any) -> None:
        redis.hset(f"{BROKER_NAMESPACE}:default.msgs", mapping={"m1": "x", "m2": "x"})
        redis.hset(f"{BROKER_NAMESPACE}:holds.DQ.msgs", mapping={"m3": "x"})
        WebhookEvent.create(event_id="evt_done", type="x", payload={}, status="processed")
        WebhookEvent.create(
            event_id="evt_waiting", type="x", payload={}, created_at=NOW - timedelta(seconds=42)
        )
        WebhookEvent.create(
            event_id="evt_dead", type="x", payload={}, status="dead", created_at=at(600)
        )
        make_order(state="AUTHORIZED", capture_before=NOW + timedelta(hours=3))

        figures = dashboard.dashboard(redis, FixedBudget(), now=NOW)

        assert (figures.stripe_in_use, figures.stripe_budget) == (7, 25)
        assert figures.queues == {"default": 2, "holds": 1, "shop_webhooks": 0}
        assert figures.queue_depth == 3
        assert figures.webhook_lag_seconds == 42
        assert figures.stuck_orders == 1

    def test_the_stripe_budget_in_use_is_the_last_seconds_grants(self, redis: Any) -> None:
        moment = [1_800_000_000.0]
        budget = StripeBudget(redis, 25, clock=lambda: moment[0])
        for _ in range(3):
            assert budget.try_acquire() == 0
        assert (budget.in_use(), budget.current()) == (3, 25)
        moment[0] += 1.5
        assert budget.in_use() == 0


@pytest.mark.usefixtures("db")
class TestOrdersPerMinute:
    def test_sixty_minutes_oldest_first_with_paid(self) -> None:
        make_order(state="PAID", created_at=NOW - timedelta(seconds=5))
        make_order(state="PENDING", created_at=NOW - timedelta(seconds=15))
        make_order(state="FAILED", created_at=at(2))
        make_order(state="PAID", created_at=at(59))
        make_order(state="PAID", created_at=at(61))  # out of the window

        series = dashboard.orders_per_minute(now=NOW)

        assert len(series.minutes) == len(series.orders) == len(series.paid) == 60
        current = int(datetime(2026, 12, 7, 15, 30, tzinfo=UTC).timestamp())
        assert series.minutes[-1] == current
        assert series.minutes[0] == current - 59 * 60
        assert series.orders[-1] == 2 and series.paid[-1] == 1
        assert series.orders[-3] == 1 and series.paid[-3] == 0
        assert series.orders[0] == 1 and series.paid[0] == 1
        assert sum(series.orders) == 4
        assert series.as_json()["orders"] == series.orders
