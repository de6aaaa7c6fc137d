"""Gunicorn settings for the Procfile's ``web`` line (gunicorn reads ./gunicorn.conf.py).

Prometheus multiprocess mode: every process (gunicorn workers, and Dramatiq workers
given the same ``PROMETHEUS_MULTIPROC_DIR``) writes its metrics to files in one
directory, and ``GET /metrics`` merges them, so a scrape sees the whole host rather than
one random worker. Unset, the directory is a fresh temp dir of this gunicorn (created
here, removed on exit); set, it is created if missing and the files of processes no
longer running are wiped at start.

prometheus_client picks its value store when first imported, from the environment:
this file must not import it at module level (the forked workers would inherit an
in-memory store), only inside the hooks that run after ``on_starting``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created: list[str] = []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wipe_stale(directory: Path) -> list[Path]:
    """Remove the ``<kind>_<pid>.db`` files of processes that no longer run."""
    removed = []
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if not pid.isdigit() or not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def on_starting(server: Any) -> None:
    """Before any worker forks: choose, create and clean the metrics directory."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        os.makedirs(directory, exist_ok=True)
        wipe_stale(Path(directory))
    else:
        directory = tempfile.mkdtemp(prefix="checkout-metrics-")
        _created.append(directory)
        os.environ[MULTIPROC_ENV] = directory  # inherited by the workers
    server.log.info("Prometheus multiprocess directory: %s", directory)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live-gauge files (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the directory this gunicorn created (never one it was given)."""
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    """Under the gevent worker, psycopg2 must yield to other greenlets while it waits."""
    if "gevent" in worker.cfg.worker_class_str:
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
