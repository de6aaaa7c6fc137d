"""The emulator's parts wired together: state, payments, refunds, webhooks, chaos."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .chaos import Chaos, ChaosConfig
from .checkout import CheckoutSessions
from .disputes import Disputes
from .idempotency import IdempotencyStore
from .payments import Payments, Timing
from .refunds import Refunds
from .scheduler import Scheduler
from .store import Store
from .tax import Tax
from .webhooks import WebhookConfig, WebhookDispatcher


@dataclass
class Settings:
    """Everything the CLI flags and ``EmulatorServer`` arguments configure."""

    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    chaos: ChaosConfig = field(default_factory=ChaosConfig)
    timing: Timing = field(default_factory=Timing)
    webhook_workers: int = 4


class Emulator:
    """One emulated Stripe account (test mode), independent of any HTTP server."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.scheduler = Scheduler()
        self.chaos = Chaos(self.settings.chaos)
        self.webhooks = WebhookDispatcher(
            self.scheduler, self.chaos, self.settings.webhook, workers=self.settings.webhook_workers
        )
        self.store = Store(publish=self.webhooks.publish, pending=self.webhooks.pending_count)
        self.webhooks.on_delivered = self._delivered
        self.payments = Payments(self.store, self.scheduler, self.settings.timing)
        self.refunds = Refunds(self.store, self.scheduler, self.settings.timing)
        self.disputes = Disputes(self.store)
        self.checkout = CheckoutSessions(self.store, self.payments, self.scheduler)
        self.tax = Tax(self.store)
        self.idempotency = IdempotencyStore()
        self._start_timing = dataclasses.replace(self.settings.timing)

    def reset(self) -> None:
        """Forget all objects, events, keys, deliveries and pending work; restore chaos.

        The webhook endpoint stays configured, so a test can reset between cases
        without re-registering its receiver.
        """
        with self.store.lock:
            self.scheduler.clear()
            self.webhooks.reset()
            self.store.reset()
            self.idempotency.reset()
            self.chaos.reset()
            # Payments and refunds share this Timing object: restore it in place.
            for name, value in dataclasses.asdict(self._start_timing).items():
                setattr(self.settings.timing, name, value)

    def close(self) -> None:
        """Stop the background threads."""
        self.scheduler.stop()
        self.webhooks.stop()

    def _delivered(self, event_id: str) -> None:
        # Stripe counts down pending_webhooks as endpoints acknowledge the event.
        with self.store.lock:
            event = self.store.tables["event"].get(event_id)
            if event is not None and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1
