"""Many long-polls at once without a thread each: raw sockets read with ``selectors``."""

from __future__ import annotations

import selectors
import socket
import time


class RawPoll:
    """One ``GET`` on a socket of its own, sent at once and read when it answers."""

    def __init__(self, host: str, port: int, path: str, token: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setblocking(False)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Checkout-Token: {token}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.data = b""
        self.done = False

    def read(self) -> None:
        """Take what has arrived; ``done`` once the server closed the connection."""
        chunk = self.sock.recv(65536)
        if chunk:
            self.data += chunk
        else:
            self.done = True

    @property
    def status(self) -> int:
        """The HTTP status (0 before an answer)."""
        return int(self.data.split(b" ", 2)[1]) if self.data else 0

    @property
    def body(self) -> bytes:
        """The response body received so far."""
        return self.data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.data else b""

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def answered_any(polls: list[RawPoll]) -> bool:
    """Whether any poll has been answered yet (looked at without blocking)."""
    for poll in polls:
        try:
            poll.read()
        except BlockingIOError:
            continue
    return any(poll.data for poll in polls)


def drain(polls: list[RawPoll], until: float) -> None:
    """Read every poll until the server has closed each (or ``until``, monotonic)."""
    selector = selectors.DefaultSelector()
    for poll in polls:
        if not poll.done:
            selector.register(poll.sock, selectors.EVENT_READ, poll)
    while selector.get_map() and time.monotonic() < until:
        for key, _ in selector.select(timeout=0.5):
            ready: RawPoll = key.data
            ready.read()
            if ready.done:
                selector.unregister(ready.sock)
    selector.close()
