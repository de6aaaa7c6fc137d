"""`make demo`: the plan it makes, the pieces it runs, and the whole stack buying
something over HTTP + the Stripe SDK, then failing loudly when a child dies."""

from __future__ import annotations

import argparse
import io
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import requests

from app.services.webhooks import HANDLED_TYPES
from devstack.demo import (
    DEFAULT_PORTS,
    ROOT,
    STRIPE_JS_RELEASE_TRAIN,
    PortTaken,
    banner,
    choose_ports,
    dev_origins,
    make_plan,
    prepare_data,
    run,
    start_backing_services,
    worker_command,
    write_env_file,
)
from devstack.mailcatcher import MailCatcher
from devstack.redis_server import EmbeddedRedis
from devstack.supervisor import ChildFailed, Supervisor
from tests.web.conftest import start_demo, stop_demo


def _args(tmp_path: Path, **overrides: Any) -> argparse.Namespace:
    values = {"var_dir": str(tmp_path / "var"), "web_port": None, "free_ports": True}
    return argparse.Namespace(**{**values, **overrides})


class TestPlan:
    def test_offline_defaults_embedded_redis_sqlite_and_the_emulator(self, tmp_path: Path):
        plan = make_plan(_args(tmp_path), {})
        env = plan.app_env()
        assert plan.redis_url is None
        assert env["REDIS_URL"] == f"redis://127.0.0.1:{plan.ports['redis']}/0"
        assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'var' / 'demo.db'}"
        assert env["STRIPE_API_BASE"] == plan.emulator_url
        assert env["STRIPE_JS_URL"] == f"{plan.emulator_url}/js.stripe.com/v3/"
        assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
        assert env["MAIL_URL"] == f"smtp://127.0.0.1:{plan.ports['smtp']}"

    def test_its_processes_may_start_on_the_dev_secrets(self, tmp_path: Path):
        """Web, worker and clock refuse missing secrets outside the demo and the tests."""
        from app.config import load_config

        env = make_plan(_args(tmp_path), {}).app_env()
        assert "JWT_SECRET" not in env
        assert load_config(env, dotenv=False, require_secrets=True).jwt_secret

    def test_uses_redis_url_and_database_url_when_set(self, tmp_path: Path):
        env = {"REDIS_URL": "redis://db:6379/3", "DATABASE_URL": "postgresql://x/y"}
        plan = make_plan(_args(tmp_path), env)
        assert plan.app_env()["REDIS_URL"] == "redis://db:6379/3"
        assert plan.app_env()["DATABASE_URL"] == "postgresql://x/y"

    def test_real_stripe_keys_replace_the_emulator(self, tmp_path: Path):
        plan = make_plan(_args(tmp_path), {"STRIPE_SECRET_KEY": "sk_test_51abc"})
        assert plan.real_stripe
        assert "STRIPE_API_BASE" not in plan.app_env()
        assert "STRIPE_SECRET_KEY" not in plan.app_env()  # the environment's own keys stay

    def test_free_ports_are_distinct(self):
        ports = choose_ports({}, free=True)
        assert set(ports) == set(DEFAULT_PORTS)
        assert len(set(ports.values())) == len(ports)

    def test_fixed_ports_by_default_and_a_taken_one_stops_the_demo(self, monkeypatch: Any):
        import devstack.demo as demo

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            monkeypatch.setitem(demo.DEFAULT_PORTS, "web", port)
            with pytest.raises(PortTaken, match=f"web on {port}.*--free-ports"):
                choose_ports({}, free=False)
            assert choose_ports({}, free=True)["web"] != port  # only when asked

    def test_fixed_ports_are_the_defaults_when_free(self, monkeypatch: Any):
        import devstack.demo as demo

        monkeypatch.setattr(demo, "port_is_free", lambda port: True)
        assert choose_ports({}, free=False) == DEFAULT_PORTS
        assert choose_ports({"web": 8123}, free=False)["web"] == 8123

    def test_port_sets_the_web_port_and_the_flag_wins(self, tmp_path: Path, monkeypatch: Any):
        import devstack.demo as demo

        monkeypatch.setattr(demo, "port_is_free", lambda port: True)
        plan = make_plan(_args(tmp_path, free_ports=False), {"PORT": "8123"})
        assert plan.ports["web"] == 8123 and plan.app_env()["PORT"] == "8123"
        assert plan.web_url == "http://127.0.0.1:8123/"
        plan = make_plan(_args(tmp_path, free_ports=False, web_port=8124), {"PORT": "8123"})
        assert plan.ports["web"] == 8124
        assert make_plan(_args(tmp_path, free_ports=False), {}).ports == DEFAULT_PORTS

    def test_a_taken_port_exits_with_the_message(
        self, tmp_path: Path, monkeypatch: Any, capsys: Any
    ):
        import devstack.demo as demo

        monkeypatch.setattr(demo, "port_is_free", lambda port: port != DEFAULT_PORTS["web"])
        assert run(["--var-dir", str(tmp_path / "var")]) == 2
        assert "port taken: web on 5000" in capsys.readouterr().err

    def test_frontend_origins_get_their_loopback_twins(self, tmp_path: Path):
        assert dev_origins("http://localhost:3000") == (
            "http://localhost:3000",
            "http://127.0.0.1:3000",
        )
        assert dev_origins("http://127.0.0.1:5173/, https://shop.example.com") == (
            "http://127.0.0.1:5173",
            "http://localhost:5173",
            "https://shop.example.com",
        )
        assert set(dev_origins(None)) == {
            "http://localhost:3000", "http://127.0.0.1:3000",
            "http://localhost:5173", "http://127.0.0.1:5173",
        }  # fmt: skip
        env = make_plan(_args(tmp_path), {"FRONTEND_ORIGINS": "http://localhost:3000"}).app_env()
        assert env["FRONTEND_ORIGINS"] == "http://localhost:3000,http://127.0.0.1:3000"

    def test_data_steps_migrate_seed_then_rebuild_the_counters(self):
        steps: list[tuple[str, list[str]]] = []

        class Recorder:
            def run_step(self, name: str, argv: list[str], env: dict[str, str]) -> None:
                steps.append((name, argv[2:]))

        prepare_data(Recorder(), {})  # type: ignore[arg-type]
        assert steps == [
            ("migrate", ["models.migrate"]),
            ("seed", ["flask", "--app", "wsgi", "seed-demo"]),
            # A second run: the embedded Redis is empty, the SQLite file is not (I9).
            ("rebuild", ["flask", "--app", "wsgi", "inventory", "rebuild"]),
        ]

    def test_the_emulators_endpoint_enables_the_types_a_handler_acts_on(self, tmp_path: Path):
        started: dict[str, list[str]] = {}

        class Recorder:
            def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
                started[name] = argv

            def wait_until(self, ready: Any, what: str) -> None:
                pass

        plan = make_plan(_args(tmp_path), {"REDIS_URL": "redis://127.0.0.1:1/0"})
        start_backing_services(Recorder(), plan)  # type: ignore[arg-type]
        argv = started["stripe"]
        enabled = argv[argv.index("--webhook-events") + 1].split(",")
        assert sorted(enabled) == sorted(HANDLED_TYPES)
        assert "payment_intent.created" not in enabled and "charge.succeeded" not in enabled

    def test_banner_has_the_url_test_cards_and_caught_mail(self, tmp_path: Path):
        plan = make_plan(_args(tmp_path), {})
        text = "\n".join(banner(plan))
        assert plan.web_url in text
        assert plan.mail_web_url in text
        assert "4242 4242 4242 4242" in text
        assert "4000 0027 6000 3184" in text

    def test_banner_tells_a_frontend_its_key_stripe_js_and_the_webhook_secret(self, tmp_path: Path):
        plan = make_plan(_args(tmp_path), {})
        text = "\n".join(banner(plan))
        assert "Publishable key:  pk_test_emulator" in text
        train = f"{plan.emulator_url}/js.stripe.com/{STRIPE_JS_RELEASE_TRAIN}/stripe.js"
        assert f"Stripe.js URL:    {train}" in text
        assert f"Webhook secret:   {plan.webhook_secret}" in text
        assert str(tmp_path / "var" / "demo.env") in text

    def test_banner_with_real_stripe_shows_no_secret(self, tmp_path: Path):
        env = {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_real"}
        plan = make_plan(_args(tmp_path), {**env, "STRIPE_PUBLISHABLE_KEY": "pk_test_x"})
        text = "\n".join(banner(plan))
        assert "whsec" not in text and "Publishable key:  STRIPE_PUBLISHABLE_KEY" in text

    @pytest.mark.parametrize("variable", ["ARGS", "DEMO_ARGS"])
    def test_make_demo_passes_its_arguments_on(self, variable: str):
        dry_run = subprocess.run(
            ["make", "-n", "demo", f"{variable}=--free-ports"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "-m devstack.demo --free-ports" in dry_run.stdout

    def test_writes_the_apps_settings_for_command_line_tools(self, tmp_path: Path):
        plan = make_plan(_args(tmp_path, free_ports=True), {})
        path = write_env_file(plan, plan.app_env())
        lines = dict(line.split("=", 1) for line in path.read_text().splitlines())
        assert lines["REDIS_URL"] == f"redis://127.0.0.1:{plan.ports['redis']}/0"
        assert lines["DATABASE_URL"] == plan.database_url


class TestWorkerCommand:
    def test_threads_by_default_as_the_procfile(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("DEVSTACK_WORKER_MODEL", raising=False)
        argv = worker_command(2)
        assert argv == [sys.executable, "-m", "dramatiq", "tasks.worker",
                        "--processes", "2", "--threads", "16"]  # fmt: skip

    def test_gevent_runs_dramatiqs_gevent_entry_point_of_this_interpreter(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DEVSTACK_WORKER_MODEL", "gevent")
        argv = worker_command(1)
        assert argv[0] == sys.executable
        assert Path(argv[1]).name == "dramatiq-gevent" and Path(argv[1]).exists()
        assert argv[2:] == ["tasks.worker", "--processes", "1", "--threads", "16"]

    def test_the_argument_wins_over_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DEVSTACK_WORKER_MODEL", "gevent")
        assert worker_command(1, model="threads")[1:3] == ["-m", "dramatiq"]

    def test_an_unknown_model_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DEVSTACK_WORKER_MODEL", "asyncio")
        with pytest.raises(ValueError, match="asyncio"):
            worker_command(1)


class TestEmbeddedRedis:
    def test_runs_lua_pubsub_and_survives_error_replies(self):
        with EmbeddedRedis() as server:
            client = redis_lib.Redis.from_url(server.url, decode_responses=True)
            script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            # First call: EVALSHA → NOSCRIPT → SCRIPT LOAD on the same connection.
            assert script(keys=["n"], args=[2]) == 2
            with pytest.raises(redis_lib.ResponseError):
                client.execute_command("NOSUCHCOMMAND")
            assert client.get("n") == "2"
            pubsub = client.pubsub()
            pubsub.subscribe("ch")
            assert pubsub.get_message(timeout=2)["type"] == "subscribe"
            client.publish("ch", "hello")
            message = pubsub.get_message(timeout=2)
            assert message is not None and message["data"] == "hello"
            pubsub.close()
            client.close()

    def test_runs_dramatiqs_redis_broker(self):
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        with EmbeddedRedis() as server:
            broker = RedisBroker(url=server.url)
            seen: list[int] = []

            @dramatiq.actor(broker=broker)
            def remember(x: int) -> None:
                seen.append(x)

            worker = dramatiq.Worker(broker, worker_timeout=100)
            worker.start()
            try:
                remember.send(7)
                broker.join(remember.queue_name)
                worker.join()
            finally:
                worker.stop()
                broker.close()
            assert seen == [7]


class TestMailCatcher:
    def test_catches_mail_and_lists_it(self):
        catcher = MailCatcher().start()
        try:
            message = EmailMessage()
            message["Subject"] = "Your receipt"
            message["From"] = "orders@example.com"
            message["To"] = "ada@example.com"
            message.set_content("Thanks for your order.")
            with smtplib.SMTP(catcher.host, catcher.smtp_port) as smtp:
                smtp.send_message(message)
            caught = requests.get(f"{catcher.web_url}messages.json", timeout=5).json()
            assert [(m["subject"], m["rcpt_tos"]) for m in caught] == [
                ("Your receipt", ["ada@example.com"])
            ]
            assert "Your receipt" in requests.get(catcher.web_url, timeout=5).text
        finally:
            catcher.stop()


class TestSupervisor:
    def test_prefixes_each_line_with_the_childs_name(self):
        out = io.StringIO()
        sup = Supervisor(out=out)
        sup.run_step("hello", [sys.executable, "-c", "print('one'); print('two')"], {})
        assert out.getvalue().splitlines() == ["hello    | one", "hello    | two"]

    def test_a_child_with_an_output_file_writes_there_unread(self, tmp_path: Any) -> None:
        out, drain = io.StringIO(), tmp_path / "web.log"
        sup = Supervisor(out=out)
        child = sup.start("web", [sys.executable, "-c", "print('a line')"], {}, output=str(drain))
        assert child.process is not None and child.process.wait(timeout=10) == 0
        sup.stop_all()
        assert drain.read_text() == "a line\n"
        assert out.getvalue() == "" and child.pump is None

    def test_a_step_reads_what_it_is_given_on_stdin(self):
        out = io.StringIO()
        sup = Supervisor(out=out)
        code = "import sys; raise SystemExit(0 if sys.stdin.read() == 'secret\\n' else 4)"
        sup.run_step("reader", [sys.executable, "-c", code], {}, stdin="secret\n")
        assert "secret" not in out.getvalue()

    def test_a_failing_step_raises(self):
        sup = Supervisor(out=io.StringIO())
        with pytest.raises(ChildFailed, match="exited with code 3"):
            sup.run_step("bad", [sys.executable, "-c", "raise SystemExit(3)"], {})

    def test_a_dying_child_is_reported(self):
        out = io.StringIO()
        sup = Supervisor(out=out)
        sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {})
        sup.start("crasher", [sys.executable, "-c", "raise SystemExit(5)"], {})
        try:
            with pytest.raises(ChildFailed, match="crasher exited unexpectedly with code 5"):
                sup.watch()
        finally:
            sup.stop_all()
        assert all(c.process is not None and c.process.poll() is not None for c in sup.children)

    def test_a_stop_request_stops_every_child(self):
        sup = Supervisor(out=io.StringIO())
        for name in ("a", "b"):
            sup.start(name, [sys.executable, "-c", "import time; time.sleep(60)"], {})
        sup.request_stop()
        sup.watch()  # returns at once: a stop was requested
        sup.stop_all()
        assert [c.process.returncode for c in sup.children if c.process] == [
            -signal.SIGTERM,
            -signal.SIGTERM,
        ]

    def test_stops_newest_first_each_after_the_one_started_after_it_has_exited(
        self, monkeypatch: Any
    ):
        sup = Supervisor(out=io.StringIO())
        redis = sup.start("redis", [sys.executable, "-c", "import time; time.sleep(60)"], {})
        web = sup.start("web", [sys.executable, "-c", "import time; time.sleep(60)"], {})
        sent: list[tuple[str, int, int, list[str]]] = []

        def recorder(name: str, real: Any) -> Any:
            def send(pid: int, sig: int) -> None:
                gone = [c.name for c in sup.children if c.process and c.process.poll() is not None]
                sent.append((name, pid, sig, gone))
                real(pid, sig)

            return send

        monkeypatch.setattr(os, "kill", recorder("kill", os.kill))
        monkeypatch.setattr(os, "killpg", recorder("killpg", os.killpg))
        sup.stop_all()
        assert web.process is not None and redis.process is not None
        # TERM to each leader only: gunicorn and dramatiq pass it to their own workers (a
        # second TERM straight to a dramatiq worker is its "Killing worker process").
        assert sent == [
            ("kill", web.process.pid, signal.SIGTERM, []),
            # The app has exited before its Redis goes: no "lost its subscription" warning.
            ("kill", redis.process.pid, signal.SIGTERM, ["web"]),
        ]


# --- the whole stack ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`python -m devstack.demo` on free ports, embedded Redis, SQLite under a temp dir."""
    tmp = tmp_path_factory.mktemp("demo")
    process, state = start_demo(tmp, {})
    state["process"] = process
    state["log"] = tmp / "demo.log"
    yield state
    if process.poll() is None:
        stop_demo(process)


def _status(web: str, order: dict[str, Any], wait: int = 0) -> dict[str, Any]:
    response = requests.get(
        f"{web}api/checkout/{order['orderId']}",
        params={"wait": wait},
        headers={"X-Checkout-Token": order["checkoutToken"]},
        timeout=wait + 10,
    )
    response.raise_for_status()
    return dict(response.json())


def _until(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.3)


@pytest.mark.e2e
class TestDemoStack:
    def test_buys_something_end_to_end(self, demo: dict[str, Any]):
        import stripe

        web = demo["webUrl"]
        page = requests.get(web, timeout=10)
        assert page.status_code == 200
        assert f"{demo['emulatorUrl']}/js.stripe.com/v3/" in page.text
        products = requests.get(f"{web}api/products", timeout=10).json()
        mug = next(p for p in products if p["sku"] == "MUG-LOGO")
        body = {
            "items": [{"sku": mug["sku"], "quantity": 2}],
            "email": "newcomer@example.com",
            "shippingAddress": {
                "name": "New Comer",
                "line1": "1 Main St",
                "city": "Springfield",
                "postalCode": "94107",
                "country": "US",
            },
        }
        submitted = requests.post(
            f"{web}api/checkout/payment-intent",
            json=body,
            headers={"Idempotency-Key": f"demo-{uuid.uuid4().hex}"},
            timeout=10,
        )
        assert submitted.status_code == 202, submitted.text
        order = submitted.json()
        status = _until(lambda: (s := _status(web, order, 5))["payment"]["clientSecret"] and s)
        sdk = stripe.StripeClient(
            "sk_test_emulator", base_addresses={"api": demo["emulatorUrl"]}, max_network_retries=0
        )
        intent = sdk.v1.payment_intents.confirm(
            status["payment"]["intentId"],
            {"payment_method": "pm_card_visa", "return_url": f"{web}order/{order['orderId']}"},
        )
        assert intent.status == "succeeded"
        assert intent.metadata["orderId"] == order["orderId"]
        paid = _until(lambda: (s := _status(web, order, 5))["state"] == "PAID" and s)
        # Stripe's events for the payment: only the types a handler acts on were delivered.
        log = requests.get(f"{demo['emulatorUrl']}/_emulator/deliveries", timeout=5).json()
        delivered = {d["type"] for d in log["data"]}
        assert "payment_intent.succeeded" in delivered and delivered <= HANDLED_TYPES
        assert paid["totals"]["subtotal"] == 2 * mug["price"]["amount"]
        # The receipt goes out through the outbox to the mail catcher.
        caught = _until(
            lambda: [
                m
                for m in requests.get(f"{demo['mailUrl']}messages.json", timeout=5).json()
                if "newcomer@example.com" in m["rcpt_tos"]
            ]
        )
        assert order["orderNumber"] in caught[0]["subject"] + caught[0]["text"]

    def test_a_child_that_dies_stops_the_demo_with_a_non_zero_exit(self, demo: dict[str, Any]):
        os.kill(demo["pids"]["mail"], signal.SIGKILL)
        process = demo["process"]
        assert process.wait(timeout=60) != 0
        log = Path(demo["log"]).read_text()
        assert "mail exited unexpectedly" in log
        for name, pid in demo["pids"].items():
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # every other child was stopped too
            assert name


EXAMPLE = ROOT / "examples" / "react-shop"


def _readme_import_command(var_dir: Path) -> list[str]:
    """The catalog import command of examples/react-shop/README.md, for this demo's var dir."""
    readme = (EXAMPLE / "README.md").read_text()
    (line,) = [ln for ln in readme.splitlines() if ln.startswith("../../.venv/bin/flask ")]
    argv = line.split()
    argv[0] = str(Path(sys.executable).parent / "flask")  # the suite's own venv
    return [arg.replace("../../var/", f"{var_dir}/") for arg in argv]


@pytest.mark.e2e
def test_a_clean_ctrl_c_and_the_examples_import_command(tmp_path: Path):
    """The log of a demo a buyer long-polled, stopped with Ctrl-C: no reconnect warning, no
    killed worker, no Python repr; meanwhile the example's README import command works."""
    process, state = start_demo(tmp_path, {})
    try:
        web = state["webUrl"]
        body = {
            "items": [{"sku": "MUG-LOGO", "quantity": 1}],
            "email": "quiet@example.com",
            "shippingAddress": {
                "name": "Q", "line1": "1 Main St", "city": "X", "postalCode": "94107",
                "country": "US",
            },
        }  # fmt: skip
        submitted = requests.post(
            f"{web}api/checkout/payment-intent",
            json=body,
            headers={"Idempotency-Key": f"demo-{uuid.uuid4().hex}"},
            timeout=10,
        )
        assert submitted.status_code == 202, submitted.text
        _status(web, submitted.json(), wait=1)  # the web's change feed is subscribed now

        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        command = _readme_import_command(tmp_path / "var")
        done = subprocess.run(command, cwd=EXAMPLE, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        products = requests.get(f"{web}api/products", timeout=10).json()
        mug = next(p for p in products if p["sku"] == "MUG-LOGO")
        assert mug["imageUrl"] == "/images/mug.svg"  # the example's own picture now
    finally:
        code = stop_demo(process)
    log = (tmp_path / "demo.log").read_text()
    assert code == 0, log[-3000:]
    assert "rebuilt 6 SKUs (" in log
    for noise in ("lost its subscription", "Killing worker process", "RebuildReport("):
        assert noise not in log, log[-3000:]


class TestDemoOperator:
    def test_the_demo_admin_is_made_with_the_cli_and_printed(self, tmp_path: Path):
        from devstack.demo import create_demo_operator

        calls: list[tuple[list[str], str | None]] = []

        class Recorder:
            def run_step(self, name: str, argv: list[str], env: dict[str, str], *, stdin=None):
                calls.append((argv[2:], stdin))

        plan = make_plan(_args(tmp_path), {})
        create_demo_operator(Recorder(), plan, {})  # type: ignore[arg-type]
        ((argv, stdin),) = calls
        assert argv[:6] == ["flask", "--app", "wsgi", "operators", "create", plan.operator_email]
        assert "--password-stdin" in argv and plan.operator_password not in argv
        assert stdin == plan.operator_password + "\n"
        text = "\n".join(banner(plan))
        assert f"{plan.web_url}admin/login" in text
        assert plan.operator_email in text and plan.operator_password in text
