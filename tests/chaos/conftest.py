"""Fixtures of the chaos suite: one stack per run (private Redis and PostgreSQL, the
emulator, 2 web, 2 workers, the clock), progress on the terminal, the figures kept.

``CHAOS_SCALE=long`` (``make chaos``) runs the issue's sizes; the default is the short
version that ``make test`` runs. Every scenario is bounded by its own deadlines.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.checks import Report
from tests.chaos.harness import ROOT, ChaosStack, Progress, missing_binaries, start_chaos_stack

LONG = os.environ.get("CHAOS_SCALE", "short") == "long"
HOLD_TTL = 45 if LONG else 30
# Production's wait for Stripe's search in the long run; the short run (in `make test`)
# waits 10 s: the emulator's search has no lag, and 90 s per lost intent is minutes.
SEARCH_DELAY = 90 if LONG else 10
REPORTS: list[Report] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_binaries()
    if reason:
        for item in items:
            if "chaos" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"chaos suite: {reason}"))


@pytest.fixture(scope="session")
def progress(request: pytest.FixtureRequest) -> Progress:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(line)

    return Progress(write)


@pytest.fixture(scope="session")
def chaos_stack(
    tmp_path_factory: pytest.TempPathFactory, progress: Progress
) -> Iterator[ChaosStack]:
    progress(f"starting the stack (scale: {'long' if LONG else 'short'})")
    stack = start_chaos_stack(
        tmp_path_factory.mktemp("chaos"), progress, hold_ttl=HOLD_TTL, search_delay=SEARCH_DELAY
    )
    try:
        yield stack
    finally:
        progress("stopping the stack")
        stack.stop()
        _keep(stack)


def _keep(stack: ChaosStack) -> None:
    """The run's figures as JSON under var/chaos/ (docs/reliability.md quotes them)."""
    if not REPORTS:
        return
    out = ROOT / "var" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    run: dict[str, Any] = {
        "scale": "long" if LONG else "short",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.node()} · {os.cpu_count()} cores · {platform.platform()}",
        "restarts": stack.restarts,
        "scenarios": [
            {"scenario": r.scenario, "figures": r.figures, "details": r.details} for r in REPORTS
        ],
    }
    path = Path(out / f"{run['scale']}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.write_text(json.dumps(run, indent=2, default=str))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.section("chaos figures")
        for report in REPORTS:
            terminalreporter.write_line(report.table())
            terminalreporter.write_line("")
