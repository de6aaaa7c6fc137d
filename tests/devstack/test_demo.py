"""`make demo`: the plan it makes, the pieces it runs, and the whole stack buying
something over HTTP + the Stripe SDK, then failing loudly when a child dies."""

from __future__ import annotations

import argparse
import io
import os
import signal
import smtplib
import socket
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

from devstack.demo import (
    DEFAULT_PORTS,
    PortTaken,
    banner,
    choose_ports,
    dev_origins,
    make_plan,
    prepare_data,
    run,
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

    def test_banner_has_the_url_test_cards_and_caught_mail(self, tmp_path: Path):
        plan = make_plan(_args(tmp_path), {})
        text = "\n".join(banner(plan))
        assert plan.web_url in text
        assert plan.mail_web_url in text
        assert "4242 4242 4242 4242" in text
        assert "4000 0027 6000 3184" in text


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
