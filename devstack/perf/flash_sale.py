"""A flash sale: many buyers submit at once and each long-polls until its client secret.

The figures are Stripe's side of it (intents created per second against the emulator's
limit, 429s) and the buyers' (submit → client secret, errors). The buyers are Python
threads, each on one keep-alive ``http.client`` connection: the client shares the
stack's cores, so it does no more per request than HTTP needs (``requests`` cost about
four times as much CPU: 5 to 7 ms of each intent's ~50 at 100/s, against 1.6).
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from devstack.perf import cpu
from devstack.perf.stack import BenchStack

BODY_ADDRESS = {"name": "Bench", "line1": "1 Main St", "city": "Austin", "state": "TX",
                "postalCode": "73301", "country": "US"}  # fmt: skip


@dataclass(frozen=True)
class SaleResult:
    """What one flash sale measured."""

    buyers: int
    limit: int
    seconds: float
    latencies: list[float]
    errors: int
    created: int
    rate_limited_after_first_second: int
    busiest_second: int
    steady_rate: float  # Stripe requests answered per whole second, ramp and tail left out
    cpu: dict[str, float]  # CPU seconds per role of the stack over the sale (perf.cpu)

    @property
    def intents_per_second(self) -> float:
        """Intents created per second over the sale (first submit to last secret)."""
        return self.created / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        """A submit → client secret latency percentile, seconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def buyer(stack: BenchStack, sku: str) -> tuple[float, float, bool]:
    """Submit, then long-poll until the client secret; (start, end, ok)."""
    started = time.monotonic()
    web = urlsplit(stack.web_url)
    conn = http.client.HTTPConnection(web.hostname or "127.0.0.1", web.port, timeout=60)
    try:
        status, submitted = json_call(
            conn, "POST", "/api/checkout/payment-intent",
            {"Content-Type": "application/json", "Idempotency-Key": f"sale-{uuid.uuid4()}"},
            json.dumps({"items": [{"sku": sku, "quantity": 1}], "email": "sale@example.com",
                        "shippingAddress": BODY_ADDRESS}),
        )  # fmt: skip
        if status != 202:
            return started, time.monotonic(), False
        token = {"X-Checkout-Token": submitted["checkoutToken"]}
        version = 0
        while time.monotonic() - started < 300:
            query = urlencode({"wait": 20, "since": version})
            status, body = json_call(conn, "GET", f"{submitted['statusUrl']}?{query}", token)
            if status != 200:
                return started, time.monotonic(), False
            if body["payment"].get("clientSecret"):
                return started, time.monotonic(), True
            if body.get("error"):
                return started, time.monotonic(), False
            version = body["version"]
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        return started, time.monotonic(), False
    finally:
        conn.close()
    return started, time.monotonic(), False


def json_call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
) -> tuple[int, Any]:
    """One request on a keep-alive connection (a buyer's): (status, the JSON body)."""
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def run(stack: BenchStack, *, buyers: int, limit: int, latency_ms: int = 300) -> SaleResult:
    """One sale of ``buyers`` against an emulator limited to ``limit`` requests a second."""
    sku = f"SALE-{uuid.uuid4().hex[:8].upper()}"
    stack.put_product(sku, buyers)
    stack.emulator("reset", {})
    stack.emulator("chaos", {"rateLimitPerSecond": limit, "latencyMs": latency_ms})
    before = cpu.snapshot()
    try:
        with ThreadPoolExecutor(max_workers=min(buyers, 250)) as pool:
            outcomes = list(pool.map(lambda _: buyer(stack, sku), range(buyers)))
        spent = cpu.used(before, cpu.snapshot())
    finally:
        stack.emulator("chaos", {"rateLimitPerSecond": 0, "latencyMs": 0})
    log = stack.emulator("requests")["seconds"]
    first = min(start for start, _, _ in outcomes)
    last = max(end for _, end, ok in outcomes if ok) if any(ok for *_, ok in outcomes) else first
    return SaleResult(
        buyers=buyers,
        limit=limit,
        seconds=last - first,
        latencies=[end - start for start, end, ok in outcomes if ok],
        errors=sum(1 for *_, ok in outcomes if not ok),
        created=sum(1 for *_, ok in outcomes if ok),
        rate_limited_after_first_second=sum(s["rateLimited"] for s in log[1:]),
        busiest_second=max((s["answered"] + s["rateLimited"] for s in log), default=0),
        steady_rate=steady_rate(log),
        cpu=spent,
    )


def steady_rate(log: list[dict[str, int]]) -> float:
    """Requests answered per second over the whole seconds between the sale's first and
    last (both partly outside it); the plain mean when the sale lasted under 3 seconds."""
    busy = [s for s in log if s["answered"]]
    middle = busy[1:-1] if len(busy) >= 3 else busy
    return sum(s["answered"] for s in middle) / len(middle) if middle else 0.0


def describe(result: SaleResult) -> str:
    """One line for the log."""
    return (
        f"{result.buyers} buyers at {result.limit}/s: {result.steady_rate:.1f} intents/s steady "
        f"({result.intents_per_second:.1f} first submit to last secret), "
        f"p50 {statistics.median(result.latencies or [0]):.1f} s, "
        f"p99 {result.percentile(0.99):.1f} s, errors {result.errors}, "
        f"429s after the first second {result.rate_limited_after_first_second}, "
        f"busiest second {result.busiest_second} requests"
    )
