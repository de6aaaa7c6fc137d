"""Buyers, a forger and a fault injector, each on its own threads, each bounded in time.

A buyer does what a shop's page does: submit (retrying the same ``Idempotency-Key`` on
a connection error, a 5xx or a 429, as a client must), long-poll the checkout status
until the client secret shows, then confirm the intent with ``pm_card_visa`` through the
official SDK against the emulator (as Stripe.js would), and wait for PAID. Some buyers
abandon after the client secret, some have their card declined and give up: their
holds expire. A buyer whose status answers 404 after a Redis flush (its submission was
lost with Redis, as docs/payments.md's runbook says) checks out again with a new key.

The forger sends deliveries to the webhook endpoint that Stripe did not sign (wrong
secret, tampered body, stale timestamp, no or malformed header), about one for every 19
real deliveries the emulator made (5 % of all), each claiming a payment succeeded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.chaos.harness import ChaosStack

RETRYABLE = {429, 500, 502, 503, 504}


@dataclass
class Buyer:
    """One buyer's journey, as the suite saw it."""

    n: int
    sku: str
    behaviour: str  # pay | abandon | decline
    email: str
    keys: list[str] = field(default_factory=list)
    submit_status: int | None = None
    submit_code: str | None = None
    order_ids: list[str] = field(default_factory=list)  # every order id answered 202
    lost_with_redis: list[str] = field(default_factory=list)  # 202, then 404 after a flush
    intent_id: str | None = None
    outcome: str = "started"
    final_state: str | None = None
    transport_retries: int = 0


class BuyerDone(Exception):
    """A buyer's journey ended early (the outcome says why)."""


def _address(n: int) -> dict[str, str]:
    return {
        "name": f"Chaos Buyer {n}",
        "line1": f"{n} Main St",
        "city": "Austin",
        "state": "TX",
        "postalCode": "73301",
        "country": "US",
    }


class Shop:
    """Drives buyers against one stack, within a deadline."""

    def __init__(self, stack: ChaosStack, deadline: float) -> None:
        self.stack = stack
        self.deadline = deadline
        self.local = threading.local()
        self.stripe = stack.stripe(retries=4)

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        session: requests.Session = self.local.session
        return session

    def _request(self, buyer: Buyer, method: str, path: str, **kw: Any) -> requests.Response:
        """One HTTP call, retried on transport errors and retryable statuses."""
        while True:
            if time.monotonic() > self.deadline:
                raise BuyerDone("deadline")
            try:
                response = self._session().request(method, self.stack.web + path, **kw)
            except requests.RequestException:
                self.local.session = requests.Session()
                buyer.transport_retries += 1
                time.sleep(random.uniform(0.3, 1.5))
                continue
            if response.status_code in RETRYABLE:
                buyer.transport_retries += 1
                time.sleep(float(response.headers.get("Retry-After") or random.uniform(0.3, 1.5)))
                continue
            return response

    def submit(self, buyer: Buyer) -> dict[str, Any] | None:
        key = f"chaos-{buyer.n}-{uuid.uuid4().hex}"
        buyer.keys.append(key)
        body = {
            "items": [{"sku": buyer.sku, "quantity": 1}],
            "email": buyer.email,
            "shippingAddress": _address(buyer.n),
        }
        response = self._request(
            buyer,
            "POST",
            "/api/checkout/payment-intent",
            json=body,
            timeout=30,
            headers={"Idempotency-Key": key},
        )
        buyer.submit_status = response.status_code
        if response.status_code != 202:
            buyer.submit_code = response.json().get("error", {}).get("code")
            return None
        submitted: dict[str, Any] = response.json()
        buyer.order_ids.append(submitted["orderId"])
        if submitted["checkoutToken"] is None:
            # A replay of an answer the network lost: only the first answer carries a
            # guest's token. Like a real client, start a new attempt (the old hold lapses).
            return self.submit(buyer)
        return submitted

    def status(self, buyer: Buyer, submitted: dict[str, Any], since: int) -> dict[str, Any] | None:
        response = self._request(
            buyer,
            "GET",
            submitted["statusUrl"],
            timeout=30,
            params={"wait": 10, "since": since},
            headers={"X-Checkout-Token": submitted["checkoutToken"]},
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(
        self, buyer: Buyer, submitted: dict[str, Any], done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        current: dict[str, Any] = {"version": 0}
        misses = 0
        while True:
            reply = self.status(buyer, submitted, int(current.get("version") or 0))
            if reply is None:
                # 404: not written yet and unknown to Redis. Lost with a flush, or the
                # web answered while Redis restarted; ask a few times before deciding.
                misses += 1
                if misses >= 5:
                    return None
                time.sleep(1)
                continue
            misses = 0
            current = reply
            if done(current):
                return current

    def buy(self, buyer: Buyer) -> Buyer:
        try:
            self._buy(buyer)
        except BuyerDone as exc:
            buyer.outcome = str(exc)
        return buyer

    def _buy(self, buyer: Buyer) -> None:
        for _attempt in range(3):
            submitted = self.submit(buyer)
            if submitted is None:
                buyer.outcome = f"refused:{buyer.submit_code}"
                return
            status = self.wait_status(
                buyer,
                submitted,
                lambda s: (
                    bool(s["payment"].get("clientSecret"))
                    or s["state"] != "PENDING"
                    or s.get("error") is not None
                ),
            )
            if status is not None:
                break
            buyer.lost_with_redis.append(submitted["orderId"])
        else:
            buyer.outcome = "lost_three_times"
            return
        if status["state"] != "PENDING" or not status["payment"].get("intentId"):
            buyer.outcome = f"ended_before_paying:{status['state']}"
            return
        buyer.intent_id = status["payment"]["intentId"]
        if buyer.behaviour == "abandon":
            buyer.outcome = "abandoned"
            return
        method = "pm_card_chargeDeclined" if buyer.behaviour == "decline" else "pm_card_visa"
        if not self.confirm(buyer, method):
            return
        if buyer.behaviour == "decline":
            buyer.outcome = "declined"
            return
        final = self.wait_status(
            buyer, submitted, lambda s: s["state"] != "PENDING" or time.monotonic() > self.deadline
        )
        buyer.final_state = final["state"] if final else None
        buyer.outcome = "paid" if buyer.final_state == "PAID" else f"paid_then:{buyer.final_state}"

    def confirm(self, buyer: Buyer, method: str) -> bool:
        import stripe

        assert buyer.intent_id is not None
        params = {"payment_method": method, "return_url": f"{self.stack.web}/order/return"}
        for _ in range(5):
            if time.monotonic() > self.deadline:
                raise BuyerDone("deadline")
            try:
                self.stripe.v1.payment_intents.confirm(buyer.intent_id, params)
                return True
            except stripe.CardError:
                buyer.outcome = "declined"
                return buyer.behaviour == "decline"
            except stripe.InvalidRequestError as exc:
                # The intent moved on (hold expired and canceled): nothing was charged.
                buyer.outcome = f"confirm_refused:{exc.code}"
                return False
            except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError):
                buyer.transport_retries += 1
                time.sleep(random.uniform(0.5, 2))
        buyer.outcome = "confirm_gave_up"
        return False


def run_buyers(
    shop: Shop, buyers: list[Buyer], *, spread: float, threads: int, progress: Callable[[str], None]
) -> list[Buyer]:
    """Buyers arrive spread over ``spread`` seconds, ``threads`` at a time."""
    starts = sorted(random.uniform(0, spread) for _ in buyers)
    t0 = time.monotonic()
    done = Counter[str]()

    def one(pair: tuple[Buyer, float]) -> Buyer:
        buyer, start = pair
        time.sleep(max(0.0, t0 + start - time.monotonic()))
        result = shop.buy(buyer)
        done[result.outcome.split(":")[0]] += 1
        total = sum(done.values())
        if total % max(1, len(buyers) // 5) == 0:
            progress(f"  buyers done {total}/{len(buyers)}: {dict(done)}")
        return result

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, zip(buyers, starts, strict=True)))


# --- the forger -----------------------------------------------------------------------

FORGERIES = (
    "wrong_secret",
    "tampered_body",
    "stale_timestamp",
    "no_signature",
    "garbage_header",
    "v0_only",
)


@dataclass
class Forger:
    """Sends forged deliveries to the webhook endpoint: about 5 % of all deliveries."""

    stack: ChaosStack
    share: float = 0.05
    sent: Counter[str] = field(default_factory=Counter)
    answers: Counter[int] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    baseline: int = 0

    def start(self) -> Forger:
        self.baseline = len(self._deliveries())
        self._thread = threading.Thread(target=self._run, name="forger", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._top_up()  # the last real deliveries get their share too

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def _deliveries(self) -> list[dict[str, Any]]:
        try:
            return list(self.stack.emulator_control("deliveries")["data"])
        except (requests.RequestException, AssertionError, KeyError, TypeError):
            return []

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            self._top_up()

    def _top_up(self) -> None:
        real = len(self._deliveries()) - self.baseline
        owed = int(real * self.share / (1 - self.share)) - self.total
        for _ in range(max(0, owed)):
            self._send_one()

    def _payload(self) -> dict[str, Any]:
        """A payment_intent.succeeded claim about a real intent (whatever its status)."""
        try:
            events = self.stack.stripe().v1.events.list({"limit": 20})
            objects = [
                e.data.object.to_dict()
                for e in events.data
                if str(e.type).startswith("payment_intent.")
            ]
        except Exception:
            objects = []
        intent = (
            random.choice(objects)
            if objects
            else {"id": "pi_forged", "object": "payment_intent", "metadata": {}}
        )
        intent.update(status="succeeded", amount_received=intent.get("amount", 1))
        return {
            "id": f"evt_forged_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "api_version": "2023-08-16",
            "livemode": False,
            "data": {"object": intent},
        }

    def _send_one(self) -> None:
        kind = FORGERIES[self.total % len(FORGERIES)]
        event = self._payload()
        body = json.dumps(event).encode()
        now = int(time.time())
        secret = self.stack.webhook_secret
        header: str | None
        if kind == "wrong_secret":
            header = _sign(body, "whsec_forged_" + uuid.uuid4().hex, now)
        elif kind == "tampered_body":
            header = _sign(body, secret, now)
            event["data"]["object"]["amount_received"] = 1
            event["data"]["object"]["metadata"] = {"orderId": "someone-else"}
            body = json.dumps(event).encode()
        elif kind == "stale_timestamp":
            header = _sign(body, secret, now - 3600)
        elif kind == "no_signature":
            header = None
        elif kind == "garbage_header":
            header = f"t={now},v1={'0' * 64}"
        else:  # v0_only: the right HMAC under a scheme Stripe does not use for signing
            header = _sign(body, secret, now).replace("v1=", "v0=")
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Stripe-Signature"] = header
        for _ in range(20):  # the web dyno may be down: a delivery is retried, as Stripe does
            try:
                response = requests.post(
                    f"{self.stack.web}/api/webhooks/stripe", data=body, headers=headers, timeout=10
                )
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if response.status_code in (502, 503, 504):
                time.sleep(0.5)
                continue
            self.sent[kind] += 1
            self.answers[response.status_code] += 1
            if response.status_code != 400:
                self.accepted.append(f"{kind}:{response.status_code}:{response.text[:200]}")
            return


def _sign(body: bytes, secret: str, ts: int) -> str:
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"
