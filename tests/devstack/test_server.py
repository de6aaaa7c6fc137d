"""Starting the emulator: in-process (context manager) and as ``python -m``."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import stripe

from devstack.stripe_emulator import EmulatorServer

REPO_ROOT = Path(__file__).resolve().parents[2]


class TestInProcess:
    def test_context_manager_binds_a_free_local_port(self) -> None:
        with EmulatorServer(port=0) as server:
            assert server.url.startswith("http://127.0.0.1:") and server.port > 0
            assert requests.get(f"{server.url}/_emulator/health", timeout=5).json() == {"ok": True}
            endpoint = requests.get(f"{server.url}/_emulator/webhook", timeout=5).json()
            assert endpoint["enabledEvents"] == ["*"]  # Stripe's default: every type
        try:
            requests.get(f"{server.url}/_emulator/health", timeout=1)
        except requests.ConnectionError:
            pass
        else:
            raise AssertionError("the server still answers after stop()")

    def test_enabled_events_are_a_list_of_types(self) -> None:
        with pytest.raises(ValueError, match="list"):
            EmulatorServer(port=0, webhook_events="payment_intent.succeeded")

    def test_concurrent_requests_are_consistent(self) -> None:
        with EmulatorServer(port=0) as server:
            client = stripe.StripeClient(
                "sk_test_c", base_addresses={"api": server.url}, max_network_retries=0
            )
            pi = client.v1.payment_intents.create(
                params={
                    "amount": 100_000,
                    "currency": "usd",
                    "payment_method": "pm_card_visa",
                    "confirm": True,
                }
            )
            errors: list[Exception] = []

            def refund() -> None:
                try:
                    for _ in range(5):
                        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000})
                except Exception as exc:  # collected and checked below
                    errors.append(exc)

            threads = [threading.Thread(target=refund) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            charge = client.v1.charges.retrieve(pi.latest_charge)
            assert charge.amount_refunded == 20 * 1000
            assert len(client.v1.refunds.list(params={"limit": 100}).data) == 20


class TestCommandLine:
    def test_module_starts_and_serves(self) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.stripe_emulator",
                "--port",
                "0",
                "--webhook-url",
                "http://127.0.0.1:9/x",
                "--webhook-secret",
                "whsec_cli",
                "--rate-limit",
                "25",
                "--webhook-events",
                "payment_intent.succeeded, charge.refunded",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.rsplit(" ", 1)[1].strip()
            assert (
                requests.get(f"{url}/_emulator/chaos", timeout=5).json()["rateLimitPerSecond"] == 25
            )
            endpoint = requests.get(f"{url}/_emulator/webhook", timeout=5).json()
            assert endpoint["url"] == "http://127.0.0.1:9/x"
            assert endpoint["enabledEvents"] == ["payment_intent.succeeded", "charge.refunded"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    def test_bad_secret_is_refused(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "devstack.stripe_emulator", "--webhook-secret", "nope"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2 and "whsec_" in result.stderr

    def test_an_empty_event_type_is_refused(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "devstack.stripe_emulator", "--webhook-events", "a,,b"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2 and "--webhook-events" in result.stderr
