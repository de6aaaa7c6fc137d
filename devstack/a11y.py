"""``make a11y``: Lighthouse's accessibility score for the checkout page, with a budget.

Starts the demo stack on free ports, runs the locally installed Lighthouse
(``node_modules/.bin/lighthouse``, Chromium from ``CHROME_PATH``, default
/usr/bin/chromium) against the checkout page, prints the score and every failed audit,
and exits non-zero below the budget (0.95).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run_lighthouse(url: str, report: Path) -> dict[str, Any]:
    """Lighthouse's JSON report for ``url`` (accessibility category only)."""
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            "--only-categories=accessibility",
            "--output=json",
            f"--output-path={report}",
            f"--chrome-flags={CHROME_FLAGS}",
            "--quiet",
        ],
        check=True,
        env=env,
    )
    return dict(json.loads(report.read_text()))


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
    with tempfile.TemporaryDirectory() as tmp:
        process, state = start_demo(Path(tmp))
        try:
            result = run_lighthouse(state["webUrl"], report)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    score = float(result["categories"]["accessibility"]["score"])
    print(f"Lighthouse accessibility score, checkout page: {score:.2f} (budget {args.budget})")
    for line in failed_audits(result):
        print(f"  failed: {line}")
    print(f"Full report: {report}")
    return 0 if score >= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
