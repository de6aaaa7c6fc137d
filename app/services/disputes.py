"""Disputes on an order's payment: the order's record, the operator's alert, an evidence draft.

``charge.dispute.created/updated/closed`` go through :func:`apply_dispute` (inside the
webhook's transaction): the order keeps the latest state of its dispute (``dispute:
{id, status, reason, amount, currency, evidenceDueBy}``), the audit trail gets
``DISPUTE_OPENED`` on first sight and ``DISPUTE_CLOSED`` when it closes, the operator is
e-mailed both times (outbox) and the metrics count it. On first sight of a dispute that
needs a response, :func:`stage_evidence` (the ``stage_dispute_evidence`` actor) builds an
evidence draft from what the service knows — the receipt, the addresses, carrier and
tracking number from fulfilment, the audit trail — and stages it at Stripe without
submitting (``submit: false``): the operator reviews it and submits from the dashboard.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from app.services.receipts import DISPUTE_ALERT, queue_message, render_receipt
from app.services.records import after_commit, lock_order, touch
from app.services.state_machine import record_event
from models import Order, OrderEvent
from models.db import database
from models.statuses import DisputeStatus

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)

DISPUTES = Counter("checkout_disputes_total", "Stripe disputes opened on our payments.")
DISPUTE_EVENTS = Counter(
    "checkout_dispute_events_total", "Stripe dispute events applied, by status.", ["status"]
)
EVIDENCE_STAGED = Counter(
    "checkout_dispute_evidence_staged_total", "Evidence drafts staged at Stripe (not submitted)."
)

CLOSED = frozenset({DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WARNING_CLOSED})
NEEDS_RESPONSE = frozenset({DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WARNING_NEEDS_RESPONSE})
# Stripe takes at most 150,000 characters of evidence text; the audit trail is cut first.
TRAIL_LIMIT = 20_000


def summary(obj: dict[str, Any]) -> dict[str, Any]:
    """The order's record of a Stripe dispute object."""
    details = obj.get("evidence_details")
    due = details.get("due_by") if isinstance(details, dict) else None
    return {
        "id": obj.get("id"),
        "status": obj.get("status"),
        "reason": obj.get("reason"),
        "amount": obj.get("amount"),
        "currency": obj.get("currency"),
        "evidenceDueBy": iso_from_unix(due),
    }


def iso_from_unix(value: Any) -> str | None:
    """Unix seconds as ISO 8601 UTC (``...Z``), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_dispute(order: Order, obj: dict[str, Any], runtime: Runtime, *, actor: str) -> list[int]:
    """Record a dispute event on ``order`` (caller's transaction); returns outbox ids.

    Deliveries may come in any order: a closed dispute never reopens on an older
    snapshot, and first sight (whichever event brings it) opens it.
    """
    new = summary(obj)
    old = order.dispute or {}
    first_sight = old.get("id") != new["id"]
    if not first_sight and old.get("status") in CLOSED and new["status"] not in CLOSED:
        return []  # an older snapshot delivered late
    outbox: list[int] = []
    if new != old:
        touch(order, dispute=new)
    payload = {"disputeId": new["id"], **{k: v for k, v in new.items() if k != "id"}}
    DISPUTE_EVENTS.labels(str(new["status"])).inc()
    if first_sight:
        record_event(order, "DISPUTE_OPENED", payload, actor)
        DISPUTES.inc()
        log.error("DISPUTE %s opened on order %s: %s", new["id"], order.id, new["reason"])
        outbox.append(alert(order, new, "opened", runtime, actor))
        if new["status"] in NEEDS_RESPONSE:
            jobs, order_id = runtime.jobs, order.id
            after_commit(lambda: jobs.stage_dispute_evidence(order_id), f"evidence of {order_id}")
    if new["status"] in CLOSED and old.get("status") not in CLOSED:
        record_event(order, "DISPUTE_CLOSED", payload, actor)
        log.warning("dispute %s on order %s closed: %s", new["id"], order.id, new["status"])
        outbox.append(alert(order, new, "closed", runtime, actor))
    elif not first_sight and new != old:
        record_event(order, "DISPUTE_UPDATED", payload, actor)
    return outbox


def alert(order: Order, dispute: dict[str, Any], event: str, runtime: Runtime, actor: str) -> int:
    """Queue the operator's e-mail about ``dispute`` (once per dispute and event)."""
    return queue_message(
        order,
        kind=DISPUTE_ALERT,
        key=f"dispute:{dispute['id']}:{event}",
        payload={"to": runtime.config.operator_email, "event": event, "dispute": dispute},
        actor=actor,
    )


def evidence_draft(order: Order, sender: str) -> dict[str, str]:
    """Stripe evidence fields from what the service knows about ``order`` (text only)."""
    events = list(OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.id))
    shipping = order.shipping_address or {}
    draft = {
        "customer_email_address": order.email,
        "customer_name": shipping.get("name"),
        "shipping_address": address_text(shipping),
        "billing_address": address_text(order.billing_address or shipping),
        "product_description": "\n".join(
            f"{line['quantity']} x {line.get('name') or line['sku']} ({line['sku']})"
            for line in order.line_items or []
        ),
    }
    for event in events:  # the latest carrier and tracking number win
        payload = event.payload or {}
        if event.type in ("FULFILLMENT_STARTED", "FULFILLED"):
            if payload.get("carrier"):
                draft["shipping_carrier"] = payload["carrier"]
            if payload.get("trackingNumber"):
                draft["shipping_tracking_number"] = payload["trackingNumber"]
            if event.type == "FULFILLMENT_STARTED":
                draft["shipping_date"] = event.ts.strftime("%Y-%m-%d")
    trail = "\n".join(f"{e.ts.isoformat(timespec='seconds')}Z {e.type}" for e in events)
    draft["uncategorized_text"] = "\n".join(
        [
            f"Order {order.order_number} ({order.id})",
            "",
            "Receipt sent to the customer:",
            render_receipt(order, sender).text,
            "",
            "Order history (UTC):",
            trail[-TRAIL_LIMIT:],
        ]
    )
    return {name: value for name, value in draft.items() if value}


def address_text(address: dict[str, Any]) -> str:
    """A postal address as lines of text."""
    city = " ".join(str(address[k]) for k in ("city", "state", "postalCode") if address.get(k))
    parts = [address.get("name"), address.get("line1"), address.get("line2"), city]
    return "\n".join(str(p) for p in [*parts, address.get("country")] if p)


def stage_evidence(order_id: str, runtime: Runtime) -> bool:
    """Stage the evidence draft of the order's open dispute at Stripe (``submit: false``).

    True if staged now; False when there is nothing to stage (no dispute, closed, or
    staged already for this dispute). Provider errors propagate (the actor retries the
    transient ones).
    """
    order = Order.get_or_none(Order.id == order_id)
    dispute = (order.dispute if order else None) or {}
    if order is None or not dispute.get("id") or dispute.get("status") in CLOSED:
        return False
    if staged_already(order.id, str(dispute["id"])):
        return False
    draft = evidence_draft(order, runtime.config.mail_from)
    runtime.gateway.stage_dispute_evidence(str(dispute["id"]), evidence=draft)
    with database().atomic():
        order = lock_order(order_id)
        if staged_already(order.id, str(dispute["id"])):
            return False
        record_event(
            order,
            "DISPUTE_EVIDENCE_STAGED",
            {"disputeId": dispute["id"], "fields": sorted(draft), "submitted": False},
            "worker",
        )
    EVIDENCE_STAGED.inc()
    return True


def staged_already(order_id: str, dispute_id: str) -> bool:
    """Whether the evidence of ``dispute_id`` was staged already (once per dispute)."""
    query = OrderEvent.select().where(
        (OrderEvent.order == order_id) & (OrderEvent.type == "DISPUTE_EVIDENCE_STAGED")
    )
    return any((e.payload or {}).get("disputeId") == dispute_id for e in query)
