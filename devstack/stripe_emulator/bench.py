"""Throughput benchmark: create+confirm pairs per second through the official SDK.

    python -m devstack.stripe_emulator.bench [--seconds 5] [--threads 4] [--in-process]

By default the emulator runs in its own process (as in ``make demo``) so the client's
SDK work does not share a GIL with the server; ``--in-process`` measures both in one.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import stripe

from .server import EmulatorServer


@contextmanager
def emulator(in_process: bool) -> Iterator[str]:
    """A running emulator's base URL."""
    if in_process:
        with EmulatorServer(port=0) as server:
            yield server.url
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.stripe_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"(http://\S+)", proc.stdout.readline())
        if not match:
            raise RuntimeError("the emulator did not report its URL")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(url: str, seconds: float, threads: int) -> tuple[int, float]:
    """Create+confirm pairs from ``threads`` threads for ``seconds``; returns (pairs, elapsed)."""
    client = stripe.StripeClient(
        "sk_test_bench", base_addresses={"api": url}, max_network_retries=0
    )
    client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})  # warm up
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        while time.monotonic() < stop:
            pi = client.v1.payment_intents.create(
                params={"amount": 1000, "currency": "usd", "metadata": {"orderId": str(index)}}
            )
            client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
            counts[index] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts), time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print pairs per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args(argv)
    with emulator(args.in_process) as url:
        cpu_before = time.process_time()
        pairs, elapsed = run(url, args.seconds, args.threads)
        cpu = time.process_time() - cpu_before
    where = "in this process" if args.in_process else "in its own process"
    print(
        f"{pairs} create+confirm pairs in {elapsed:.1f} s = {pairs / elapsed:.0f} pairs/s "
        f"({args.threads} threads, emulator {where})"
    )
    # Wall-clock rates depend on what else the machine runs; CPU per pair does not.
    print(f"CPU of this process per pair: {cpu / max(pairs, 1) * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
