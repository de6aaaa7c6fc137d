"""In CI (CI=true) a missing prerequisite fails the run instead of skipping tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import pytest
from tests.conftest import skip_or_fail

def test_needs_something():
    skip_or_fail("the thing is missing")
"""


def run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe_ci.py"
    probe.write_text(PROBE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_prerequisite_skips_on_a_developers_machine(tmp_path: Path) -> None:
    result = run_probe(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout


def test_a_missing_prerequisite_fails_in_ci(tmp_path: Path) -> None:
    result = run_probe(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "prerequisites may not be skipped" in result.stdout
