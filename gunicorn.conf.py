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

A whole answer (one body chunk, its ``Content-Length``: every JSON answer of ours) leaves
with its head in one send instead of two (``write_with_head``): the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
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
    if getattr(wsgi.Response.default_headers, "without_banner", False):
        return
    wsgi.Response.default_headers = head_lines(wsgi.Response.default_headers)


class HttpDate:
    """The ``Date`` header's value, formatted once a second (gunicorn's ``http_date``
    formats it for every response through ``email.utils.formatdate``)."""

    def __init__(self) -> None:
        self._second = (-1, "")

    def __call__(self) -> str:
        from gunicorn import util

        second = int(time.time())
        cached, value = self._second
        if cached != second:
            value = util.http_date(second)
            self._second = (second, value)  # one tuple: greenlets see one or the other
        return value


def head_lines(original: Any) -> Any:
    """gunicorn's ``Response.default_headers`` (the status line, ``Date``, ``Connection``,
    ``Transfer-Encoding``) without its ``Server`` line, the date formatted once a second.

    The same lines as ``original`` minus ``Server`` (tests/test_gunicorn_conf.py compares
    them case by case), without building the banner's line and filtering it out again.
    """
    date = HttpDate()

    def default_headers(self: Any) -> list[str]:
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        version = self.req.version
        lines = [
            f"HTTP/{version[0]}.{version[1]} {self.status}\r\n",
            f"Date: {date()}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        return lines

    default_headers.without_banner = True  # type: ignore[attr-defined]
    default_headers.original = original  # type: ignore[attr-defined]
    return default_headers


def freeze_settings(cfg: Any) -> None:
    """Every setting's value as a plain attribute of this worker's ``cfg``.

    gunicorn's ``Config.__getattr__`` looks a setting up in its table and calls the
    setting's ``get()`` on every read: about twenty reads per request (the parser's limits,
    the forwarded-header rules, the hooks). A worker's settings do not change once it runs
    (a reload forks new workers with a new ``cfg``), so each is read once here. Properties
    of ``Config`` (``is_ssl``, ``worker_class_str``) are looked up before the instance's
    attributes and stay as they are.
    """
    for name, setting in cfg.settings.items():
        cfg.__dict__[name] = setting.get()


def write_with_head(original: Any, response_class: type) -> Any:
    """gunicorn's ``Response.write``, sending the head with a body that is whole in one
    chunk (its ``Content-Length``) in one ``sendall``; any other write is ``original``.

    gunicorn writes the head, then each chunk: two sends per JSON answer, two TCP segments
    on the loopback, the client woken twice. Each send is a system call whose kernel side
    (the loopback's delivery, waking the reader) cost a web worker more CPU under wrk than
    any of our Python (py-spy under the submit's wrk load: the head's send 18.6 % of a
    worker's samples, the body's 2 %). Only gunicorn's own HTTP/1 ``response_class``:
    a subclass (HTTP/2's) frames its head and body itself.
    """

    def write(self: Any, data: Any) -> Any:
        whole = (
            type(self) is response_class
            and not self.headers_sent
            and not self.chunked
            # gunicorn 27's flag for HEAD/1xx/204/304; a version without it: its own write
            and not getattr(self, "_omits_body", True)
            and isinstance(data, bytes)
            and self.response_length == len(data)
        )
        if not whole:
            return original(self, data)
        lines = self.default_headers()
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        head = ("".join(lines) + "\r\n").encode("latin-1")
        self.headers_sent = True
        self.sent += len(data)
        self.sock.sendall(head + data)
        return None

    write.with_head = True  # type: ignore[attr-defined]
    return write


def install_single_send() -> None:
    """A whole JSON answer in one send (:func:`write_with_head`), once per process."""
    from gunicorn.http import wsgi

    if not getattr(wsgi.Response.write, "with_head", False):
        wsgi.Response.write = write_with_head(wsgi.Response.write, wsgi.Response)


def post_worker_init(worker: Any) -> None:
    """Install the JSON edge answers and the single send of a whole answer, freeze the
    worker's settings; under the gevent worker, psycopg2 must yield to other greenlets
    while it waits."""
    freeze_settings(worker.cfg)
    install_edge_answers()
    install_single_send()
    if "gevent" in worker.cfg.worker_class_str:
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
