"""/metrics in prometheus_client multiprocess mode: several processes, one total.

The mode is chosen when prometheus_client is first imported, so each process here is a
fresh interpreter started with ``PROMETHEUS_MULTIPROC_DIR`` in its environment.
"""

from __future__ import annotations

import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.api.observability import metrics_registry

ROOT = Path(__file__).resolve().parents[2]

# One process: n requests to /healthz through the real hooks and route, m webhook
# outcomes (as a Dramatiq worker would count them), and optionally a scrape to a file.
CHILD = """
import sys
from flask import Flask
from app.api import ops
from app.api.observability import install_request_hooks
from app.config import Config
from app.context import CONFIG_EXTENSION
from app.services.webhooks import WEBHOOK_RESULTS

requests, events, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
app = Flask("child")
app.extensions[CONFIG_EXTENSION] = Config()  # /metrics: no token, loopback only
install_request_hooks(app)
app.register_blueprint(ops.blueprint)
client = app.test_client()
for _ in range(requests):
    assert client.get("/healthz").status_code == 200
WEBHOOK_RESULTS.labels("payment_intent.succeeded", "processed").inc(events)
if out != "-":
    response = client.get("/metrics")
    assert response.status_code == 200
    open(out, "w").write(response.get_data(as_text=True))
"""


def _run(env: dict[str, str], requests: int, events: int, out: str = "-") -> None:
    subprocess.run(
        [sys.executable, "-c", CHILD, str(requests), str(events), out],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class TestMultiprocess:
    def test_counts_from_two_processes_add_up(self, tmp_path: Path) -> None:
        directory = tmp_path / "metrics"
        directory.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        out = tmp_path / "scrape.txt"
        _run(env, requests=3, events=2)
        _run(env, requests=4, events=5, out=str(out))
        text = out.read_text()
        assert len({p.stem.rsplit("_", 1)[-1] for p in directory.glob("*.db")}) == 2
        healthz = {"method": "GET", "endpoint": "/healthz", "status": "200"}
        assert _value(text, "checkout_http_requests_total", **healthz) == 7
        assert (
            _value(
                text,
                "checkout_http_request_duration_seconds_count",
                method="GET",
                endpoint="/healthz",
            )
            == 7
        )
        assert _value(text, "checkout_webhook_events_total", outcome="processed") == 7

    def test_without_the_variable_it_is_this_process_registry(self, monkeypatch: Any) -> None:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        assert metrics_registry() is REGISTRY


class TestGunicornConf:
    def _conf(self) -> dict[str, Any]:
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    @staticmethod
    def _server() -> Any:
        return SimpleNamespace(log=logging.getLogger("test.gunicorn"))

    def test_default_is_a_fresh_dir_removed_on_exit(self, monkeypatch: Any) -> None:
        # setenv first so that teardown restores the variable's absence after on_starting.
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
        conf = self._conf()
        conf["on_starting"](self._server())
        directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert directory.is_dir() and not any(directory.iterdir())
        conf["on_exit"](self._server())
        assert not directory.exists()

    def test_given_dir_is_created_and_dead_processes_files_wiped(
        self, tmp_path: Path, monkeypatch: Any
    ) -> None:
        directory = tmp_path / "shared"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
        conf = self._conf()
        conf["on_starting"](self._server())
        assert directory.is_dir()
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(timeout=30)
        stale, live = directory / f"counter_{dead.pid}.db", directory / f"counter_{os.getpid()}.db"
        stale.write_bytes(b"x")
        live.write_bytes(b"x")
        conf["on_starting"](self._server())
        assert not stale.exists() and live.exists()
        conf["on_exit"](self._server())
        assert directory.exists()  # given, never removed
