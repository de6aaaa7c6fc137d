"""A soak: paid orders at a steady rate for a long time, sampled every minute.

``make soak`` (``python -m devstack.soak --minutes 30 --rate 20``) starts the bench's stack
(``devstack.perf.stack``: the emulator, the mail catcher, web, worker) plus the clock, on a
private ``redis-server`` and on PostgreSQL when ``DATABASE_URL`` names one (else SQLite),
turns the emulator's chaos on (every webhook delivered twice, 1 % of Stripe calls answered
500) and sends ``--rate`` buyers a second, each of whom submits, waits for the client
secret, pays with ``pm_card_visa`` through the official SDK and waits for PAID.

Every minute it samples each process's resident memory (per role, the process and its
children), Redis's memory and key count, the PostgreSQL connections of the run's database
and the minute's p99s, prints a progress line to stderr, and at the end writes
``var/soak/soak-<time>.csv``, ``.png`` (matplotlib) and ``.md`` (the table for
docs/reliability.md) and prints whether anything grew: each series' slope over the last
half of the run against its first half (:func:`growth`).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse, urlsplit

import redis as redis_lib

from devstack.perf import stack as bench
from devstack.perf.flash_sale import BODY_ADDRESS
from devstack.serving import free_port
from devstack.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "soak"
PROC = Path("/proc")
CHAOS = {"duplicateRate": 1.0, "failureRate": 0.01}
CALM = {"duplicateRate": 0.0, "failureRate": 0.0}
# A buyer gives up after this long (a paid order takes about a second when all is well).
BUYER_TIMEOUT_SECONDS = 120
# Growth the run is expected to show, by design, with the reason printed beside it.
EXPECTED_GROWTH = {
    "redis_keys": "per-order keys live 1-30 days (app/keys.py): bounded by their TTLs",
    "redis_memory_mb": "the per-order keys above",
    "rss_redis_mb": "Redis holding the per-order keys above",
    "rss_emulator_mb": "the Stripe emulator keeps every object it created (a test double)",
}
# Fewer samples than this and the halves are noise: no verdict.
MIN_SAMPLES = 6
# A series grows when its last half's slope is at least this share of its first half's
# (no levelling off) and would add more than GROWTH_PER_HOUR of its level in an hour.
KEEPS_RISING = 0.5
GROWTH_PER_HOUR = 0.10


# --- the buyers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One buyer: when it finished, its latencies (seconds) and how it ended."""

    finished: float
    submit: float
    secret: float
    paid: float
    ok: bool
    error: str = ""


def _call(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: Any
) -> tuple[int, Any]:
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def _until(
    conn: http.client.HTTPConnection, submitted: dict[str, Any], done: Any, deadline: float
) -> dict[str, Any]:
    """Long-poll the checkout status until ``done(status)``; TimeoutError at ``deadline``."""
    token = {"X-Checkout-Token": submitted["checkoutToken"]}
    version = 0
    while time.monotonic() < deadline:
        query = urlencode({"wait": 20, "since": version})
        status, body = _call(conn, "GET", f"{submitted['statusUrl']}?{query}", token, None)
        if status in (429, 503):  # as a shop's client does: wait, then poll again
            time.sleep(1.0)
            continue
        if status != 200:
            raise RuntimeError(f"status {status}")
        if done(body):
            return dict(body)
        version = body["version"]
    raise TimeoutError("buyer deadline")


def buy(web_url: str, stripe: Any, sku: str) -> Outcome:
    """Submit (retrying 5xx with the same key), wait for the secret, pay, wait for PAID."""
    t0 = time.monotonic()
    deadline = t0 + BUYER_TIMEOUT_SECONDS
    submit = secret = 0.0
    web = urlsplit(web_url)
    conn = http.client.HTTPConnection(web.hostname or "127.0.0.1", web.port, timeout=60)
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"soak-{uuid.uuid4()}"}
    body = {"items": [{"sku": sku, "quantity": 1}], "email": "soak@example.com",
            "shippingAddress": BODY_ADDRESS}  # fmt: skip
    try:
        while True:
            status, submitted = _call(conn, "POST", "/api/checkout/payment-intent", headers, body)
            if status < 500 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        submit = time.monotonic() - t0
        if status != 202:
            return Outcome(time.monotonic(), submit, 0, 0, False, f"submit {status}")
        view = _until(conn, submitted, lambda s: s["payment"].get("clientSecret"), deadline)
        secret = time.monotonic() - t0
        stripe.v1.payment_intents.confirm(
            view["payment"]["intentId"],
            {"payment_method": "pm_card_visa", "return_url": f"{web_url}/order/return"},
        )
        final = _until(conn, submitted, lambda s: s["state"] != "PENDING", deadline)
        paid = time.monotonic() - t0
        ok = final["state"] == "PAID"
        return Outcome(time.monotonic(), submit, secret, paid, ok, "" if ok else final["state"])
    except Exception as exc:  # a buyer's failure is a figure, not the end of the soak
        return Outcome(time.monotonic(), submit, secret, 0, False, type(exc).__name__)
    finally:
        conn.close()


class Load:
    """``rate`` buyers a second, open loop (a slow stack does not slow the arrivals)."""

    def __init__(self, web_url: str, stripe: Any, sku: str, rate: float) -> None:
        self.web_url, self.stripe, self.sku, self.rate = web_url, stripe, sku, rate
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=int(min(400, max(8, rate * 20))))
        self.thread = threading.Thread(target=self._arrivals, name="arrivals", daemon=True)

    def _one(self) -> None:
        outcome = buy(self.web_url, self.stripe, self.sku)
        with self.lock:
            self.outcomes.append(outcome)

    def _arrivals(self) -> None:
        start, n = time.monotonic(), 0
        while not self.stop.is_set():
            self.pool.submit(self._one)
            n += 1
            self.stop.wait(max(0.0, start + n / self.rate - time.monotonic()))

    def take(self) -> list[Outcome]:
        """The outcomes finished since the last call."""
        with self.lock:
            taken, self.outcomes = self.outcomes, []
        return taken

    def finish(self) -> None:
        """Stop the arrivals, drop the arrivals still queued for a buyer thread (a stack
        slower than ``rate`` leaves a backlog: the first 30-minute run waited on ~15,000 of
        them), and wait for the buyers in flight."""
        self.stop.set()
        self.thread.join()
        self.pool.shutdown(wait=True, cancel_futures=True)


# --- the samples ------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, resident kB) for every process readable in /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in PROC.glob("[0-9]*"):
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0])
        table[int(entry.name)] = (int(fields.get("PPid", "0").strip()), rss)
    return table


def tree_rss_mb(root: int, table: dict[int, tuple[int, int]]) -> float:
    """Resident memory of ``root`` and all its descendants, MB."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0))[1]
        todo += children.get(pid, [])
    return round(total / 1024, 1)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (0 when empty), rounded to milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


def sample(
    minute: int,
    roles: dict[str, int],
    redis: redis_lib.Redis,
    pg_connections: Any,
    outcomes: list[Outcome],
) -> dict[str, Any]:
    """One minute's row: memory per role, Redis, PostgreSQL, the buyers' figures."""
    table = _proc_table()
    row: dict[str, Any] = {"minute": minute}
    for role, pid in roles.items():
        row[f"rss_{role}_mb"] = tree_rss_mb(pid, table)
    info = redis.info("memory")
    row["redis_memory_mb"] = round(int(info["used_memory"]) / 2**20, 2)
    row["redis_keys"] = int(redis.dbsize())
    row["pg_connections"] = pg_connections()
    good = [o for o in outcomes if o.ok]
    row["paid"] = len(good)
    row["failed"] = len(outcomes) - len(good)
    row["p99_submit_s"] = percentile([o.submit for o in good], 0.99)
    row["p99_secret_s"] = percentile([o.secret for o in good], 0.99)
    row["p99_paid_s"] = percentile([o.paid for o in good], 0.99)
    return row


# --- the verdict ------------------------------------------------------------------------


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` per sample (0 for fewer than two)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(values)
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den


def growth(values: list[float], samples_per_hour: float = 60) -> tuple[bool, float, float]:
    """(grows, first half's slope, last half's slope): a series grows when its last half
    is higher than its first, still rises at least :data:`KEEPS_RISING` as fast as the
    first half did, and that pace adds more than :data:`GROWTH_PER_HOUR` of its level in an
    hour. Levelling off (warm-up, pools filling) is not growth."""
    half = len(values) // 2
    first, last = slope(values[: half + 1]), slope(values[half:])
    before, after = statistics.fmean(values[:half] or [0.0]), statistics.fmean(values[half:])
    level = max(abs(after), 1e-9)
    rising = after > before and last > 0 and last >= KEEPS_RISING * max(first, 0.0)
    return rising and last * samples_per_hour > GROWTH_PER_HOUR * level, first, last


SERIES_SKIPPED = {"minute", "paid", "failed"}


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One line per series: does it grow, and is that expected."""
    lines = []
    for name in rows[0]:
        if name in SERIES_SKIPPED:
            continue
        values = [float(r[name]) for r in rows if r[name] is not None]
        if len(values) < MIN_SAMPLES:
            lines.append(f"{name}: no verdict ({len(values)} samples, {MIN_SAMPLES} needed)")
            continue
        grows, first, last = growth(values)
        verdict = "GROWS" if grows else "flat"
        if grows and name in EXPECTED_GROWTH:
            verdict = f"grows, expected: {EXPECTED_GROWTH[name]}"
        lines.append(f"{name}: {verdict} (slope/min first half {first:+.3g}, last {last:+.3g})")
    return lines


def per_order(rows: list[dict[str, Any]]) -> str:
    """Redis's keys and memory per paid order over the run (what a day of orders costs)."""
    paid = sum(int(r.get("paid") or 0) for r in rows[1:])
    if not paid or not {"redis_keys", "redis_memory_mb"} <= set(rows[0]):
        return "Redis per paid order: not measured"
    keys = (rows[-1]["redis_keys"] - rows[0]["redis_keys"]) / paid
    kib = (rows[-1]["redis_memory_mb"] - rows[0]["redis_memory_mb"]) * 1024 / paid
    return f"Redis per paid order: {keys:.1f} keys, {kib:.1f} KiB (kept 1-30 days by their TTLs)"


def unexpected(lines: list[str]) -> list[str]:
    """The verdict lines of series that grow without an expected reason."""
    return [line for line in lines if ": GROWS" in line]


def markdown(rows: list[dict[str, Any]]) -> str:
    """The samples as a markdown table (docs/reliability.md)."""
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(str(r[n]) for n in names) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Memory per role, Redis, PostgreSQL connections and p99s per minute, one PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    minutes = [r["minute"] for r in rows]
    panels = (
        ("resident memory (MB)", [n for n in rows[0] if n.startswith("rss_")]),
        ("Redis used memory (MB)", ["redis_memory_mb"]),
        ("Redis keys", ["redis_keys"]),
        ("PostgreSQL connections", ["pg_connections"]),
        ("p99 latency (s)", ["p99_submit_s", "p99_secret_s", "p99_paid_s"]),
        ("orders per minute", ["paid", "failed"]),
    )
    fig, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    for ax, (label, names) in zip(axes.flat, panels, strict=True):
        for name in names:
            values = [r.get(name) for r in rows]
            if any(v is not None for v in values):
                ax.plot(minutes, values, marker=".", label=name)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("minute")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- the run ----------------------------------------------------------------------------


def _private_redis(sup: Supervisor, folder: Path) -> str:
    """A ``redis-server`` of the run's own (its memory and keys are the run's alone)."""
    port = free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)]
    argv += ["--save", "", "--appendonly", "no", "--maxclients", "4000", "--loglevel", "warning"]
    sup.start("redis", argv, {})
    url = f"redis://127.0.0.1:{port}/0"
    sup.wait_until(lambda: _pingable(url), "the private Redis", 30)
    return url


def _pingable(url: str) -> bool:
    try:
        with redis_lib.Redis.from_url(url, socket_timeout=1) as client:
            return bool(client.ping())
    except redis_lib.RedisError:
        return False


def _pg_counter(database_url: str) -> Any:
    """A function counting the connections to the run's database (None on SQLite)."""
    if not urlparse(database_url).scheme.startswith("postgres"):
        return lambda: None
    import psycopg2

    name = urlparse(database_url).path.strip("/")

    def count() -> int | None:
        try:
            conn = psycopg2.connect(database_url)
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                        "pg_backend_pid()",
                        [name],
                    )
                    return int(cur.fetchone()[0])
            finally:
                conn.close()
        except psycopg2.Error:
            return None

    return count


def failure_reasons(outcomes: list[Outcome]) -> dict[str, int]:
    """How the failed buyers ended (``submit 429``, ``FAILED``, ``TimeoutError``), counted."""
    return dict(Counter(o.error or "?" for o in outcomes if not o.ok).most_common())


def log(line: str) -> None:
    """Progress on stderr."""
    print(f"[soak {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def run(minutes: int, rate: float, database_url: str | None) -> int:
    """The whole soak; returns the exit status (1 when something grew unexpectedly)."""
    if not shutil.which("redis-server"):
        raise SystemExit("soak: redis-server is not installed")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(tempfile.mkdtemp(prefix="checkout-soak-"))
    redis_sup = Supervisor(cwd=str(ROOT), out=(folder / "redis.log").open("w"))
    redis_url = _private_redis(redis_sup, folder)
    stack = bench.start(redis_url, database_url, folder / "stack.log")
    try:
        # Stripe's live-mode budget: the soak measures our processes, not test mode's 25/s.
        stack.env["STRIPE_REQUESTS_PER_SECOND"] = "100"
        stack.env.update(bench.POLL_CAPS)
        stack.start_web()
        stack.start_worker()
        clock = stack.sup.start("clock", [sys.executable, "-m", "tasks.clock"], stack.env)
        stack.wait_until(lambda: clock.said("clock started"), "the clock")
        assert stack.web is not None and stack.worker is not None
        roles = {
            "web": _pid(stack.web),
            "worker": _pid(stack.worker),
            "clock": _pid(clock),
            "emulator": _pid(_child(stack.sup, "stripe")),
            "redis": _pid(redis_sup.children[0]),
        }
        sku = f"SOAK-{uuid.uuid4().hex[:8].upper()}"
        stack.put_product(sku, int(rate * minutes * 60 * 1.5) + 100)
        stack.emulator("chaos", CHAOS)
        import stripe

        client = stripe.StripeClient(
            "sk_test_soak", base_addresses={"api": stack.plan.emulator_url}, max_network_retries=3
        )
        counter = _pg_counter(stack.database_url)
        log(f"{minutes} min at {rate}/s, chaos {CHAOS}, web {stack.web_url}, logs in {folder}")
        load = Load(stack.web_url, client, sku, rate)
        load.thread.start()
        rows: list[dict[str, Any]] = []
        started = time.monotonic()
        for minute in range(1, minutes + 1):
            time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
            taken = load.take()
            row = sample(minute, roles, stack.redis, counter, taken)
            rows.append(row)
            log(", ".join(f"{k} {v}" for k, v in row.items()))
            if row["failed"]:
                log(f"minute {minute} failures: {failure_reasons(taken)}")
        load.finish()
        stack.emulator("chaos", CALM)
    finally:
        stack.close()
        redis_sup.stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    return report(rows, OUT / f"soak-{stamp}", f"soak: {minutes} min at {rate} paid orders/s")


def report(rows: list[dict[str, Any]], base: Path, title: str) -> int:
    """CSV, PNG and markdown next to ``base``; the verdict on stdout; 1 on unexpected growth."""
    with base.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, base.with_suffix(".png"), title)
    lines = [*verdicts(rows), per_order(rows)]
    table = markdown(rows)
    base.with_suffix(".md").write_text(
        f"{title}\n\n{table}\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
    )
    print(table)
    print()
    print("\n".join(lines))
    bad = unexpected(lines)
    print(f"\nunexpected growth: {', '.join(b.split(':')[0] for b in bad) if bad else 'none'}")
    print(f"written: {base}.csv, {base}.png, {base}.md")
    return 1 if bad else 0


def _pid(child: Any) -> int:
    assert child.process is not None
    return int(child.process.pid)


def _child(sup: Supervisor, name: str) -> Any:
    return next(c for c in sup.children if c.name == name)


def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.soak [--minutes N] [--rate R]``."""
    parser = argparse.ArgumentParser(prog="python -m devstack.soak", description=__doc__)
    parser.add_argument("--minutes", type=int, default=30, help="length of the run (30)")
    parser.add_argument("--rate", type=float, default=20, help="paid orders a second (20)")
    args = parser.parse_args(argv)
    return run(args.minutes, args.rate, os.environ.get("DATABASE_URL"))


if __name__ == "__main__":
    raise SystemExit(main())
