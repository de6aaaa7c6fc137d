"""The cost bench's buyers: each order submitted, confirmed at the emulator as Stripe.js
does, and waited on through the checkout status long-poll until PAID.

Each buyer thread keeps two keep-alive ``http.client`` connections, one to the shop's web
and one to Stripe (the emulator): the buyers share the machine with the stack, so they
do no more per request than HTTP needs (``flash_sale``'s reasons).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from devstack.perf import stack
from devstack.perf.flash_sale import BODY_ADDRESS, json_call

PUBLISHABLE_KEY = "pk_test_emulator"
ORDER_TIMEOUT_SECONDS = 120


@dataclass
class Tally:
    """What the buyers saw, shared by their threads."""

    paid: int = 0
    failed: int = 0
    confirms: int = 0
    answers: int = 0  # long-poll answers (200s of the status URL)
    failures: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        """Add to the counters, under the lock."""
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def fail(self, why: str) -> None:
        """One order that did not reach PAID, and why."""
        with self.lock:
            self.failed += 1
            self.failures[why] += 1


class Buyer:
    """One buyer thread's keep-alive connections: the shop's web and Stripe (emulator)."""

    def __init__(self, web_url: str, stripe_url: str) -> None:
        web, api = urlsplit(web_url), urlsplit(stripe_url)
        self.web = http.client.HTTPConnection(web.hostname or "127.0.0.1", web.port, timeout=60)
        self.stripe = http.client.HTTPConnection(api.hostname or "127.0.0.1", api.port, timeout=60)

    def close(self) -> None:
        """Close both connections."""
        self.web.close()
        self.stripe.close()

    def order(self, sku: str, tally: Tally) -> None:
        """Submit, wait for the client secret, confirm with a test card, wait for PAID."""
        started = time.monotonic()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"cost-{uuid.uuid4()}"}
        body = {"items": [{"sku": sku, "quantity": 1}], "email": "cost@example.com",
                "shippingAddress": BODY_ADDRESS}  # fmt: skip
        status, submitted = json_call(self.web, "POST", "/api/checkout/payment-intent", headers,
                                  json.dumps(body))  # fmt: skip
        if status != 202:
            return tally.fail(f"submit {status}")
        token = {"X-Checkout-Token": submitted["checkoutToken"]}
        waiting = self._wait(submitted["statusUrl"], token, started, tally, _has_secret)
        if waiting is None:
            return tally.fail("no client secret")
        secret = waiting["payment"]["clientSecret"]
        intent = secret.split("_secret_")[0]
        form = urlencode({"payment_method": "pm_card_visa", "client_secret": secret,
                          "use_stripe_sdk": "true"})  # fmt: skip
        status, _ = json_call(
            self.stripe, "POST", f"/v1/payment_intents/{intent}/confirm",
            {"Authorization": f"Bearer {PUBLISHABLE_KEY}",
             "Content-Type": "application/x-www-form-urlencoded"}, form,
        )  # fmt: skip
        tally.add(confirms=1)
        if status != 200:
            return tally.fail(f"confirm {status}")
        paid = self._wait(
            submitted["statusUrl"], token, started, tally, lambda s: s["state"] == "PAID",
            since=waiting["version"],
        )  # fmt: skip
        if paid is None:
            return tally.fail("not PAID")
        tally.add(paid=1)
        return None

    def _wait(
        self,
        status_url: str,
        token: dict[str, str],
        started: float,
        tally: Tally,
        done: Any,
        since: int = 0,
    ) -> dict[str, Any] | None:
        """Long-poll until ``done(status)``; None on an error or a timeout."""
        while time.monotonic() - started < ORDER_TIMEOUT_SECONDS:
            query = urlencode({"wait": 20, "since": since})
            status, body = json_call(self.web, "GET", f"{status_url}?{query}", token)
            if status != 200:
                return None
            tally.add(answers=1)
            if done(body):
                return dict(body)
            if body.get("error") or body["state"] in ("FAILED", "CANCELLED", "EXPIRED"):
                return None
            since = body["version"]
        return None


def _has_secret(status: dict[str, Any]) -> bool:
    return bool(status["payment"].get("clientSecret"))


def buy(bench: stack.BenchStack, sku: str, orders: int, buyers: int) -> Tally:
    """``orders`` orders by ``buyers`` threads, each order from submit to PAID."""
    tally = Tally()
    queue = iter(range(orders))
    lock = threading.Lock()

    def one_buyer() -> None:
        buyer = Buyer(bench.web_url, bench.plan.emulator_url)
        try:
            while True:
                with lock:
                    if next(queue, None) is None:
                        return
                try:
                    buyer.order(sku, tally)
                except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                    tally.fail(exc.__class__.__name__)
                    buyer.close()
                    buyer = Buyer(bench.web_url, bench.plan.emulator_url)
        finally:
            buyer.close()

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        for running in [pool.submit(one_buyer) for _ in range(buyers)]:
            running.result()
    return tally
