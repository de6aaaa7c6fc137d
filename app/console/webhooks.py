"""Webhooks: the Stripe inbox (filter by status, "Replay") and the shop webhook
deliveries ("Resend"), through the same services as the admin API.

"Replay" and "Resend" are htmx posts (the CSRF header from ``console.js``) that answer
the row again with what happened; without JavaScript the form posts and the page comes
back (303). Neither service writes an order audit event, so each action is logged with
the operator as actor.
"""

from __future__ import annotations

from typing import Any

import structlog
from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.console import roles
from app.console.auth import actor, requires
from app.console.blueprint import bp
from app.context import current_runtime
from app.errors import IdempotencyKeyReused, InvalidRequest, NotFound
from app.schemas.common import load
from app.schemas.console import (
    DeliveryFilterSchema,
    InboxFilterSchema,
    ReplayFormSchema,
    ResendFormSchema,
)
from app.services import admin
from models.shop_webhook import SHOP_DELIVERY_STATUSES
from models.webhook_event import WEBHOOK_STATUSES

log = structlog.get_logger("app.console.webhooks")
PAGE_SIZE = 50
_REFUSALS = (InvalidRequest, IdempotencyKeyReused, NotFound)
_inbox_filter = InboxFilterSchema()
_delivery_filter = DeliveryFilterSchema()
_replay = ReplayFormSchema()
_resend = ResendFormSchema()


@bp.get("/webhooks")
@requires(roles.READ)
def webhooks() -> str:
    """The Stripe inbox newest first: status filter, keyset pages, "Replay"."""
    query = load(_inbox_filter, request.args.to_dict())
    page = admin.list_webhook_events(
        status=query["status"], limit=PAGE_SIZE, cursor=query["cursor"], with_order=True
    )
    return render_template(
        "console/webhooks.html",
        page=page,
        status=query["status"],
        statuses=WEBHOOK_STATUSES,
        paged=bool(query["cursor"]),
    )


@bp.get("/webhooks/deliveries")
@requires(roles.READ)
def deliveries() -> str:
    """Shop webhook deliveries newest first: status filter, keyset pages, "Resend"."""
    query = load(_delivery_filter, request.args.to_dict())
    page = admin.list_shop_deliveries(
        status=query["status"], limit=PAGE_SIZE, cursor=query["cursor"]
    )
    return render_template(
        "console/deliveries.html",
        page=page,
        status=query["status"],
        statuses=SHOP_DELIVERY_STATUSES,
        paged=bool(query["cursor"]),
    )


@bp.post("/webhooks/events/<event_id>/replay")
@requires(roles.ACT)
def replay(event_id: str) -> Any:
    """Replay a Stripe event as the API does: a dead one is revived, then re-enqueued."""
    try:
        load(_replay, request.form.to_dict())
        _, row = admin.webhook_event_for_replay(event_id)
    except _REFUSALS as exc:
        return _answer(f"Replay refused: {exc.message}", exc.status, "console.webhooks")
    current_runtime().jobs.handle_stripe_event(event_id)
    log.info("webhook_event_replayed", actor=actor(), event_id=event_id, status=row["status"])
    return _answer(f"Replay of {event_id} queued.", 200, "console.webhooks")


@bp.post("/webhooks/shop-events/<event_id>/resend")
@requires(roles.ACT)
def resend(event_id: str) -> Any:
    """Resend a shop event to every endpoint, once per button's Idempotency-Key."""
    runtime = current_runtime()
    try:
        data = load(_resend, request.form.to_dict())
        result = admin.resend_shop_event(
            runtime.redis,
            event_id,
            runtime.config.shop_webhook_endpoints,
            idempotency_key=data["idempotency_key"],
        )
    except _REFUSALS as exc:
        return _answer(f"Resend refused: {exc.message}", exc.status, "console.deliveries")
    if result.replayed:
        return _answer(f"Resend of {event_id} was already requested.", 200, "console.deliveries")
    for delivery_id in result.deliveries:
        runtime.jobs.deliver_shop_webhook(delivery_id)
    log.info("shop_event_resent", actor=actor(), event_id=event_id, due=len(result.deliveries))
    return _answer(f"Resend of {event_id} queued.", 200, "console.deliveries")


def _answer(message: str, status: int, page: str) -> Any:
    """htmx: the message as an alert fragment (with the status); else back to the page."""
    if "HX-Request" in request.headers:
        return render_template("console/_alert.html", status=status, message=message), status
    flash(message, "error" if status >= 400 else "ok")
    back: BaseResponse = redirect(url_for(page), code=303)
    return back
