"""Helpers shared by the actors: when to run a delayed message."""

from __future__ import annotations

from datetime import datetime

from models.db import utcnow

HOLDS_QUEUE = "holds"  # delayed expiry messages live apart from the default queue


def delay_ms(at: datetime) -> int:
    """Milliseconds from now until ``at`` (a naive UTC datetime); never negative."""
    return max(0, int((at - utcnow()).total_seconds() * 1000))
