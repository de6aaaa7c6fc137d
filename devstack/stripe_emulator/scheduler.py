"""A one-thread timer queue for the emulator's background work.

Webhook attempts, retries, refund failures and disputes are scheduled here; the thread
only pops due jobs and runs them (webhook jobs merely hand the HTTP call to a pool), so
one slow job never holds the queue for long.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    """Runs callables at a later time on one daemon thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._generation = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="stripe-emulator-scheduler", daemon=True
        )
        self._thread.start()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds."""
        with self._cond:
            due = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (due, next(self._seq), self._generation, fn))
            self._cond.notify()

    def clear(self) -> None:
        """Drop every pending job (used by reset)."""
        with self._cond:
            self._heap.clear()
            self._generation += 1

    def pending(self) -> int:
        """How many jobs wait to run."""
        with self._cond:
            return len(self._heap)

    def stop(self) -> None:
        """Stop the thread; pending jobs are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, generation, fn = heapq.heappop(self._heap)
                if generation != self._generation:
                    continue
            try:
                fn()
            except Exception:  # a failing job must not kill the queue
                log.exception("stripe emulator: scheduled job failed")
