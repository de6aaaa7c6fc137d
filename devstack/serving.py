"""Small helpers shared by the devstack servers: free ports, readiness, Ctrl-C."""

from __future__ import annotations

import signal
import socket
import threading
import time
from types import FrameType

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port the kernel says is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts a TCP connection; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port}") from None
            time.sleep(0.05)


def wait_for_stop_signal() -> None:
    """Block (in the main thread) until SIGINT or SIGTERM arrives."""
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stop.wait()
