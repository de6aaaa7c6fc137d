"""``python -m devstack.stripe_emulator --port PORT [--webhook-url URL --webhook-secret S
[--webhook-events TYPE,TYPE…]]``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from .chaos import ChaosConfig
from .server import EmulatorServer
from .webhooks import ALL_EVENTS, enabled_events


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: server, webhook and chaos flags."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.stripe_emulator",
        description="Stateful Stripe API emulator (test mode) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=12111, help="port to bind (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    hooks = parser.add_argument_group("webhooks")
    hooks.add_argument("--webhook-url", help="endpoint that receives events")
    hooks.add_argument("--webhook-secret", help="signing secret (whsec_...)")
    hooks.add_argument(
        "--webhook-max-attempts", type=int, default=6, help="attempts per event (default 6)"
    )
    hooks.add_argument(
        "--webhook-first-retry-ms",
        type=int,
        default=1000,
        help="delay before the first retry; later ones double (default 1000)",
    )
    hooks.add_argument("--webhook-timeout-ms", type=int, default=5000, help="per-attempt timeout")
    hooks.add_argument(
        "--webhook-events",
        default=ALL_EVENTS,
        help="comma-separated event types the endpoint enables (default *: all)",
    )
    parser.add_argument(
        "--async-delay-ms",
        type=int,
        default=1000,
        help="delay before disputes open and failing refunds fail (default 1000)",
    )
    parser.add_argument(
        "--authorization-window-s",
        type=float,
        default=7 * 86400,
        help="how long a manual-capture card authorisation lasts (default 7 days)",
    )
    parser.add_argument(
        "--bank-debit-settle-ms",
        type=int,
        default=None,
        help="bank debits settle on their own after this delay (default: only via /_emulator)",
    )
    chaos = parser.add_argument_group("chaos (all off by default)")
    chaos.add_argument(
        "--rate-limit", type=float, default=0, help="requests per second; 25 is Stripe test mode"
    )
    chaos.add_argument(
        "--failure-rate", type=float, default=0, help="share of requests answered 500"
    )
    chaos.add_argument("--latency-ms", type=int, default=0, help="added to every API request")
    chaos.add_argument(
        "--duplicate-rate", type=float, default=0, help="share of events delivered twice"
    )
    chaos.add_argument(
        "--reorder-rate", type=float, default=0, help="share of events delivered late"
    )
    chaos.add_argument(
        "--delivery-delay-ms", type=int, default=0, help="delay before each first delivery"
    )
    chaos.add_argument("--chaos-seed", type=int, default=None, help="seed for repeatable chaos")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.webhook_secret and not args.webhook_secret.startswith("whsec_"):
        parser.error("--webhook-secret must start with whsec_")
    try:
        args.webhook_events = enabled_events(t.strip() for t in args.webhook_events.split(","))
    except ValueError as exc:
        parser.error(f"--webhook-events: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Start the emulator in the foreground until Ctrl-C."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s stripe-emulator %(levelname)s %(message)s"
    )
    server = EmulatorServer(
        args.port,
        host=args.host,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_max_attempts=args.webhook_max_attempts,
        webhook_first_retry=args.webhook_first_retry_ms / 1000,
        webhook_timeout=args.webhook_timeout_ms / 1000,
        webhook_events=args.webhook_events,
        async_delay=args.async_delay_ms / 1000,
        authorization_window=args.authorization_window_s,
        bank_debit_settle=(
            None if args.bank_debit_settle_ms is None else args.bank_debit_settle_ms / 1000
        ),
        chaos=ChaosConfig(
            rate_limit_per_second=args.rate_limit,
            failure_rate=args.failure_rate,
            latency_ms=args.latency_ms,
            duplicate_rate=args.duplicate_rate,
            reorder_rate=args.reorder_rate,
            delivery_delay_ms=args.delivery_delay_ms,
            seed=args.chaos_seed,
        ),
        access_log=args.access_log,
    )
    print(f"Stripe emulator listening on {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
