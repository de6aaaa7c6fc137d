"""Dashboard (the console's landing page) and Attention: what happens today, and what
needs a person now. Reads only; the figures come from ``app/services/dashboard.py`` and
``app/services/attention.py``.

The dashboard is live: its figures are a fragment htmx polls every :data:`LIVE_SECONDS`
(a short request each, no thread per open page: I11), and ``console.js`` redraws the
chart from :func:`orders_per_minute_json` after each poll.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import jsonify, render_template
from werkzeug.wrappers import Response

from app.console import roles
from app.console.auth import passive, requires
from app.console.blueprint import bp
from app.context import current_config, current_runtime
from app.gateways.rate_limit import StripeBudget
from app.services import attention as attention_service
from app.services import dashboard as dashboard_service

LIVE_SECONDS = 5


def _context() -> dict[str, Any]:
    runtime = current_runtime()
    budget = StripeBudget(runtime.redis, current_config().stripe_budget)
    series = dashboard_service.orders_per_minute()
    return {
        "d": dashboard_service.dashboard(runtime.redis, budget),
        "series": series,
        "chart_rows": _chart_rows(series),
        "live_seconds": LIVE_SECONDS,
    }


@bp.app_template_filter("utc_minute")
def utc_minute(unix_seconds: int) -> str:
    """Templates: ``1800000000|utc_minute`` → ``2027-01-15 08:00``."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _chart_rows(series: dashboard_service.Series) -> list[tuple[int, int, int]]:
    """The chart's text alternative: (minute, orders, paid) of minutes with orders."""
    rows = zip(series.minutes, series.orders, series.paid, strict=True)
    return [row for row in rows if row[1]]


@bp.get("", strict_slashes=False)
@requires(roles.READ)
def dashboard() -> str:
    """Today's funnel, revenue, the Stripe budget, queues, webhook lag, stuck orders."""
    return render_template("console/dashboard.html", **_context())


@bp.get("/dashboard/live")
@requires(roles.READ)
@passive
def dashboard_live() -> str:
    """The dashboard's figures again (htmx swaps them in every few seconds)."""
    return render_template("console/_dashboard_live.html", **_context())


@bp.get("/dashboard/orders-per-minute.json")
@requires(roles.READ)
@passive
def orders_per_minute_json() -> Response:
    """The chart's data: ``{minutes: [unix s], orders: [n], paid: [n]}``, oldest first."""
    return jsonify(dashboard_service.orders_per_minute().as_json())


@bp.get("/attention")
@requires(roles.READ)
def attention() -> str:
    """Overdue holds, lapsing authorisations, open disputes, dead letters, failing shop
    endpoints: each row links to where it is dealt with."""
    return render_template("console/attention.html", a=attention_service.attention())
