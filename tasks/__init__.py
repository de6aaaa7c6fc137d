"""Dramatiq actors: thin, taking ids, each calling one service. Importing this package
declares every actor on ``tasks.broker.broker`` (``dramatiq tasks`` runs them)."""

from tasks import checkout, expiry, orders, receipts, webhooks

__all__ = ["checkout", "expiry", "orders", "receipts", "webhooks"]
