"""The browser client (``clients/js``) for the tests: its dependencies from the lock file,
its build (``dist/``, which the React example links), and npm scripts run in it.

``npm ci`` runs only when the package files changed since the last install (the stamp is
the one ``make js-client-deps`` writes), the build only when a source changed. Without
Node the callers skip, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"
SCHEMA = CLIENT / "src" / "schema.ts"
INSTALL_STAMP = CLIENT / "node_modules" / ".installed"
# Beside the install stamp, not in dist/ (which `npm pack` ships).
BUILD_STAMP = CLIENT / "node_modules" / ".build-key"
# What the build reads besides node_modules.
BUILD_INPUTS = ("package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src")


def require_node() -> str:
    """The npm executable; skip without Node, but fail in CI (CI=true)."""
    npm = shutil.which("npm")
    if npm and shutil.which("node"):
        return npm
    message = "Node.js/npm not found: the browser client's suite needs them (see .ci/run)"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def run(argv: Sequence[str], cwd: Path = CLIENT, env: Mapping[str, str] | None = None) -> str:
    """Run a command; its output, or RuntimeError with the output's tail."""
    done = subprocess.run(
        list(argv), cwd=cwd, env=dict(env or os.environ), capture_output=True, text=True
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{output[-4000:]}")
    return output


@contextmanager
def _lock() -> Iterator[None]:
    """One install/build at a time for this checkout (two pytest runs may share it)."""
    name = hashlib.sha256(str(CLIENT).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"js-client-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _installed() -> bool:
    if not INSTALL_STAMP.exists():
        return False
    newest = max((CLIENT / name).stat().st_mtime for name in ("package.json", "package-lock.json"))
    return INSTALL_STAMP.stat().st_mtime >= newest


def input_files() -> list[Path]:
    """The files the build reads (the React example's build key includes them too)."""
    files: list[Path] = []
    for name in BUILD_INPUTS:
        path = CLIENT / name
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def install(npm: str) -> None:
    """``npm ci`` when the package files changed since the last install."""
    with _lock():
        if not _installed():
            run([npm, "ci", "--no-audit", "--no-fund"])
            INSTALL_STAMP.touch()


def build(npm: str) -> Path:
    """Install, then ``npm run build`` (tsc → dist/) when a source changed; dist/."""
    install(npm)
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(str(path.relative_to(CLIENT)).encode() + b"\0" + path.read_bytes() + b"\0")
    key = digest.hexdigest()
    with _lock():
        if not BUILD_STAMP.exists() or BUILD_STAMP.read_text() != key:
            run([npm, "run", "build"])
            BUILD_STAMP.write_text(key)
    return CLIENT / "dist"


def npx(npm: str, *args: str) -> str:
    """A tool from the client's node_modules/.bin (installed first)."""
    install(npm)
    tool = CLIENT / "node_modules" / ".bin" / args[0]
    return run([str(tool), *args[1:]])
