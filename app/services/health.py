"""Readiness probes: can this process reach its database and Redis?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def readiness(database: Callable[[], Any], redis: Callable[[], Any]) -> dict[str, str]:
    """``"ok"`` or ``"error: <class>"`` for each dependency (getters, probed in order)."""
    return {
        "database": _probe(lambda: database().execute_sql("SELECT 1").fetchone()),
        "redis": _probe(lambda: redis().ping()),
    }


def _probe(check: Callable[[], Any]) -> str:
    try:
        check()
    except Exception as exc:  # any failure means "not ready"; the reason is logged by class
        return f"error: {type(exc).__name__}"
    return "ok"
