"""Webhook delivery: signed like Stripe, asynchronous, retried with backoff, logged.

Each event goes to the configured endpoint as ``POST`` with the JSON body and
``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>``
(docs.stripe.com/webhooks/signature). A non-2xx answer or a timeout schedules another
attempt after ``first_retry * 2**(attempt-1)`` seconds, up to ``max_attempts`` — Stripe's
three days of retries compressed for development.

The endpoint receives only the event types it enables (Stripe's ``enabled_events``:
``["*"]``, the default, is every type); an event of another type is never attempted,
logged or counted in its ``pending_webhooks``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from .chaos import Chaos
from .scheduler import Scheduler

Obj = dict[str, Any]

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"

ALL_EVENTS = "*"  # in enabled_events: every event type


def enabled_events(types: Iterable[object]) -> tuple[str, ...]:
    """Checked ``enabled_events``: at least one type, each a non-empty string without
    spaces or commas (``*`` means all); raises ValueError naming what is wrong."""
    if isinstance(types, str):  # one string is not a list of its characters
        raise ValueError("enabled events must be a list of event types")
    checked: list[str] = []
    for type_ in types:
        if not isinstance(type_, str) or not type_ or any(c in type_ for c in " ,\t\n"):
            raise ValueError(f"not an event type: {type_!r}")
        checked.append(type_)
    if not checked:
        raise ValueError("enabled events must list at least one event type (or *)")
    return tuple(checked)


@dataclass
class WebhookConfig:
    """Where events go and how hard the emulator tries."""

    url: str | None = None
    secret: str | None = None
    max_attempts: int = 6
    first_retry: float = 1.0  # seconds; each later retry waits twice as long
    timeout: float = 5.0  # seconds to wait for the endpoint's answer
    events: tuple[str, ...] = (ALL_EVENTS,)  # Stripe's enabled_events

    def enables(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` goes to the endpoint (one is configured)."""
        return bool(self.url) and (ALL_EVENTS in self.events or event_type in self.events)

    def to_json(self) -> Obj:
        """The control endpoint's view (the secret is not echoed in full)."""
        secret = self.secret
        return {
            "url": self.url,
            "secret": (secret[:10] + "…") if secret else None,
            "maxAttempts": self.max_attempts,
            "firstRetryMs": int(self.first_retry * 1000),
            "timeoutMs": int(self.timeout * 1000),
            "enabledEvents": list(self.events),
        }


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for a body at a time."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Delivery:
    """One attempt to deliver one event (retries and duplicates are new Deliveries)."""

    event: Obj
    body: bytes
    generation: int
    attempt: int = 1
    delay: float = 0.0  # seconds waited before this attempt
    duplicate: bool = False
    reordered: bool = False
    then: list[Callable[[], None]] = field(default_factory=list)  # run after the attempt


class WebhookDispatcher:
    """Queues events for delivery and records every attempt."""

    # A reordered event waits for the next event's first attempt, at most this long.
    REORDER_MAX_HOLD = 2.0

    def __init__(
        self,
        scheduler: Scheduler,
        chaos: Chaos,
        config: WebhookConfig,
        *,
        workers: int = 4,
        log_size: int = 10_000,
    ) -> None:
        self.scheduler = scheduler
        self.chaos = chaos
        self.config = config
        self.on_delivered: Callable[[str], None] = lambda event_id: None
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="stripe-emulator-webhook"
        )
        self._log: deque[Obj] = deque(maxlen=log_size)
        self._held: list[Delivery] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._generation = 0

    def pending_count(self, event_type: str) -> int:
        """``pending_webhooks`` for a new event: one per endpoint that enables its type."""
        return 1 if self.config.enables(event_type) else 0

    def publish(self, event: Obj) -> None:
        """Schedule the first attempt (plus chaos: delay, reordering, a duplicate)."""
        if not self.config.enables(event["type"]):
            return
        chaos = self.chaos.config
        body = json.dumps(event, indent=2).encode()
        delivery = Delivery(event, body, self._generation, delay=chaos.delivery_delay_ms / 1000)
        if self.chaos.chance(chaos.duplicate_rate):
            twin = replace(delivery, duplicate=True, delay=delivery.delay + 0.05, then=[])
            self._schedule(twin)
        if self.chaos.chance(chaos.reorder_rate):
            # Held until the next event's first attempt is over, so it arrives after it.
            delivery.reordered = True
            with self._lock:
                self._held.append(delivery)
            self.scheduler.call_later(delivery.delay + self.REORDER_MAX_HOLD, self._release)
            return
        delivery.then.append(self._release)
        self._schedule(delivery)

    def resend(self, event: Obj) -> None:
        """Deliver an event again now (the control endpoint's resend)."""
        if not self.config.url:
            raise ValueError("no webhook endpoint is configured")
        if not self.config.enables(event["type"]):
            raise ValueError(f"the webhook endpoint does not enable {event['type']} events")
        self._schedule(Delivery(event, json.dumps(event, indent=2).encode(), self._generation))

    def deliveries(self, event_id: str | None = None, type_: str | None = None) -> list[Obj]:
        """The delivery log, oldest first, optionally filtered."""
        with self._lock:
            rows = list(self._log)
        return [
            r
            for r in rows
            if (not event_id or r["eventId"] == event_id) and (not type_ or r["type"] == type_)
        ]

    def reset(self) -> None:
        """Forget the log and held events; attempts already in flight are not retried."""
        with self._lock:
            self._log.clear()
            self._held.clear()
            self._generation += 1

    def stop(self) -> None:
        """Stop the delivery pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _release(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for delivery in held:
            self._schedule(replace(delivery, delay=0.0))

    def _schedule(self, delivery: Delivery) -> None:
        def submit() -> None:
            if delivery.generation == self._generation:
                self._pool.submit(self._attempt, delivery)

        self.scheduler.call_later(delivery.delay, submit)

    def _attempt(self, delivery: Delivery) -> None:
        config = self.config
        if not config.url or delivery.generation != self._generation:
            return
        status, error = self._post(config, delivery.body)
        ok = status is not None and 200 <= status < 300
        retry_in = None
        if not ok and delivery.attempt < config.max_attempts:
            retry_in = config.first_retry * 2 ** (delivery.attempt - 1)
        event = delivery.event
        entry = {
            "id": f"dl_{next(self._ids)}",
            "eventId": event["id"],
            "type": event["type"],
            "attempt": delivery.attempt,
            "statusCode": status,
            "ok": ok,
            "error": error,
            "ts": time.time(),
            "delayMs": int(delivery.delay * 1000),
            "duplicate": delivery.duplicate,
            "reordered": delivery.reordered and delivery.attempt == 1,
            "url": config.url,
            "nextRetryInMs": int(retry_in * 1000) if retry_in is not None else None,
        }
        with self._lock:
            if delivery.generation != self._generation:
                return
            self._log.append(entry)
        for callback in delivery.then:
            callback()
        if ok and not delivery.duplicate:
            self.on_delivered(event["id"])
        elif retry_in is not None:
            self._schedule(replace(delivery, attempt=delivery.attempt + 1, delay=retry_in, then=[]))

    def _post(self, config: WebhookConfig, body: bytes) -> tuple[int | None, str | None]:
        """POST a signed body; returns (status code, connection error)."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
            "Accept": "*/*; q=0.5, application/xml",
        }
        if config.secret:
            headers["Stripe-Signature"] = sign(body, config.secret, int(time.time()))
        assert config.url is not None
        request = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=config.timeout) as response:
                response.read(64 * 1024)
                return int(response.status), None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
