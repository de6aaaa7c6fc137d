"""/metrics under gunicorn with 2 workers (the repo's gunicorn.conf.py, as the Procfile
runs it): every scrape reports the requests of all workers, not one worker's share."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]

BATCH = 20
# Batches go on until both gunicorn workers have served some (the loop stops then). The
# bound is time, not a count: /readyz answers once one worker is up, and on a loaded box
# the second may still be importing the app while hundreds of requests go to the first
# (one took all of 200 once in CI, and a cap of 2,000 is a guess at the same thing).
BOTH_WORKERS_WITHIN_SECONDS = 120


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metrics")


@pytest.fixture(scope="module")
def metrics_stack(launch_stack: Callable[..., Stack], metrics_dir: Path) -> Stack:
    """Web only, 2 workers, sharing an explicit PROMETHEUS_MULTIPROC_DIR we can inspect."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        return launch_stack(web_workers=2, with_worker=False)


def _healthz_per_process(directory: Path) -> dict[str, float]:
    """Each process's own count of GET /healthz, from its counter file."""
    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in metric.samples:
                if (
                    sample.name == "checkout_http_requests_total"
                    and sample.labels.get("endpoint") == "/healthz"
                ):
                    pid = path.stem.rsplit("_", 1)[-1]
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


def _scraped_healthz(stack: Stack) -> float:
    text = requests.get(f"{stack.web}/metrics", headers={"Connection": "close"}, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "checkout_http_requests_total"
        and sample.labels.get("endpoint") == "/healthz"
    )


def _get(url: str) -> int:
    # A new connection per request, so the kernel spreads them over both workers.
    return requests.get(url, headers={"Connection": "close"}, timeout=10).status_code


class TestMetricsAcrossWorkers:
    def test_request_total_is_the_sum_over_workers(
        self, metrics_stack: Stack, metrics_dir: Path
    ) -> None:
        sent = 0
        deadline = time.monotonic() + BOTH_WORKERS_WITHIN_SECONDS
        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(_healthz_per_process(metrics_dir)) < 2 and time.monotonic() < deadline:
                codes = list(pool.map(_get, [f"{metrics_stack.web}/healthz"] * BATCH))
                assert codes == [200] * BATCH
                sent += BATCH
        per_process = _healthz_per_process(metrics_dir)
        assert len(per_process) == 2, per_process  # both workers served some
        assert sum(per_process.values()) == sent
        # Whichever worker answers the scrape, it reports all of them.
        for _ in range(6):
            assert _scraped_healthz(metrics_stack) == sent

    def test_procfile_default_without_the_variable(
        self, launch_stack: Callable[..., Stack]
    ) -> None:
        """Unset, gunicorn.conf.py makes the directory itself; the totals still add up."""
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
            stack = launch_stack(web_workers=2, with_worker=False)
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(_get, [f"{stack.web}/healthz"] * 60))
        assert codes == [200] * 60
        for _ in range(6):
            assert _scraped_healthz(stack) == 60
