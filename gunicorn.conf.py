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

gunicorn's own answers: a request it cannot read (bad framing 400, a request line over
``limit_request_line`` 414, too many or too long headers 431) is answered by gunicorn
before the app runs, as an HTML page echoing what was wrong (a card number sent as the
method, even) and ``Server: gunicorn``. Each worker replaces that writer
(``gunicorn.util.write_error``, which every worker class's ``handle_error`` calls) with
the JSON error contract of ``app.errors``, and drops the ``Server`` line gunicorn puts on
every response (a banner tells a scanner which parser's bugs to try).
"""

from __future__ import annotations

import json
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


def edge_error_body(status: int) -> bytes:
    """The JSON error body for a status gunicorn answers itself (never its message)."""
    from app import errors

    kinds: dict[int, type[errors.ServiceError]] = {
        400: errors.MalformedRequest,
        403: errors.Forbidden,
        414: errors.UriTooLong,
        431: errors.HeaderFieldsTooLarge,
    }
    kind = kinds.get(status, errors.MalformedRequest if status < 500 else errors.ServiceError)
    messages = {
        errors.MalformedRequest: "The request is not valid HTTP.",
        errors.Forbidden: "The request is forbidden.",
        errors.UriTooLong: "The request line is too long.",
        errors.HeaderFieldsTooLarge: "The request has too many or too long headers.",
    }
    error = kind(messages.get(kind, "Internal server error."))
    return json.dumps(error.body(), separators=(",", ":")).encode()


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's stand-in: the same status line, a JSON body.

    ``mesg`` is gunicorn's description of the bad input and quotes it (a request line, a
    header name): never echoed, as I6 wants of anything a client sends.
    """
    from gunicorn import util

    body = edge_error_body(status_int)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install_edge_answers() -> None:
    """JSON for gunicorn's own error answers, and no ``Server`` banner on any response."""
    from gunicorn import util
    from gunicorn.http import wsgi

    util.write_error = write_json_error
    original = wsgi.Response.default_headers
    if getattr(original, "without_banner", False):
        return

    def default_headers(self: Any) -> list[str]:
        return [line for line in original(self) if not line.startswith("Server:")]

    default_headers.without_banner = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = default_headers


def post_worker_init(worker: Any) -> None:
    """Install the JSON edge answers; under the gevent worker, psycopg2 must yield to
    other greenlets while it waits."""
    install_edge_answers()
    if "gevent" in worker.cfg.worker_class_str:
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
