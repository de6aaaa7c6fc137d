"""Benchmark (``make bench``): the submit endpoint against /healthz on the same gunicorn
server with the real Redis, then submit-to-client-secret latency through the emulator."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Stack
from tests.e2e.loadgen import percentile

pytestmark = [pytest.mark.bench, pytest.mark.realredis]

CLIENTS = 50
SECONDS = 10.0
SECRET_SAMPLES = 100


@pytest.fixture(scope="module")
def bench_stack(launch_stack: Callable[..., Stack]) -> Stack:
    """Web (Procfile shape: gthread, 8 threads, 2 workers) and emulator; no worker yet."""
    return launch_stack(web_workers=2, with_worker=False)


def load(stack: Stack, kind: str, sku: str) -> dict[str, Any]:
    """Run the load generator in its own processes against the stack."""
    output = subprocess.run(
        [sys.executable, "-m", "tests.e2e.loadgen", "--url", stack.web, "--kind", kind,
         "--clients", str(CLIENTS), "--seconds", str(SECONDS), "--sku", sku],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=SECONDS + 120,
    ).stdout  # fmt: skip
    return dict(json.loads(output.strip().splitlines()[-1]))


def secret_latencies(stack: Stack, sku: str) -> list[float]:
    """Seconds from submit to a status carrying the client secret (10 buyers at a time)."""

    def one(_: int) -> float:
        started = time.perf_counter()
        response = stack.submit([(sku, 1)])
        assert response.status_code == 202, response.text
        stack.wait_for(response.json(), lambda s: bool(s["payment"]["clientSecret"]))
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(one, range(SECRET_SAMPLES)))


class TestSubmitThroughput:
    def test_submit_against_healthz_and_time_to_client_secret(self, bench_stack: Stack) -> None:
        stack = bench_stack
        stack.put_product("BENCH", stock=10_000_000)
        for kind in ("healthz", "submit"):  # warm both paths (imports, connections)
            load_once = {"healthz": lambda: stack.session.get(f"{stack.web}/healthz"),
                         "submit": lambda: stack.submit([("BENCH", 1)])}  # fmt: skip
            for _ in range(20):
                load_once[kind]()
        health = load(stack, "healthz", "BENCH")
        submit = load(stack, "submit", "BENCH")
        assert set(health["statuses"]) == {"200"}, health
        assert set(submit["statuses"]) == {"202"}, submit

        # Submit-to-client-secret needs the worker; drain the throughput run's backlog first.
        stack.redis.delete(*list(stack.redis.keys("dramatiq:*")) or ["none"])
        stack.start_worker()
        stack.put_product("BENCH-PI", stock=10_000)
        latencies = secret_latencies(stack, "BENCH-PI")

        ratio = submit["rps"] / health["rps"] if health["rps"] else 0.0
        rows = [
            ("GET /healthz", health["rps"], health["p50_ms"], health["p99_ms"], health["requests"]),
            ("POST /api/checkout/payment-intent", submit["rps"], submit["p50_ms"],
             submit["p99_ms"], submit["requests"]),
        ]  # fmt: skip
        print(f"\n\nHTTP benchmark: gunicorn gthread 2 workers x 8 threads, real Redis, "
              f"{CLIENTS} concurrent clients, {SECONDS:.0f} s each")  # fmt: skip
        print(f"{'endpoint':<36}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}")
        for name, rps, p50, p99, count in rows:
            print(f"{name:<36}{rps:>10.1f}{p50:>10.1f}{p99:>10.1f}{count:>10}")
        print(f"submit / healthz throughput: {ratio:.2f}")
        print(
            f"submit -> client secret through the emulator ({SECRET_SAMPLES} checkouts, "
            f"10 at a time): p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
            f"mean {statistics.mean(latencies) * 1000:.0f} ms\n"
        )
        assert len(latencies) == SECRET_SAMPLES
