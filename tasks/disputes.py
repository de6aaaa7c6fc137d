"""Actor: stage a dispute's evidence draft at Stripe, for the operator to review."""

from __future__ import annotations

from app.runtime import current
from app.services import disputes


def stage_dispute_evidence(order_id: str) -> None:
    """Build the order's evidence draft and stage it at Stripe (``submit: false``)."""
    disputes.stage_evidence(order_id, current())
