"""``make a11y``: Lighthouse's accessibility score for the checkout page and the
operator's console (Dashboard, Attention, Orders, an Order), each with a budget.

Starts the demo stack on free ports, runs the locally installed Lighthouse
(``node_modules/.bin/lighthouse``, Chromium from ``CHROME_PATH``, default
/usr/bin/chromium) against each page, prints the scores and every failed audit, and
exits non-zero when a page is below the budget (0.95). The console's pages are audited
signed in as the demo's operator (its session cookie passed to Lighthouse), on an order
submitted through the API.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
BUDGET = 0.95
CHROME_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync"
)


def start_demo(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """The demo on free ports; returns the process and its state file's content."""
    state_file = tmp / "state.json"
    # Offline and self-contained: the emulator instead of any Stripe keys, and the demo's
    # embedded Redis and SQLite instead of shared servers this run would leave data in.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STRIPE_") and k not in ("REDIS_URL", "DATABASE_URL")
    }
    argv = [sys.executable, "-m", "devstack.demo", "--free-ports", "--var-dir", str(tmp)]
    with (tmp / "demo.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [*argv, "--state-file", str(state_file)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 120
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit("the demo did not start:\n" + (tmp / "demo.log").read_text()[-3000:])
        time.sleep(0.2)
    return process, json.loads(state_file.read_text())


def run_lighthouse(url: str, report: Path, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Lighthouse's JSON report for ``url`` (accessibility category only)."""
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    argv = [
        str(LIGHTHOUSE),
        url,
        "--only-categories=accessibility",
        "--output=json",
        f"--output-path={report}",
        f"--chrome-flags={CHROME_FLAGS}",
        "--quiet",
    ]
    if headers:
        argv.append(f"--extra-headers={json.dumps(headers)}")
    subprocess.run(argv, check=True, env=env)
    return dict(json.loads(report.read_text()))


def console_session(state: dict[str, Any]) -> requests.Session:
    """Signed in at ``/admin/login`` as the demo's operator (the form, CSRF token and all)."""
    web = state["webUrl"]
    session = requests.Session()
    form = session.get(f"{web}admin/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if token is None:
        sys.exit("the console's sign-in page has no CSRF token")
    answer = session.post(
        f"{web}admin/login",
        data={
            "email": state["operatorEmail"],
            "password": state["operatorPassword"],
            "csrf_token": token.group(1),
        },
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 303:
        sys.exit(f"the demo operator could not sign in: {answer.status_code}")
    return session


def submitted_order(state: dict[str, Any], session: requests.Session) -> str:
    """An order submitted through the API, once its page exists (the worker wrote it)."""
    web = state["webUrl"]
    body = {
        "items": [{"sku": "MUG-LOGO", "quantity": 1}],
        "email": "a11y@example.com",
        "shippingAddress": {
            "name": "Ada Lovelace",
            "line1": "1 Analytical Way",
            "city": "London",
            "postalCode": "94107",
            "country": "US",
        },
    }
    answer = requests.post(
        f"{web}api/checkout/payment-intent",
        json=body,
        headers={"Idempotency-Key": f"a11y-{uuid.uuid4()}"},
        timeout=10,
    )
    answer.raise_for_status()
    order_id = str(answer.json()["orderId"])
    deadline = time.monotonic() + 60
    while session.get(f"{web}admin/orders/{order_id}", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            sys.exit(f"order {order_id} never reached the console")
        time.sleep(0.5)
    return order_id


def pages_to_audit(state: dict[str, Any]) -> list[tuple[str, str, dict[str, str] | None]]:
    """``(name, url, headers)`` of every audited page."""
    web = state["webUrl"]
    session = console_session(state)
    order_id = submitted_order(state, session)
    cookie = {"Cookie": f"console_session={session.cookies.get('console_session')}"}
    return [
        ("checkout page", web, None),
        ("console: Dashboard", f"{web}admin", cookie),
        ("console: Attention", f"{web}admin/attention", cookie),
        ("console: Orders", f"{web}admin/orders", cookie),
        ("console: Order", f"{web}admin/orders/{order_id}", cookie),
    ]


def failed_audits(result: dict[str, Any]) -> list[str]:
    """The accessibility audits that did not pass, with their titles."""
    refs = result["categories"]["accessibility"]["auditRefs"]
    audits = result["audits"]
    return [
        f"{ref['id']}: {audits[ref['id']]['title']}"
        for ref in refs
        if ref.get("weight", 0) > 0 and audits[ref["id"]].get("score") not in (None, 1)
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 when the score meets the budget."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=BUDGET)
    parser.add_argument("--report", default=str(ROOT / "var" / "lighthouse-a11y.json"))
    args = parser.parse_args(argv)
    if not LIGHTHOUSE.exists():
        sys.exit("node_modules/.bin/lighthouse is missing: run `npm ci` (make a11y does)")
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, dict[str, Any], Path]] = []
    with tempfile.TemporaryDirectory() as tmp:
        process, state = start_demo(Path(tmp))
        try:
            for index, (name, url, headers) in enumerate(pages_to_audit(state)):
                # The first report keeps the name it always had; the others get a suffix.
                path = report if index == 0 else report.with_name(f"{report.stem}-{index}.json")
                results.append((name, run_lighthouse(url, path, headers), path))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    passed = True
    for name, result, path in results:
        score = float(result["categories"]["accessibility"]["score"])
        print(f"Lighthouse accessibility score, {name}: {score:.2f} (budget {args.budget})")
        for line in failed_audits(result):
            print(f"  failed: {line}")
        print(f"  full report: {path}")
        passed = passed and score >= args.budget
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
