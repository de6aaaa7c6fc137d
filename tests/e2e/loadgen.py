"""A small closed-loop HTTP load generator for the benchmark.

``python -m tests.e2e.loadgen --url URL --kind healthz|submit --clients 50 --seconds 5``
prints one JSON line: requests, seconds, rps, p50/p99 latency (ms) and status counts.
Clients are spread over processes (threads alone would measure the GIL, not the server).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from typing import Any

import requests

SUBMIT_BODY: dict[str, Any] = {
    "email": "bench@example.com",
    "shippingAddress": {"name": "Bench", "line1": "1 Main St", "city": "Austin", "state": "TX",
                        "postalCode": "73301", "country": "US"},
}  # fmt: skip


def _client(
    url: str, kind: str, sku: str, stop_at: float, out: list[tuple[float, float, int | str]]
) -> None:
    session = requests.Session()
    body = {**SUBMIT_BODY, "items": [{"sku": sku, "quantity": 1}]}
    while time.time() < stop_at:
        started = time.time()
        try:
            status: int | str = _request(session, url, kind, body)
        except requests.RequestException as exc:
            status = type(exc).__name__
        out.append((started, time.time(), status))


def _request(session: requests.Session, url: str, kind: str, body: dict[str, Any]) -> int:
    if kind == "healthz":
        return session.get(f"{url}/healthz", timeout=30).status_code
    return session.post(
        f"{url}/api/checkout/payment-intent",
        json=body,
        headers={"Idempotency-Key": f"bench-{uuid.uuid4()}"},
        timeout=30,
    ).status_code


def _process(args: tuple[str, str, str, int, float, Any]) -> None:
    """One load process: ``threads`` closed-loop clients for ``seconds``."""
    url, kind, sku, threads, seconds, queue = args
    # The window starts once this process has imported everything (spawn is slow).
    stop_at = time.time() + seconds
    results: list[tuple[float, float, int | str]] = []
    workers = [
        threading.Thread(target=_client, args=(url, kind, sku, stop_at, results))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(results)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))
    return ordered[rank]


def run(url: str, kind: str, clients: int, seconds: float, sku: str, procs: int) -> dict[str, Any]:
    """Run the load; return the summary."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    per_process = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    children = [
        context.Process(target=_process, args=((url, kind, sku, n, seconds, queue),))
        for n in per_process
        if n
    ]
    for child in children:
        child.start()
    chunks = [queue.get(timeout=seconds + 60) for _ in children]
    results = [item for chunk in chunks for item in chunk]
    for child in children:
        child.join(timeout=10)
    # Throughput over the window in which every client was running.
    window_start = max(min(start for start, _, _ in chunk) for chunk in chunks if chunk)
    window_end = min(max(end for _, end, _ in chunk) for chunk in chunks if chunk)
    in_window = [r for r in results if r[0] >= window_start and r[1] <= window_end]
    elapsed = max(window_end - window_start, 1e-9)
    latencies = [end - start for start, end, _ in results]
    return {
        "kind": kind,
        "clients": clients,
        "requests": len(results),
        "seconds": round(elapsed, 2),
        "rps": round(len(in_window) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "statuses": dict(Counter(str(status) for _, _, status in results)),
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=("healthz", "submit"), required=True)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sku", default="BENCH")
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.kind, args.clients, args.seconds, args.sku, args.procs)))


if __name__ == "__main__":
    main()
