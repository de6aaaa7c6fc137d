"""``make bench`` (``python -m devstack.perf``): every figure of docs/performance.md.

HTTP figures come from wrk against gunicorn as the Procfile runs it, each as a ratio to
a baseline measured in the same run (a bare Flask app for /healthz, our /healthz for the
submit). Then the submit path's Redis round trips, the cost of 1,000 parked long-polls,
two flash sales against the emulator's rate limits, the Lua scripts' holds per second and
the emulator's create+confirm pairs per second. Beside them, where the CPU went: per
request by role of the stack for /healthz and the submit, per intent for each flash sale
(``perf.cpu``), and the price of one Redis round trip on this machine. Last, the cost of
one paid order (``perf.cost``: CPU by role, statements, transactions, round trips, Stripe
calls, webhooks and long-poll answers per order, on a stack of its own). Progress goes to
stderr, the tables to stdout, the figures to var/perf/results.json and cost.json and a
profile to var/perf/submit-profile.collapsed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from devstack import demo
from devstack.perf import cost, cpu, flash_sale, lua, profile, roundtrips, stack, wrk
from devstack.perf.polls import RawPoll, answered_any, drain
from devstack.stripe_emulator import bench as emulator_bench

ROOT = Path(__file__).resolve().parents[2]
SUBMIT_BODY = json.dumps(
    {"items": [{"sku": "BENCH", "quantity": 1}], "email": "bench@example.com",
     "shippingAddress": flash_sale.BODY_ADDRESS}, separators=(",", ":"),
)  # fmt: skip


def say(text: str) -> None:
    """Progress, on stderr."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


def http_figures(bench: stack.BenchStack, seconds: int, out: Path) -> dict[str, Any]:
    """Bare vs our /healthz, submit vs our /healthz, and a profile of the submit."""
    bench.put_product("BENCH", 10_000_000)
    ours, bare = f"{bench.web_url}/healthz", f"{bench.bare_url}/healthz"
    submit = f"{bench.web_url}/api/checkout/payment-intent"
    for url in (ours, bare):
        wrk.run(url, seconds=2)  # warm up: imports, connections
    wrk.run(submit, seconds=2, post_json=SUBMIT_BODY, run_id="warm")
    say(f"wrk: bare /healthz, our /healthz ({ROUNDS} rounds, interleaved)")
    runs: dict[str, list[wrk.Result]] = {"bare": [], "ours": []}
    cpu_of: dict[str, dict[str, float]] = {}  # CPU per role and request, µs
    for n in range(ROUNDS):
        runs["bare"].append(accounted(lambda: wrk.run(bare, seconds=seconds), cpu_of, "bare"))
        runs["ours"].append(accounted(lambda: wrk.run(ours, seconds=seconds), cpu_of, "healthz"))
        say(f"  round {n + 1}: {runs['ours'][-1].rps:,.0f} / {runs['bare'][-1].rps:,.0f} req/s")
    say("wrk: POST /api/checkout/payment-intent")
    run_id = uuid.uuid4().hex[:6]
    submits = accounted(
        lambda: wrk.run(submit, seconds=seconds, post_json=SUBMIT_BODY, run_id=run_id),
        cpu_of,
        "submit",
    )
    say("py-spy: one web worker during a submit load")
    profile_rows: list[Any] = []
    hot: dict[str, float] = {}
    workers = profile.workers_of(bench.web.process.pid) if bench.web and bench.web.process else []
    collapsed = out / "submit-profile.collapsed"
    if workers:
        import threading

        load = threading.Thread(
            target=wrk.run, args=(submit,), kwargs={"seconds": seconds, "post_json": SUBMIT_BODY,
                                                    "run_id": "profile"},
        )  # fmt: skip
        load.start()
        if profile.record(workers[0], max(2, seconds - 2), collapsed):
            profile_rows = profile.summarize(collapsed)
            hot = profile.hot_paths(collapsed, HOT_PATHS)
        load.join()
    return {
        "bare": _mean(runs["bare"]),
        "ours": _mean(runs["ours"]),
        # Each round's ratio, both measured within seconds of each other; the median
        # leaves out a round that a neighbour on the shared cores slowed down.
        "healthz_ratio": statistics.median(
            o.rps / b.rps for o, b in zip(runs["ours"], runs["bare"], strict=True)
        ),
        "submit": submits,
        "profile": profile_rows,
        "hot": hot,
        "cpu": cpu_of,
    }


def accounted(
    load: Callable[[], wrk.Result], into: dict[str, dict[str, float]], name: str
) -> wrk.Result:
    """Run ``load``; record the CPU each role of the stack spent per request (µs), wrk's
    own included, under ``into[name]`` (the last run of that name is kept)."""
    before = cpu.snapshot()
    result = load()
    spent = cpu.used(before, cpu.snapshot())
    spent["load generator"] = result.cpu_seconds  # wrk, not this process
    into[name] = {role: 1e6 * seconds / result.requests for role, seconds in spent.items()}
    return result


# Interleaved wrk rounds of bare and our /healthz: this box's throughput drifts by 10-15 %
# from one run to the next, so one pair decides nothing.
ROUNDS = 4

HOT_PATHS = [
    "admit (app/services/admission.py)",
    "_send (app/gateways/jobs.py)",
    "load (app/schemas/common.py)",
    "json_object (app/api/requests.py)",
    "_finish (app/api/observability.py)",
    "_start (app/api/observability.py)",
    "contains_card_data (app/schemas/card_data.py)",
    "full_dispatch_request (flask/app.py)",
    "handle_one_request (gunicorn",
]


def _mean(results: list[wrk.Result]) -> wrk.Result:
    return wrk.Result(
        rps=statistics.mean(r.rps for r in results),
        p50_ms=statistics.mean(r.p50_ms for r in results),
        p99_ms=statistics.mean(r.p99_ms for r in results),
        requests=sum(r.requests for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        errors=sum(r.errors for r in results),
    )


def long_poll_figures(bench: stack.BenchStack, seconds: int) -> dict[str, Any]:
    """/healthz p99 and submit throughput with 1,000 parked long-polls, against without."""
    from app.services import checkout_status

    bench.start_web(stack.POLL_CAPS)
    ours = f"{bench.web_url}/healthz"
    submit = f"{bench.web_url}/api/checkout/payment-intent"
    say("wrk: /healthz and submit without polls")
    quiet = wrk.run(ours, seconds=seconds)
    quiet_submit = wrk.run(submit, seconds=seconds, post_json=SUBMIT_BODY, run_id="q")
    orders = []
    for _ in range(20):
        reply = bench.session.post(
            submit, data=SUBMIT_BODY, timeout=30,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"poll-{uuid.uuid4()}"},
        )  # fmt: skip
        orders.append(reply.json())
    url = urlparse(bench.web_url)
    say("opening 1,000 long-polls")
    polls = [
        RawPoll(url.hostname or "127.0.0.1", url.port or 80,
                f"{o['statusUrl']}?wait=25&since=1", o["checkoutToken"])
        for o in orders for _ in range(50)
    ]  # fmt: skip
    try:
        bench.wait_until(
            lambda: int(bench.redis.get("{shop}:waiters:ip:127.0.0.1") or 0) >= len(polls),
            "1,000 parked long-polls",
        )
        say("wrk: /healthz and submit with 1,000 polls parked")
        busy = wrk.run(ours, seconds=seconds)
        busy_submit = wrk.run(submit, seconds=seconds, post_json=SUBMIT_BODY, run_id="b")
        early = answered_any(polls)
        for order in orders:
            checkout_status.publish(bench.redis, order["orderId"], paymentStatus="processing")
        drain(polls, until=time.monotonic() + 60)
    finally:
        for poll in polls:
            poll.close()
    return {
        "quiet": quiet,
        "busy": busy,
        "quiet_submit": quiet_submit,
        "busy_submit": busy_submit,
        "answered": sum(1 for p in polls if p.status == 200),
        "answered_before_change": early,
    }


def sale_figures(bench: stack.BenchStack, quick: bool) -> dict[str, flash_sale.SaleResult]:
    """The flash sales: 300 buyers at test mode's 25/s, 1,000 at live mode's 100/s."""
    bench.drain_queues()
    bench.start_worker()
    results = {}
    buyers = 100 if quick else 300
    say(f"flash sale: {buyers} buyers, emulator at 25 requests/s, 300 ms latency")
    results["test"] = flash_sale.run(bench, buyers=buyers, limit=25)
    say(flash_sale.describe(results["test"]))
    # Live mode's default budget (100 less the margin) on a worker restarted with it.
    bench.start_worker({"STRIPE_REQUESTS_PER_SECOND": "92"})
    buyers = 300 if quick else 1000
    say(f"flash sale: {buyers} buyers, emulator at 100 requests/s, 300 ms latency")
    results["live"] = flash_sale.run(bench, buyers=buyers, limit=100)
    say(flash_sale.describe(results["live"]))
    return results


def emulator_pairs(seconds: float) -> float:
    """The emulator's create+confirm pairs per second from two raw keep-alive clients."""
    with emulator_bench.emulator(in_process=False) as running:
        pairs, elapsed = emulator_bench.run_raw(running.url, seconds, 2)
    return pairs / elapsed


def table(figures: dict[str, Any]) -> str:
    """The one table of docs/performance.md."""
    http, polls, sales = figures["http"], figures["polls"], figures["sales"]
    bare, ours, submit = http["bare"], http["ours"], http["submit"]
    ping = figures["ping"]
    lines = [
        "HTTP (wrk, 50 connections; gunicorn gevent x2 as the Procfile runs it)",
        f"{'':<44}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'errors':>8}",
        bare.row("bare Flask /healthz"),
        ours.row("our /healthz"),
        submit.row("POST /api/checkout/payment-intent"),
        polls["busy"].row("our /healthz, 1,000 long-polls parked"),
        polls["busy_submit"].row("submit, 1,000 long-polls parked"),
        "",
        f"{'figure':<62}{'measured':>14}{'goal':>10}",
        _line(
            "our /healthz / bare Flask /healthz (median of rounds)",
            http["healthz_ratio"],
            ">= 0.8x",
        ),
        _line("submit / our /healthz", submit.rps / ours.rps, ">= 0.5x"),
        _line("submit p99 / our /healthz p99", submit.p99_ms / ours.p99_ms, "<= 2x"),
        f"{'Redis round trips per admitted submit':<62}{figures['round_trips']:>14}{'<= 2':>10}",
        f"{'  ... one round trip here (PING): wall / client CPU / Redis CPU, us':<62}"
        f"{ping.wall_us:>6.0f} /{ping.client_cpu_us:>4.0f} /{ping.redis_cpu_us:>3.0f}",
    ]
    lines += sales_table(sales)
    lines += [
        "",
        _line(
            "/healthz p99 with 1,000 long-polls / without",
            polls["busy"].p99_ms / polls["quiet"].p99_ms,
            "<= 2x",
        ),
        _line(
            "submit req/s with 1,000 long-polls / without",
            polls["busy_submit"].rps / polls["quiet_submit"].rps,
            ">= 0.8x",
        ),
        f"{'long-polls answered at the change (of 1,000)':<62}{polls['answered']:>14}{'1000':>10}",
        "",
        f"{'hold.lua, 2-line cart, one client, sequential (holds/s)':<62}"
        f"{figures['lua']['hold.lua']:>14,.0f}",
        f"{'admit.lua, 2-line cart, one client, sequential (submits/s)':<62}"
        f"{figures['lua']['admit.lua']:>14,.0f}",
        f"{'emulator create+confirm pairs/s (2 raw clients)':<62}{figures['pairs']:>14,.0f}",
    ]
    lines += cpu_per_request(http["cpu"])
    if http["profile"]:
        lines += ["", "Where a web worker's busy time goes under the submit load (py-spy):",
                  f"{'function':<78}{'self %':>8}{'incl %':>8}"]  # fmt: skip
        lines += [f"{name[:78]:<78}{own:>8.1f}{incl:>8.1f}" for name, own, incl in http["profile"]]
        lines += [f"  under {name}: {share:.1f} %" for name, share in http["hot"].items()]
    return "\n".join(lines)


def sales_table(sales: dict[str, flash_sale.SaleResult]) -> list[str]:
    """The flash sales' lines of the table: rate, errors, latency, where the CPU went."""
    lines: list[str] = []
    for key, label in (("test", "25/s"), ("live", "100/s")):
        sale = sales[key]
        lines += [
            _line(
                f"flash sale {sale.buyers} @ {label}: intents/s / limit (steady)",
                sale.steady_rate / sale.limit,
                ">= 0.9x",
            ),
            _line(
                "  ... first submit to last client secret", sale.intents_per_second / sale.limit, ""
            ),
            f"{'  ... buyer-visible errors':<62}{sale.errors:>14}{'0':>10}",
            f"{'  ... Stripe 429s after the first second':<62}"
            f"{sale.rate_limited_after_first_second:>14}{'0':>10}",
            f"{'  ... submit -> client secret p50 / p99 (s)':<62}"
            f"{statistics.median(sale.latencies or [0]):>7.1f} /{sale.percentile(0.99):>5.1f}"
            f"{'6 / 13' if key == 'test' else '':>10}",
        ]
    for key, label in (("test", "25/s"), ("live", "100/s")):
        sale = sales[key]
        lines += ["", f"Where the CPU went during the flash sale {sale.buyers} @ {label} "
                  f"({sale.seconds:.0f} s, {cpu.cores()} cores):"]  # fmt: skip
        lines += cpu.describe(sale.cpu, sale.seconds, sale.created, "intent")
    return lines


def cpu_per_request(spent: dict[str, dict[str, float]]) -> list[str]:
    """The table of CPU per request by role: the bare app, our /healthz, the submit."""
    if not spent:
        return []
    runs = [spent.get(name, {}) for name in ("bare", "healthz", "submit")]
    lines = ["", "CPU per request by role, µs (wrk's own as the load generator; the bare app's",
             "gunicorn is a web process too):",
             f"{'role':<20}{'bare /healthz':>15}{'our /healthz':>15}{'submit':>12}"]  # fmt: skip
    roles = sorted(set().union(*runs), key=lambda r: -runs[2].get(r, 0))
    for role in roles:
        bare, ours, submit = (run.get(role, 0) for run in runs)
        lines.append(f"{role:<20}{bare:>15,.0f}{ours:>15,.0f}{submit:>12,.0f}")
    return lines


def _line(label: str, ratio: float, goal: str) -> str:
    return f"{label:<62}{ratio:>13.2f}x{goal:>10}"


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="each wrk run")
    parser.add_argument("--quick", action="store_true", help="smaller flash sales")
    parser.add_argument(
        "--only",
        choices=["http", "cost", "sales"],
        help="just the wrk figures and the profile, the cost of one paid order, or the flash"
        " sales (25/s and live mode's 100/s)",
    )
    parser.add_argument("--orders", type=int, default=200, help="the cost run's paid orders")
    parser.add_argument("--buyers", type=int, default=20, help="the cost run's buyer threads")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on a worker and a web process (cost)"
    )
    parser.add_argument(
        "--app-root",
        type=Path,
        help="the cost run's stack from this checkout (before/after in the same conditions)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="cost runs of this checkout's stack and that one's, alternately (--rounds each)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="--compare's runs of each")
    parser.add_argument(
        "--worker",
        choices=demo.WORKER_MODELS,
        help="the worker's threads: OS threads or gevent's greenlets (default:"
        f" {demo.WORKER_MODEL_ENV}, else threads); with --compare, this checkout's only",
    )
    args = parser.parse_args(argv)
    out = ROOT / "var" / "perf"
    out.mkdir(parents=True, exist_ok=True)
    if args.compare is not None:
        cost.compare(args.compare, args.rounds, args.orders, args.buyers, out, args.worker)
        return 0
    if args.only == "cost":
        cost.main(
            args.orders,
            args.buyers,
            out,
            profiled=args.profile,
            app_root=args.app_root,
            worker_model=args.worker,
        )
        return 0
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    say(f"starting the stack (log: {out / 'stack.log'})")
    bench = stack.start(
        redis_url, os.environ.get("DATABASE_URL"), out / "stack.log", worker_model=args.worker
    )
    try:
        if args.only == "sales":
            bench.start_web(stack.POLL_CAPS)  # as after the long-polls' figures: one buyer IP
            print("\n".join(sales_table(sale_figures(bench, args.quick))))
            return 0
        figures: dict[str, Any] = {"http": http_figures(bench, args.seconds, out)}
        if args.only == "http":
            http = figures["http"]
            for name in ("bare", "ours", "submit"):
                print(http[name].row(name))
            print(f"our /healthz / bare (median of rounds): {http['healthz_ratio']:.2f}x")
            print("\n".join(cpu_per_request(http["cpu"])))
            for row in http["profile"]:
                print(f"{row[0][:78]:<78}{row[1]:>8.1f}{row[2]:>8.1f}")
            return 0
        say("counting the submit's Redis round trips")
        # The app it builds logs its requests to stdout: the table's place.
        with contextlib.redirect_stdout(sys.stderr):
            figures["round_trips"] = roundtrips.submit_round_trips(
                bench.env["REDIS_URL"], bench.database_url
            )
        say("pricing one Redis round trip on this machine (PING)")
        figures["ping"] = roundtrips.ping_cost(bench.env["REDIS_URL"])
        figures["polls"] = long_poll_figures(bench, args.seconds)
        figures["sales"] = sale_figures(bench, args.quick)
    finally:
        bench.close()
    say("Lua scripts on the real Redis")
    own, admin = stack.claim_redis_db(redis_url)
    try:
        figures["lua"] = lua.holds_per_second(own)
    finally:
        admin.delete(f"checkout-tests:db:{urlparse(own).path.strip('/')}")
    say("emulator create+confirm pairs")
    figures["pairs"] = emulator_pairs(5.0)
    report = table(figures)
    print(report)
    (out / "table.txt").write_text(report + "\n")
    (out / "results.json").write_text(json.dumps(figures, default=_plain, indent=2))
    print()
    say("the cost of one paid order (a stack, a Redis server and a database of its own)")
    cost.main(args.orders, args.buyers, out, profiled=args.profile, worker_model=args.worker)
    return 0


def _plain(value: Any) -> Any:
    return value.__dict__ if hasattr(value, "__dict__") else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
