"""Throughput benchmark: create+confirm PaymentIntent pairs per second.

    python -m devstack.stripe_emulator.bench [--seconds 5] [--threads 4] [--in-process]
    python -m devstack.stripe_emulator.bench --raw [--clients 2] [--seconds 5]

The default client is the official SDK in ``--threads`` threads. The SDK costs several
milliseconds of CPU per pair itself, so on a small machine that number measures the
client. ``--raw`` measures the emulator instead: ``--clients`` separate processes, each
with one keep-alive ``http.client`` connection sending the same two form posts.

By default the emulator runs in its own process (as in ``make demo``) so the client's
work does not share a GIL with the server; ``--in-process`` measures both in one (with
``--raw`` the clients are still separate processes). Both modes also print the
emulator's CPU time per pair, which does not depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from urllib.parse import urlsplit

import stripe

from .server import EmulatorServer


@dataclass
class Running:
    """A running emulator: its base URL and the process id (None: this process)."""

    url: str
    pid: int | None = None

    def cpu(self) -> float | None:
        """The emulator process's CPU seconds so far (user + system), if readable."""
        if self.pid is None:
            return time.process_time()
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None  # not Linux
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def emulator(in_process: bool) -> Iterator[Running]:
    """A running emulator."""
    if in_process:
        with EmulatorServer(port=0) as server:
            yield Running(server.url)
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
        yield Running(match.group(1), proc.pid)
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


def _raw_client(
    url: str,
    ready: Barrier,
    deadline: Synchronized[float],
    results: Queue[tuple[int, float]],
) -> None:
    """One client process: create+confirm pairs over one keep-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
    headers = {
        "Authorization": "Bearer sk_test_bench",
        "Content-Type": "application/x-www-form-urlencoded",
    }

    def post(path: str, body: str) -> bytes:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {data[:200]!r}")
        return data

    post("/v1/payment_intents", "amount=1000&currency=usd")  # connect and warm up
    ready.wait()
    ready.wait()  # the parent set the deadline between the two waits
    pairs = 0
    stop = deadline.value
    while time.monotonic() < stop:
        pi = json.loads(post("/v1/payment_intents", "amount=1000&currency=usd&metadata[n]=1"))
        post(f"/v1/payment_intents/{pi['id']}/confirm", "payment_method=pm_card_visa")
        pairs += 1
    results.put((pairs, time.monotonic()))
    conn.close()


def run_raw(url: str, seconds: float, clients: int) -> tuple[int, float]:
    """Create+confirm pairs from ``clients`` processes for ``seconds``; (pairs, elapsed)."""
    ctx = multiprocessing.get_context()
    ready = ctx.Barrier(clients + 1)
    deadline = ctx.Value("d", 0.0)
    results: Queue[tuple[int, float]] = ctx.Queue()
    procs = [
        ctx.Process(target=_raw_client, args=(url, ready, deadline, results), daemon=True)
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=60)
    started = time.monotonic()
    deadline.value = started + seconds
    ready.wait(timeout=60)
    done = [results.get(timeout=seconds + 60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    return sum(n for n, _ in done), max(end for _, end in done) - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print pairs per second."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4, help="SDK client threads")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--raw", action="store_true", help="raw HTTP client processes")
    parser.add_argument("--clients", type=int, default=2, help="client processes with --raw")
    args = parser.parse_args(argv)
    with emulator(args.in_process) as emu:
        cpu_before = emu.cpu()
        if args.raw:
            pairs, elapsed = run_raw(emu.url, args.seconds, args.clients)
            clients = f"{args.clients} raw HTTP client processes"
        else:
            pairs, elapsed = run(emu.url, args.seconds, args.threads)
            clients = f"SDK, {args.threads} threads"
        cpu_after = emu.cpu()
    where = "in this process" if args.in_process else "in its own process"
    print(
        f"{pairs} create+confirm pairs in {elapsed:.1f} s = {pairs / elapsed:.0f} pairs/s "
        f"({clients}; emulator {where})"
    )
    # Wall-clock rates depend on what else the machine runs; CPU per pair does not.
    if cpu_before is not None and cpu_after is not None:
        ms = (cpu_after - cpu_before) / max(pairs, 1) * 1000
        whose = "emulator" if args.raw or not args.in_process else "this process (SDK + emulator)"
        print(f"CPU of the {whose} per pair: {ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
