"""Schemathesis against ``/openapi.json`` on a running stack (issue 10, item 5).

Every documented operation, over a thousand generated requests (schemathesis' coverage
phase: boundary and invalid values of every parameter and body field; then its fuzzing
phase), from a fixed seed. Passes when no answer is a 5xx and every answer conforms to
the document: its status code is documented, its body matches the documented schema,
its content type and headers are the documented ones.

The CLI runs in a subprocess (its own hooks, reports and time bound): admin routes get
the admin JWT (``-H Authorization``); half of the order reads get the fixture order and
its checkout token, half of the lookups its intent and secret, half of the carts the
fixture SKUs (``schemathesis_hooks.py``);
rate limits are off in the stack (``RATELIMIT_ENABLED=false``) so a 429 hides nothing;
webhook deliveries are unsigned, so 400 ``signature_invalid`` is their expected answer.
The totals are printed (``-s`` shows them) and kept in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Stack
from tests.e2e.schemathesis_hooks import FIXTURE_SKUS

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
)
SEED = 20261130
MAX_EXAMPLES = 12  # per operation and fuzzing phase; the coverage phase adds its own
MIN_REQUESTS = 1_000
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


@pytest.mark.timeout(420)
def test_every_operation_conforms_to_the_document(
    launch_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = launch_stack(web_workers=2)
    for index in range(FIXTURE_SKUS):  # the SKUs schemathesis_hooks.py puts in carts
        stack.put_product(f"ST-{index}", stock=100_000, price=1400 + index)
    submitted = stack.submit([("ST-0", 1)]).json()
    status = stack.wait_for(submitted, lambda s: bool(s["payment"]["clientSecret"]))
    # From a file with --url: loaded from its URL, schemathesis leaves /openapi.json out.
    document = requests.get(f"{stack.web}/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    location = tmp_path / "openapi.json"
    location.write_text(json.dumps(document))

    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "ST_ORDER_ID": submitted["orderId"],
        "ST_TOKEN": submitted["checkoutToken"],
        "ST_INTENT_ID": status["payment"]["intentId"],
        "ST_CLIENT_SECRET": status["payment"]["clientSecret"],
    }
    report, har = tmp_path / "report.json", tmp_path / "requests.har"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(location), "--url", stack.web,
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        # One worker: with threads, CPython 3.11.7's ast.parse (hypothesis describing
        # its filters) can fail with "AST constructor recursion depth mismatch".
        "--workers", "1",
        "--request-timeout", "10",
        "--header", f"Authorization: Bearer {stack.admin_token}",
        "--report", "json,har", "--report-json-path", str(report),
        "--report-har-path", str(har),
        "--no-color", "--output-truncate", "false",
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=360, check=False
    )
    summary = json.loads(report.read_text())
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(int(entry["response"]["status"]) for entry in entries)
    failures = {f"{f['code']} {f['title']}": (f["count"], f["operations"])
                for f in summary["failures"]}  # fmt: skip
    print(totals(summary, len(entries), statuses, failures))

    assert summary["operations"]["tested"] == operations, summary["operations"]
    assert len(entries) >= MIN_REQUESTS
    assert not [code for code in statuses if code >= 500], statuses
    assert not failures, run.stdout[-20_000:]
    assert not summary["errors"], run.stdout[-20_000:]
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    # I7: every admitted submit became an order its worker could write (its intent exists).
    # (A confirm's 202 also names a statusUrl; only a submit's carries the checkout token.)
    admitted = {
        body["orderId"]: body
        for body in map(answer, entries)
        if "statusUrl" in body and body.get("checkoutToken")
    }
    assert admitted
    for body in admitted.values():
        stack.wait_for(body, lambda s: s["payment"]["status"] != "creating", timeout=90)


def answer(entry: dict[str, Any]) -> dict[str, Any]:
    """A HAR entry's JSON object answer (``{}`` for anything else)."""
    try:
        body = json.loads(entry["response"]["content"].get("text") or "null")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def totals(
    summary: dict[str, Any],
    requests_sent: int,
    statuses: Counter[int],
    failures: dict[str, Any],
) -> str:
    """The figures docs/reliability.md keeps."""
    lines = [
        f"schemathesis {summary['schemathesis_version']}, seed {summary['seed']}, "
        f"{summary['running_time']:.0f} s",
        f"operations tested: {summary['operations']['tested']}/{summary['operations']['total']}",
        f"test cases: {summary['test_cases']['generated']}, requests: {requests_sent}",
        "statuses: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())),
        f"checks: {', '.join(CHECKS)}",
        "failures: "
        + (", ".join(f"{name}: {n} ({', '.join(ops)})" for name, (n, ops) in failures.items())
           or "none"),
        f"errors: {summary['errors'] or 'none'}",
    ]  # fmt: skip
    return "\n".join(lines)
