"""gunicorn's own per-request Python, in-process: ``python -m devstack.perf.gunicorn_cpu``.

One keep-alive request at a time over a socket pair, through what a gunicorn worker runs
for each request (the HTTP/1 parser, the WSGI environ, ``pre_request``,
``start_response``, the write of a whole JSON answer) with this checkout's
``gunicorn.conf.py`` installed as its ``post_worker_init`` installs it (a sync worker's
settings: no psycopg patch); the application is a stub answering a status read's
headers and body, so only gunicorn's share is measured. Prints the thread CPU time per
request (user + system) of each round, and the best. To compare two checkouts, run it
from each in turn (``cd it && PYTHONPATH=. python /path/to/gunicorn_cpu.py``): it reads
``gunicorn.conf.py`` from the current directory.
"""

from __future__ import annotations

import argparse
import runpy
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn import http
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http import wsgi

REQUEST = (
    b"GET /api/checkout/ord_0123456789abcdef?wait=10&since=3 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\nX-Checkout-Token: 0123456789abcdef0123456789abcdef\r\n"
    b"Accept-Encoding: identity\r\nUser-Agent: Python-http.client\r\n\r\n"
)
BODY = b'{"state":"PENDING","payment":{"status":"requires_payment_method"}}\n'
PEER = ("127.0.0.1", 50000)
LISTENER = ("127.0.0.1", 8000)


def stub(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A status read's answer: its headers and a body of its size."""
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(BODY))),
        ("X-Content-Type-Options", "nosniff"),
    ]
    start_response("200 OK", headers)
    return [BODY]


class Worker:
    """What ``post_worker_init`` and ``pre_request`` read of a worker."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.log = Logger(cfg)


def requests(worker: Worker, n: int, client: socket.socket, server: socket.socket) -> float:
    """µs of this thread's CPU per request over ``n`` requests."""
    cfg = worker.cfg
    started = time.thread_time()
    for _ in range(n):
        client.sendall(REQUEST)
        request = next(http.get_parser(cfg, server, PEER))
        response, environ = wsgi.create(request, server, PEER, LISTENER, cfg)
        cfg.pre_request(worker, request)
        for chunk in stub(environ, response.start_response):
            response.write(chunk)
        response.close()
        client.recv(65536)
    return (time.thread_time() - started) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    """Measure and print each round and the best."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    cfg = Config()
    worker = Worker(cfg)
    runpy.run_path("gunicorn.conf.py")["post_worker_init"](worker)
    client, server = socket.socketpair()
    with client, server:
        requests(worker, args.n // 10, client, server)  # warm-up
        rounds = [requests(worker, args.n, client, server) for _ in range(args.rounds)]
    shown = ", ".join(f"{value:.1f}" for value in rounds)
    print(f"gunicorn per request: best {min(rounds):.1f} µs (rounds: {shown})")


if __name__ == "__main__":
    main()
