"""Fixtures for the Stripe emulator suite.

One emulator serves the whole session on a free port (``stripe_emulator``); every test
that uses it starts from ``POST /_emulator/reset``. Every JSON body the emulator sends
is recorded and, after each test, validated against Stripe's official OpenAPI schemas
(``<repo>/../shared/stripe-openapi/stripe-api-subset.json``) by object type.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from flask import Response

from devstack.stripe_emulator import EmulatorServer
from tests.conftest import IN_CI
from tests.oas import oas30

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT.parent / "shared" / "stripe-openapi" / "stripe-api-subset.json"
FIXTURES_PATH = SPEC_PATH.with_name("fixtures3-2026.json")
# Objects that must carry every key of Stripe's current (2026) example object too.
FIXTURE_CHECKED = (
    "payment_intent",
    "charge",
    "payment_method",
    "confirmation_token",
    "customer",
    "customer_session",
    "checkout.session",
    "item",
    "tax.calculation",
    "tax.calculation_line_item",
    "tax.transaction",
    "tax.transaction_line_item",
)
WEBHOOK_SECRET = "whsec_test_emulator_suite"
SECRET_KEY = "sk_test_emulator_suite"
PUBLISHABLE_KEY = "pk_test_emulator_suite"


# --- contract validation ---------------------------------------------------------------


def missing_fixture_keys(fixture: Any, obj: Any, path: str = "") -> list[str]:
    """Keys (dotted paths) of Stripe's example object that ``obj`` lacks, or holds with
    another JSON type. Nulls on either side match anything (a field Stripe fills only in
    some states); ``metadata`` is free-form; where a ``type`` discriminator differs (a card
    preview against the fixture's bank account) the other type's sub-object is skipped."""
    if not isinstance(fixture, dict) or not isinstance(obj, dict):
        return []
    skip = {"metadata"}
    if isinstance(fixture.get("type"), str) and fixture.get("type") != obj.get("type"):
        skip.add(fixture["type"])
    out = []
    for key, expected in fixture.items():
        where = f"{path}.{key}" if path else key
        if key in skip:
            continue
        if key not in obj:
            out.append(where)
            continue
        actual = obj[key]
        if expected is None or actual is None:
            continue
        if _json_type(expected) != _json_type(actual):
            out.append(f"{where} ({_json_type(actual)}, Stripe sends {_json_type(expected)})")
            continue
        out += missing_fixture_keys(expected, actual, where)
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


class Contract:
    """Validates Stripe objects against the official schemas (and, for the objects in
    FIXTURE_CHECKED, against the key set of Stripe's 2026 example objects), counting what
    it checked."""

    def __init__(self, spec_path: Path) -> None:
        import jsonschema

        self.fixtures: dict[str, Any] = (
            json.loads(FIXTURES_PATH.read_text())["resources"] if FIXTURES_PATH.exists() else {}
        )
        spec = json.loads(spec_path.read_text())
        self.components = oas30(spec["components"])
        self.names = set(self.components["schemas"])
        self._validators: dict[str, Any] = {}
        self._jsonschema = jsonschema
        self.checked: dict[str, int] = {}

    def validator(self, name: str) -> Any:
        """A Draft 4 validator for one component schema."""
        if name not in self._validators:
            schema = {"$ref": f"#/components/schemas/{name}", "components": self.components}
            self._validators[name] = self._jsonschema.Draft4Validator(schema)
        return self._validators[name]

    def validate_body(self, body: Any, where: str) -> None:
        """Validate one response body: an error, a list, a search result or an object."""
        if not isinstance(body, dict):
            return
        if "error" in body and len(body) == 1:
            self._check("error", body, where)
        elif body.get("object") in ("list", "search_result"):
            for item in body.get("data", []):
                if isinstance(item, dict) and "object" in item:
                    self.validate_object(item, where)
        elif "object" in body:
            self.validate_object(body, where)

    def validate_object(self, obj: dict[str, Any], where: str) -> None:
        """Validate an object by its ``object`` field, and an event's payload too."""
        name = obj["object"]
        if name == "customer" and obj.get("deleted"):
            name = "deleted_customer"  # Stripe's schema of a DELETE's answer
        self.check_fixture_keys(obj, where)
        if name not in self.names:
            return
        self._check(name, obj, where)
        if name == "event":
            inner = obj["data"]["object"]
            self.check_fixture_keys(inner, f"{where} (event {obj['type']})")
            if inner.get("object") in self.names:
                self._check(inner["object"], inner, f"{where} (event {obj['type']})")

    def check_fixture_keys(self, obj: dict[str, Any], where: str) -> None:
        """Every key of Stripe's current example of this object is there (see above)."""
        name = obj.get("object")
        if name not in FIXTURE_CHECKED or name not in self.fixtures or obj.get("deleted"):
            return
        missing = missing_fixture_keys(self.fixtures[name], obj)
        if name == "confirmation_token" and obj["payment_method_preview"]["type"] == "card":
            # The fixture previews a bank account; a card preview is a PaymentMethod's card.
            missing += missing_fixture_keys(
                self.fixtures["payment_method"]["card"],
                obj["payment_method_preview"]["card"],
                "payment_method_preview.card",
            )
        if missing:
            raise AssertionError(f"{where}: {name} lacks Stripe's 2026 keys {missing}")
        key = f"fixture:{name}"
        self.checked[key] = self.checked.get(key, 0) + 1

    def _check(self, name: str, obj: Any, where: str) -> None:
        errors = sorted(self.validator(name).iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            path = "/".join(str(p) for p in first.absolute_path)
            raise AssertionError(f"{where}: {name} fails the schema at '{path}': {first.message}")
        self.checked[name] = self.checked.get(name, 0) + 1


@pytest.fixture(scope="session")
def contract() -> Contract | None:
    """The schema validator, or None when ../shared is not beside the repository
    (in CI a missing contract fails the run instead: validation never switches off)."""
    if not SPEC_PATH.exists():
        if IN_CI:
            pytest.fail(f"Stripe's OpenAPI subset is missing at {SPEC_PATH} (CI=true)")
        return None
    return Contract(SPEC_PATH)


@dataclass
class Recorder:
    """JSON bodies the emulator sent, waiting for validation."""

    bodies: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, where: str, body: Any) -> None:
        with self.lock:
            self.bodies.append((where, body))

    def drain(self) -> list[tuple[str, Any]]:
        with self.lock:
            out, self.bodies = self.bodies, []
        return out


# --- the emulator ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def _emulator_session() -> Iterator[tuple[EmulatorServer, Recorder]]:
    recorder = Recorder()
    server = EmulatorServer(port=0, webhook_first_retry=0.1, async_delay=0.2, webhook_timeout=2.0)

    @server.app.after_request
    def record(response: Response) -> Response:
        from flask import request

        if response.mimetype == "application/json" and not response.direct_passthrough:
            recorder.add(f"{request.method} {request.path}", json.loads(response.get_data()))
        return response

    with server:
        yield server, recorder


@pytest.fixture
def stripe_emulator(
    _emulator_session: tuple[EmulatorServer, Recorder], contract: Contract | None
) -> Iterator[EmulatorServer]:
    """The session's emulator, reset for this test; its responses are schema-checked after."""
    server, recorder = _emulator_session
    requests.post(f"{server.url}/_emulator/reset", timeout=5)
    endpoint = {"url": None, "enabledEvents": ["*"]}  # as a test may have left it
    requests.post(f"{server.url}/_emulator/webhook", json=endpoint, timeout=5)
    recorder.drain()
    yield server
    # Background work (webhooks, refunds failing) may still send; stop it before checking.
    requests.post(f"{server.url}/_emulator/webhook", json={"url": None}, timeout=5)
    requests.post(f"{server.url}/_emulator/reset", timeout=5)
    bodies = recorder.drain()
    if contract is not None:
        for where, body in bodies:
            contract.validate_body(body, where)


@pytest.fixture
def client(stripe_emulator: EmulatorServer) -> stripe.StripeClient:
    """The official SDK pointed at the emulator, without automatic retries."""
    return stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": stripe_emulator.url}, max_network_retries=0
    )


@pytest.fixture
def control(stripe_emulator: EmulatorServer) -> Control:
    """A small client for the ``/_emulator`` control endpoints."""
    return Control(stripe_emulator.url)


class Control:
    """Calls the control endpoints with JSON."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.post(f"{self.base}/_emulator/{path}", json=body or {}, timeout=10)
        assert response.status_code < 300, response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = requests.get(f"{self.base}/_emulator/{path}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        rows: list[dict[str, Any]] = self.get(f"deliveries?{query}")["data"]
        return rows


# --- a webhook receiver ----------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    body: bytes
    signature: str | None
    status: int


class WebhookReceiver:
    """A local HTTP endpoint that records deliveries and answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_first = 0  # answer 500 to this many requests first
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = 500 if receiver.fail_first > 0 else 200
                    receiver.fail_first = max(0, receiver.fail_first - 1)
                    receiver.received.append(
                        Received(body, self.headers.get("Stripe-Signature"), status)
                    )
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        """Every received body that verified, parsed (verification uses the SDK)."""
        with self.lock:
            received = list(self.received)
        out = []
        for r in received:
            event = stripe.Webhook.construct_event(r.body.decode(), r.signature, WEBHOOK_SECRET)
            out.append(event.to_dict())
        return out

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Block until ``predicate(events)`` holds (events verified on each check)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.events()):
                return
            with self.lock:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out; received {[e['type'] for e in self.events()]}"
                    )
                self.arrived.wait(min(remaining, 0.2))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver(
    stripe_emulator: EmulatorServer, contract: Contract | None
) -> Iterator[WebhookReceiver]:
    """A receiver registered as the emulator's endpoint (retries compressed to 100 ms)."""
    receiver = WebhookReceiver()
    requests.post(
        f"{stripe_emulator.url}/_emulator/webhook",
        json={"url": receiver.url, "secret": WEBHOOK_SECRET, "firstRetryMs": 100, "maxAttempts": 5},
        timeout=5,
    )
    yield receiver
    requests.post(f"{stripe_emulator.url}/_emulator/webhook", json={"url": None}, timeout=5)
    receiver.close()
    if contract is not None:
        for event in receiver.events():
            contract.validate_object(event, "webhook delivery")
