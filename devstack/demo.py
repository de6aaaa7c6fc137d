"""``make demo``: the whole checkout stack in the foreground, on one machine.

Starts, with each process's log lines prefixed by its name: Redis (``REDIS_URL``, else
the embedded Redis-protocol server), the mail catcher, the Stripe emulator (unless real
Stripe keys are in the environment), then migrations and the demo catalog, then the web
server (gunicorn), a Dramatiq worker and the scheduler. Prints the page's URL, the test
cards and where caught mail is shown. Ctrl-C stops everything; a child that dies is
reported and the demo exits non-zero.

The steps below (``start_backing_services``, ``prepare_data``, ``start_web``,
``start_worker``) are also how the end-to-end tests start their stacks, in-process under
their own :class:`Supervisor`; the browser tests run this module as ``make demo`` does.

Ports are fixed by default (web: ``--web-port``, else ``PORT``, else 5000; the others
below), so a frontend build that baked the URLs in keeps working across restarts; a
taken port stops the demo with a message. ``--free-ports`` picks free ports instead.
``FRONTEND_ORIGINS`` (default: the CRA and Vite dev servers, :3000 and :5173) is passed
on with each ``localhost`` origin's ``127.0.0.1`` twin and the other way round.

``python -m devstack.demo [--free-ports] [--web-port N] [--var-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.services.webhooks import HANDLED_TYPES
from devstack.serving import free_port, wait_for_port
from devstack.supervisor import Child, ChildFailed, Supervisor

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PY = sys.executable

# The demo's fixed ports (``--free-ports``: free ones instead).
DEFAULT_PORTS = {"web": 5000, "emulator": 12111, "smtp": 1025, "mail": 1080, "redis": 6390}
# Browser origins allowed by CORS when FRONTEND_ORIGINS is unset: CRA's and Vite's dev servers.
DEFAULT_FRONTEND_ORIGINS = ("http://localhost:3000", "http://localhost:5173")
LOOPBACK_TWINS = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}

TEST_CARDS = (
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0027 6000 3184", "asks for 3-D Secure"),
    ("4000 0000 0000 0002", "is declined (generic)"),
    ("4000 0000 0000 9995", "is declined (insufficient funds)"),
    ("4000 0084 0000 1629", "asks for 3-D Secure, then is declined"),
)

# The Stripe.js release train that @stripe/stripe-js 10 (the client's and the example's)
# expects: the URL its loadStripe would load. The emulator serves its stand-in there too,
# announcing the train, so the package does not warn "Stripe.js@v3 was loaded…".
STRIPE_JS_RELEASE_TRAIN = "endive"
# The app's settings for command-line tools (`flask --env-file <var>/demo.env …`).
ENV_FILE = "demo.env"

# The event types the Stripe webhook endpoint enables (Stripe's enabled_events, as a shop
# configures it: `flask stripe-events`): the types a handler acts on. Stripe would send
# the others only for the web to acknowledge them (two of a paid order's three events).
STRIPE_EVENTS = ",".join(sorted(HANDLED_TYPES))

# What a Dramatiq worker process logs once it consumes messages.
WORKER_READY = "ready for action"


@dataclass
class Plan:
    """Ports, URLs and the environment the app processes share."""

    ports: dict[str, int]
    var_dir: Path
    redis_url: str | None
    database_url: str
    real_stripe: bool
    webhook_secret: str = field(default_factory=lambda: "whsec_demo_" + secrets.token_hex(16))
    frontend_origins: tuple[str, ...] = ()
    # The console's demo admin: a new password each run (printed in the banner).
    operator_email: str = "admin@demo.example"
    operator_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    @property
    def web_url(self) -> str:
        """The checkout page."""
        return f"http://{HOST}:{self.ports['web']}/"

    @property
    def emulator_url(self) -> str:
        """The Stripe emulator's API base."""
        return f"http://{HOST}:{self.ports['emulator']}"

    @property
    def mail_web_url(self) -> str:
        """Where caught mail is listed."""
        return f"http://{HOST}:{self.ports['mail']}/"

    @property
    def stripe_js_url(self) -> str | None:
        """The Stripe.js a shop's frontend loads offline (None: loadStripe's own, Stripe's)."""
        if self.real_stripe:
            return None
        return f"{self.emulator_url}/js.stripe.com/{STRIPE_JS_RELEASE_TRAIN}/stripe.js"

    def app_env(self) -> dict[str, str]:
        """The environment of web, worker, clock and the setup steps."""
        env = {
            "PORT": str(self.ports["web"]),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url or f"redis://{HOST}:{self.ports['redis']}/0",
            "MAIL_URL": f"smtp://{HOST}:{self.ports['smtp']}",
            "FRONTEND_ORIGINS": ",".join(self.frontend_origins),
            # The demo (and every test stack, started through it) may run on the
            # repository's public secrets; a live Stripe key still refuses them.
            "ALLOW_DEV_SECRETS": "1",
        }
        if not self.real_stripe:
            env.update(
                STRIPE_SECRET_KEY="sk_test_emulator",
                STRIPE_PUBLISHABLE_KEY="pk_test_emulator",
                STRIPE_WEBHOOK_SECRET=self.webhook_secret,
                STRIPE_API_BASE=self.emulator_url,
                STRIPE_JS_URL=f"{self.emulator_url}/js.stripe.com/v3/",
            )
        return env


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``HOST:port`` and it can be bound."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class PortTaken(Exception):
    """Raised when a fixed demo port is in use (the message says what to do)."""


def choose_ports(
    overrides: Mapping[str, int | None], *, free: bool, needed: tuple[str, ...] | None = None
) -> dict[str, int]:
    """Each service's port: the override, else a free one (``free``), else the fixed default.

    Fixed ports must be free: a taken one raises PortTaken rather than moving silently
    (a frontend build keeps the URLs it was built with). ``needed`` limits the check
    to the services this run starts (default: all).
    """
    ports: dict[str, int] = {}
    taken: list[str] = []
    for name, default in DEFAULT_PORTS.items():
        wanted = overrides.get(name)
        if free and not wanted:
            ports[name] = free_port()
            continue
        ports[name] = wanted or default
        if (needed is None or name in needed) and not port_is_free(ports[name]):
            taken.append(f"{name} on {ports[name]}")
    if taken:
        raise PortTaken(
            f"port taken: {', '.join(taken)}. Stop what listens there, choose the web port "
            "with PORT=<n> (or --web-port), or start with --free-ports."
        )
    return ports


def dev_origins(value: str | None) -> tuple[str, ...]:
    """FRONTEND_ORIGINS for the demo: each ``localhost`` origin with its ``127.0.0.1`` twin
    (and the other way round), so a dev build opened under either name passes CORS."""
    given = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
    origins: list[str] = []
    for origin in given or DEFAULT_FRONTEND_ORIGINS:
        parts = urlsplit(origin)
        twin = LOOPBACK_TWINS.get(parts.hostname or "")
        pair = [origin]
        if twin and parts.hostname:
            netloc = twin + (f":{parts.port}" if parts.port else "")
            pair.append(parts._replace(netloc=netloc).geturl())
        origins += [o for o in pair if o not in origins]
    return tuple(origins)


def make_plan(args: argparse.Namespace, env: Mapping[str, str]) -> Plan:
    """Decide ports, Redis, database and Stripe mode from the flags and environment."""
    var_dir = Path(args.var_dir).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = env.get("STRIPE_SECRET_KEY", "")
    real_stripe = bool(secret) and "emulator" not in secret
    web_port = args.web_port or (int(env["PORT"]) if env.get("PORT") else None)
    needed = tuple(
        name
        for name in DEFAULT_PORTS
        if not (name == "redis" and env.get("REDIS_URL"))
        and not (name == "emulator" and real_stripe)
    )
    ports = choose_ports({"web": web_port}, free=args.free_ports, needed=needed)
    return Plan(
        ports=ports,
        var_dir=var_dir,
        redis_url=env.get("REDIS_URL") or None,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'demo.db'}",
        # Real keys start sk_test_/sk_live_/rk_; the emulator's placeholder does not count.
        real_stripe=real_stripe,
        frontend_origins=dev_origins(env.get("FRONTEND_ORIGINS")),
    )


def http_ok(url: str) -> bool:
    """True when ``url`` answers 200 within 2 s (a server's readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _port_open(port: int) -> bool:
    try:
        wait_for_port(HOST, port, timeout=0)
    except TimeoutError:
        return False
    return True


def start_backing_services(sup: Supervisor, plan: Plan) -> None:
    """Redis (embedded unless REDIS_URL), the mail catcher and the Stripe emulator."""
    if plan.redis_url is None:
        sup.start(
            "redis", [PY, "-m", "devstack.redis_server", "--port", str(plan.ports["redis"])], {}
        )
        sup.wait_until(lambda: _port_open(plan.ports["redis"]), "the embedded Redis")
    mail_argv = [PY, "-m", "devstack.mailcatcher", "--smtp-port", str(plan.ports["smtp"])]
    sup.start("mail", [*mail_argv, "--http-port", str(plan.ports["mail"])], {})
    if not plan.real_stripe:
        webhook_url = f"http://{HOST}:{plan.ports['web']}/api/webhooks/stripe"
        argv = [PY, "-m", "devstack.stripe_emulator", "--port", str(plan.ports["emulator"])]
        argv += ["--webhook-url", webhook_url, "--webhook-secret", plan.webhook_secret]
        argv += ["--webhook-events", STRIPE_EVENTS]
        sup.start("stripe", argv, {})
        sup.wait_until(lambda: _port_open(plan.ports["emulator"]), "the Stripe emulator")
    sup.wait_until(lambda: _port_open(plan.ports["smtp"]), "the mail catcher")


def prepare_data(sup: Supervisor, env: Mapping[str, str], *, seed: bool = True) -> None:
    """Apply migrations, then (``seed``) seed the demo catalog and rebuild the stock counters.

    All steps are idempotent. The rebuild matters on a second run: the embedded Redis
    starts empty while the SQLite file keeps the catalog, and seeding only moves counters
    by stock changes (I9).
    """
    sup.run_step("migrate", [PY, "-m", "models.migrate"], env)
    if seed:
        flask = [PY, "-m", "flask", "--app", "wsgi"]
        sup.run_step("seed", [*flask, "seed-demo"], env)
        sup.run_step("rebuild", [*flask, "inventory", "rebuild"], env)


def create_demo_operator(sup: Supervisor, plan: Plan, env: Mapping[str, str]) -> None:
    """The console's demo admin, through the CLI an operator would use (the password on
    standard input); an account left by an earlier run gets this run's password."""
    flask = [PY, "-m", "flask", "--app", "wsgi", "operators", "create", plan.operator_email]
    argv = [*flask, "--role", "admin", "--password-stdin", "--update-existing"]
    sup.run_step("operator", argv, env, stdin=plan.operator_password + "\n")


# The Procfile's worker concurrency: Stripe calls are I/O, so threads, not processes,
# keep the budget's calls in flight (92/s x 0.3 s = 28 at once in live mode).
WORKER_THREADS = 16
# How a worker process runs its 16: OS threads (the Procfile's ``dramatiq``), or
# greenlets (``dramatiq-gevent``, which monkey-patches the standard library before
# Dramatiq and the app are imported). DEVSTACK_WORKER_MODEL chooses for every worker the
# devstack starts (the demo, the benches, the end-to-end and chaos tests).
WORKER_MODELS = ("threads", "gevent")
WORKER_MODEL_ENV = "DEVSTACK_WORKER_MODEL"


def worker_model(model: str | None = None) -> str:
    """``model``, else DEVSTACK_WORKER_MODEL's, else ``threads``; refused if unknown."""
    chosen = model or os.environ.get(WORKER_MODEL_ENV) or WORKER_MODELS[0]
    if chosen not in WORKER_MODELS:
        raise ValueError(f"unknown worker model {chosen!r}: one of {', '.join(WORKER_MODELS)}")
    return chosen


def worker_command(
    processes: int = 1, threads: int = WORKER_THREADS, model: str | None = None
) -> list[str]:
    """The Dramatiq worker's command line (the Procfile's ``worker``), spelled only here;
    ``model``: see :func:`worker_model`."""
    module = "tasks.worker"
    if worker_model(model) == "gevent":
        # Dramatiq's own gevent entry point, run by this interpreter (it patches first).
        launcher = [PY, str(Path(PY).parent / "dramatiq-gevent")]
    else:
        launcher = [PY, "-m", "dramatiq"]
    return [*launcher, module, "--processes", str(processes), "--threads", str(threads)]


def web_command(bind: str, *, workers: int = 2, worker_class: str = "gevent") -> list[str]:
    """Gunicorn as the Procfile's ``web`` runs it: gevent workers, so that a long-poll
    costs a greenlet, not a thread (I11); ``gthread`` for comparisons."""
    argv = [PY, "-m", "gunicorn", "wsgi:app", "--bind", bind, "--worker-class", worker_class]
    argv += ["--workers", str(workers), "--timeout", "60", "--no-control-socket"]
    if worker_class == "gevent":
        argv += ["--worker-connections", "2000"]
    else:
        argv += ["--threads", "8"]
    return argv


def start_web(
    sup: Supervisor,
    plan: Plan,
    env: Mapping[str, str],
    *,
    workers: int = 2,
    worker_class: str = "gevent",
    output: str | None = None,
) -> Child:
    """Gunicorn; returns once ``/readyz`` answers 200. ``output``: see Supervisor.start."""
    bind = f"{HOST}:{plan.ports['web']}"
    argv = web_command(bind, workers=workers, worker_class=worker_class)
    web = sup.start("web", argv, env, output=output)
    sup.wait_until(lambda: http_ok(f"{plan.web_url}readyz"), "the web server")
    return web


def start_worker(
    sup: Supervisor, env: Mapping[str, str], *, processes: int = 1, model: str | None = None
) -> Child:
    """A Dramatiq worker; returns once it logs that it is ready for messages."""
    worker = sup.start("worker", worker_command(processes, model=model), env)
    sup.wait_until(lambda: worker.said(WORKER_READY), "the worker")
    return worker


def start_app(sup: Supervisor, plan: Plan, env: Mapping[str, str]) -> None:
    """Web, worker and scheduler, each ready before the next starts."""
    start_web(sup, plan, env)
    start_worker(sup, env)
    sup.start("clock", [PY, "-m", "tasks.clock"], env)


def banner(plan: Plan) -> list[str]:
    """What a newcomer needs to know, printed once everything is up."""
    redis = plan.redis_url or f"embedded (in memory) on port {plan.ports['redis']}"
    lines = [
        "",
        f"Checkout page:  {plan.web_url}",
        f"Console:        {plan.web_url}admin/login",
        f"  sign in as:   {plan.operator_email}  password: {plan.operator_password}",
        f"CORS origins:   {', '.join(plan.frontend_origins)}",
        f"Caught mail:    {plan.mail_web_url}",
        f"Database:       {plan.database_url}",
        f"Redis:          {redis}",
    ]
    if plan.real_stripe:
        lines.append("Stripe:         real Stripe (keys from the environment)")
        hook = f"{plan.web_url}api/webhooks/stripe"
        lines.append(f"  forward webhooks: stripe listen --forward-to {hook} \\")
        lines.append(f"                      --events {STRIPE_EVENTS}")
    else:
        lines.append(f"Stripe:         emulator at {plan.emulator_url} (webhooks to the app)")
    lines += frontend_lines(plan)
    # (The demo operator's sign-in for /admin goes here, beside the other URLs.)
    lines.append("Test cards (any future expiry, any CVC, any postal code):")
    lines += [f"  {number}  {what}" for number, what in TEST_CARDS]
    lines += ["Press Ctrl-C to stop everything.", ""]
    return lines


def frontend_lines(plan: Plan) -> list[str]:
    """What a shop's frontend (and a webhook test) needs: key, Stripe.js, signing secret."""
    api = plan.web_url.rstrip("/")
    if plan.real_stripe:
        return [
            "For a shop's frontend:",
            f"  API URL:          {api}",
            "  Publishable key:  STRIPE_PUBLISHABLE_KEY (from the environment)",
            "  Stripe.js:        loadStripe's own, from js.stripe.com",
        ]
    return [
        "For a shop's frontend (test mode):",
        f"  API URL:          {api}",
        "  Publishable key:  pk_test_emulator",
        f"  Stripe.js URL:    {plan.stripe_js_url}",
        f"  Webhook secret:   {plan.webhook_secret}  (signs test events to /api/webhooks/stripe)",
        f"  Tool settings:    {plan.var_dir / ENV_FILE}  (flask --env-file …)",
    ]


def write_env_file(plan: Plan, env: Mapping[str, str]) -> Path:
    """The app's settings as ``KEY=value`` lines, for ``flask --env-file`` from anywhere."""
    plan.var_dir.mkdir(parents=True, exist_ok=True)
    path = plan.var_dir / ENV_FILE
    path.write_text("".join(f"{key}={value}\n" for key, value in sorted(env.items())))
    return path


def write_state(path: Path, plan: Plan, env: Mapping[str, str], sup: Supervisor) -> None:
    """Tell a test harness where everything runs (written atomically, once ready)."""
    state = {
        "pids": {c.name: c.process.pid for c in sup.children if c.process is not None},
        "webUrl": plan.web_url,
        "mailUrl": plan.mail_web_url,
        "emulatorUrl": None if plan.real_stripe else plan.emulator_url,
        "redisUrl": env["REDIS_URL"],
        "databaseUrl": plan.database_url,
        "webhookSecret": None if plan.real_stripe else plan.webhook_secret,
        "stripeJsUrl": plan.stripe_js_url,
        "operatorEmail": plan.operator_email,
        "operatorPassword": plan.operator_password,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def run(argv: list[str] | None = None) -> int:
    """Start the stack, wait for Ctrl-C or a dying child; return the exit code."""
    parser = argparse.ArgumentParser(description="Run the checkout demo stack.")
    parser.add_argument(
        "--free-ports", action="store_true", help="pick free ports instead of the fixed ones"
    )
    parser.add_argument("--web-port", type=int, default=None, help="default: PORT, else 5000")
    parser.add_argument("--var-dir", default=str(ROOT / "var"))
    parser.add_argument("--state-file", help="write the URLs as JSON here once ready (tests)")
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args, os.environ)
    except PortTaken as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    sup = Supervisor(cwd=str(ROOT))
    sup.install_signal_handlers()
    env = plan.app_env()
    write_env_file(plan, env)
    try:
        start_backing_services(sup, plan)
        prepare_data(sup, env)
        create_demo_operator(sup, plan, env)
        start_app(sup, plan, env)
        for line in banner(plan):
            sup.log("demo", line)
        if args.state_file:
            write_state(Path(args.state_file), plan, env, sup)
        sup.watch()
        sup.log("demo", "stopping…")
        return 0
    except KeyboardInterrupt:
        sup.log("demo", "stopping…")
        return 0
    except ChildFailed as exc:
        sup.log("demo", f"FAILED: {exc}; stopping the others")
        return 1
    finally:
        sup.stop_all()


def main() -> None:
    """Console entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
