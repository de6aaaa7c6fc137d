"""Orders: the list (search, filters, keyset pages, CSV export) and one order's page with
the actions its state allows. Every action is the admin API's service call, with the
dialog's Idempotency-Key and the operator as the audit actor."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask import (
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from app.console import roles
from app.console.auth import actor, passive, requires
from app.console.blueprint import bp
from app.console.money import major, to_minor
from app.context import current_config, current_runtime
from app.errors import IdempotencyKeyReused, InvalidRequest, InvalidState
from app.schemas.common import load
from app.schemas.console import (
    CancelFormSchema,
    CaptureFormSchema,
    FulfilmentFormSchema,
    OrderFilterSchema,
    RefundFormSchema,
)
from app.services import admin, order_page
from models.order import ORDER_STATES

PAGE_SIZE = 50
# Every ~5 s an open order page asks whether anything changed (a 204 when not).
LIVE_SECONDS = 5
CSV_COLUMNS = (
    "orderNumber", "orderId", "state", "email", "total", "currency", "amountRefunded",
    "paymentIntentId", "paymentStatus", "createdAt",
)  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What an action refused by its service says (the order page shows it, then reloads).
_REFUSALS = (InvalidState, InvalidRequest, IdempotencyKeyReused)
_filters = OrderFilterSchema()
_refund = RefundFormSchema()
_capture = CaptureFormSchema()
_cancel = CancelFormSchema()
_fulfilment = FulfilmentFormSchema()


@bp.app_template_filter("money")
def money(amount: int | None, currency: str) -> str:
    """Templates: ``1250|money("usd")`` → ``12.50 USD``."""
    return "" if amount is None else f"{major(amount, currency)} {currency.upper()}"


@bp.app_template_filter("major")
def major_units(amount: int, currency: str) -> str:
    """Templates: ``1250|major("usd")`` → ``12.50`` (a form's prefilled amount)."""
    return major(amount, currency)


def _order_filter() -> tuple[admin.OrderFilter, str | None, dict[str, Any]]:
    """The list's filters from the query string, the cursor, and the values as typed."""
    data = load(_filters, request.args.to_dict())
    filters = admin.OrderFilter(
        text=data["q"],
        state=data["state"],
        created_from=data["created_from"],
        created_to=data["created_to"],
        sku=data["sku"],
    )
    typed = {k: v for k, v in request.args.items() if k != "cursor" and v}
    return filters, data["cursor"], typed


@bp.get("/orders")
@requires(roles.READ)
def orders() -> str:
    """Orders newest first: search (number, e-mail, intent id), filters, keyset pages."""
    filters, cursor, typed = _order_filter()
    page = admin.search_orders(filters, limit=PAGE_SIZE, cursor=cursor)
    return render_template(
        "console/orders.html", page=page, typed=typed, states=ORDER_STATES, paged=bool(cursor)
    )


@bp.get("/orders.csv")
@requires(roles.READ)
def orders_csv() -> Response:
    """The filtered list as CSV (every page), streamed."""
    filters, _, _ = _order_filter()
    return Response(
        stream_with_context(_csv_lines(admin.export_orders(filters))),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'},
    )


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        totals = row["totals"]
        values = {
            **row,
            "total": major(totals["total"], totals["currency"]),
            "currency": totals["currency"].upper(),
            "amountRefunded": major(row["amountRefunded"], totals["currency"]),
        }
        writer.writerow([_cell(values.get(column)) for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


@bp.get("/orders/<order_id>")
@requires(roles.READ)
def order(order_id: str) -> str:
    """One order: facts, actions, lines, refunds, disputes, timeline, deliveries."""
    return render_template("console/order.html", **_order_context(order_id))


@bp.get("/orders/<order_id>/live")
@requires(roles.READ)
@passive
def order_live(order_id: str) -> Any:
    """The order page's live part: 204 while unchanged since version ``v``."""
    if request.args.get("v") == order_page.order_version(order_id):
        return Response(status=204)
    return render_template("console/_order_live.html", **_order_context(order_id))


def _order_context(order_id: str) -> dict[str, Any]:
    page = order_page.order_page(order_id)
    return {
        "page": page,
        "o": page.order,
        "currency": page.order["totals"]["currency"],
        "stripe_url": _stripe_dashboard_url(page.order["paymentIntentId"]),
        "live_seconds": LIVE_SECONDS,
        "actions": page.actions,
    }


def _stripe_dashboard_url(intent_id: str | None) -> str | None:
    """The payment in Stripe's Dashboard, for real keys only (never the emulator's)."""
    config = current_config()
    if intent_id is None or config.stripe_api_base or "emulator" in config.stripe_secret_key:
        return None
    mode = "" if config.stripe_live_mode else "test/"
    return f"https://dashboard.stripe.com/{mode}payments/{intent_id}"


def _back(order_id: str) -> BaseResponse:
    return redirect(url_for("console.order", order_id=order_id), code=303)


def _form(schema: Any) -> dict[str, Any]:
    data: dict[str, Any] = load(schema, request.form.to_dict())
    return data


@bp.post("/orders/<order_id>/refund")
@requires(roles.ACT)
def refund(order_id: str) -> BaseResponse:
    """Refund (part of) a paid order; the Stripe call runs in a worker."""
    currency = order_page.currency_of(order_id)
    try:
        data = _form(_refund)
        amount = to_minor(data["amount"], currency) if data["amount"] else None
        runtime = current_runtime()
        result = admin.refund_order(
            runtime.redis,
            order_id,
            idempotency_key=data["idempotency_key"],
            amount=amount,
            restock=data["restock"],
            actor=actor(),
        )
    except _REFUSALS as exc:
        flash(f"Refund refused: {exc.message}", "error")
        return _back(order_id)
    if result.submit:
        runtime.jobs.create_refund(result.response["refundId"])
    what = money(amount, currency) if amount is not None else "the rest"
    flash(f"Refund of {what} requested; this page follows it as Stripe confirms.", "ok")
    return _back(order_id)


@bp.post("/orders/<order_id>/capture")
@requires(roles.ACT)
def capture(order_id: str) -> BaseResponse:
    """Capture an authorisation (all, or part: the rest is released)."""
    currency = order_page.currency_of(order_id)
    try:
        data = _form(_capture)
        amount = to_minor(data["amount"], currency) if data["amount"] else None
        runtime = current_runtime()
        result = admin.capture_order(
            runtime.redis,
            order_id,
            idempotency_key=data["idempotency_key"],
            amount=amount,
            actor=actor(),
        )
    except _REFUSALS as exc:
        flash(f"Capture refused: {exc.message}", "error")
        return _back(order_id)
    runtime.jobs.capture_payment(order_id, result.request_id)
    flash("Capture requested; this page follows it.", "ok")
    return _back(order_id)


@bp.post("/orders/<order_id>/cancel")
@requires(roles.ACT)
def cancel(order_id: str) -> BaseResponse:
    """Cancel a PENDING order or void an AUTHORIZED one (intent first, then stock)."""
    runtime = current_runtime()
    try:
        _form(_cancel)
        admin.check_cancelable(runtime.redis, order_id)
    except _REFUSALS as exc:
        flash(f"Cancel refused: {exc.message}", "error")
        return _back(order_id)
    runtime.jobs.cancel_order(order_id, actor())
    flash("Cancel requested; this page follows it.", "ok")
    return _back(order_id)


@bp.post("/orders/<order_id>/fulfilment")
@requires(roles.ACT)
def fulfilment(order_id: str) -> BaseResponse:
    """Start fulfilment (an authorisation is captured first) or mark it fulfilled."""
    runtime = current_runtime()
    try:
        data = _form(_fulfilment)
        result = admin.fulfil(
            order_id,
            data["action"],
            runtime=runtime,
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            actor=actor(),
        )
    except _REFUSALS as exc:
        flash(f"Fulfilment refused: {exc.message}", "error")
        return _back(order_id)
    if result.capture_request_id is not None:
        runtime.jobs.capture_payment(order_id, result.capture_request_id)
        flash("Capture requested; fulfilment starts once it succeeds.", "ok")
    else:
        done = "started" if data["action"] == "start" else "marked fulfilled"
        flash(f"Fulfilment {done}.", "ok")
    return _back(order_id)
