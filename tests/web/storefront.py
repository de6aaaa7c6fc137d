"""The React storefront example (``examples/react-shop``) for the browser tests: its
dependencies from the lock file, a production build against this session's stack (after
the browser client it links, ``clients/js``), and a static server for ``dist/`` on
127.0.0.1.

``npm ci`` runs only when the package files changed since the last install, and the
build only when its inputs (sources, lock file, the ``VITE_*`` values) changed since
the last build: a second run against the same stack reuses ``dist/``. Without Node the
suite is skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.clients import js_package

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "react-shop"
DIST = SHOP / "dist"
# What a build reads besides node_modules (which the lock file pins).
BUILD_INPUTS = (
    "index.html",
    "vite.config.js",
    "package.json",
    "package-lock.json",
    "src",
    "public",
)
# Written after `npm ci`, as `make react-shop-deps` (which .ci/run calls) writes it.
INSTALL_STAMP = SHOP / "node_modules" / ".installed"
BUILD_STAMP = DIST / ".build-key"


def require_node() -> str:
    """The npm executable; skip without Node, but fail in CI (CI=true)."""
    npm = shutil.which("npm")
    if npm and shutil.which("node"):
        return npm
    message = "Node.js/npm not found: the React storefront suite needs them (see .ci/run)"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _sha256(paths: list[Path], extra: Mapping[str, str] | None = None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for key, value in sorted((extra or {}).items()):
        digest.update(f"{key}={value}\0".encode())
    return digest.hexdigest()


def _input_files() -> list[Path]:
    files: list[Path] = []
    for name in BUILD_INPUTS:
        path = SHOP / name
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files + js_package.input_files()  # the client it links is built into it


def _installed() -> bool:
    """True when node_modules was installed after the last change of the package files."""
    if not INSTALL_STAMP.exists():
        return False
    newest = max((SHOP / name).stat().st_mtime for name in ("package.json", "package-lock.json"))
    return INSTALL_STAMP.stat().st_mtime >= newest


def _run(argv: list[str], env: Mapping[str, str]) -> None:
    done = subprocess.run(argv, cwd=SHOP, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


@contextmanager
def _build_lock() -> Iterator[None]:
    """One install/build at a time for this checkout (two pytest runs may share it)."""
    name = hashlib.sha256(str(SHOP).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"react-shop-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(npm: str, settings: Mapping[str, str]) -> Path:
    """``npm ci`` (if the package files changed) and ``vite build`` (if any input changed)."""
    js_package.build(npm)  # the example imports the client's dist/
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITE_")}
    env.update(settings)
    with _build_lock():
        if not _installed():
            _run([npm, "ci", "--no-audit", "--no-fund"], env)
            INSTALL_STAMP.touch()
        key = _sha256(_input_files(), settings)
        if not BUILD_STAMP.exists() or BUILD_STAMP.read_text() != key:
            _run([npm, "run", "build"], env)
            BUILD_STAMP.write_text(key)
    return DIST


class _SinglePageHandler(SimpleHTTPRequestHandler):
    """Files from dist/; any other path gets index.html (the app routes in the browser)."""

    def send_head(self) -> Any:
        if not Path(self.translate_path(self.path)).is_file():
            self.path = "/index.html"
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(directory: Path, port: int) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1:``port`` in a thread; yields the origin."""
    handler = functools.partial(_SinglePageHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="react-shop", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
