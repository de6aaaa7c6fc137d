"""Dramatiq actors: thin, taking ids, each calling one service. Importing this package
declares every actor on ``tasks.broker.broker`` (``dramatiq tasks`` runs them).

With ``PROMETHEUS_MULTIPROC_DIR`` set (the web's directory, on the same host), every
process here writes its metrics there and the web's ``/metrics`` includes them; the
directory is created first, before any metric opens its file.
"""

import os

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from tasks import checkout, expiry, orders, receipts, webhooks

__all__ = ["checkout", "expiry", "orders", "receipts", "webhooks"]
