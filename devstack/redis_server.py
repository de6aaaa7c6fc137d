"""An embedded Redis-protocol server for machines without Redis (``make demo``).

It is fakeredis's TCP server (``fakeredis.TcpFakeServer``) running on a background
thread: real RESP over TCP, Lua through lupa (dramatiq's broker scripts and ours),
pub/sub for the checkout long-poll. Data lives in memory and dies with the process.

Run on its own: ``python -m devstack.redis_server --port 6390``.
"""

from __future__ import annotations

import argparse
import select
import threading

import fakeredis
from fakeredis._clients._tcp_server import TCPFakeRequestHandler

from devstack.serving import wait_for_port, wait_for_stop_signal

# How long the handler waits on its socket before checking for pushed replies
# (pub/sub messages); it bounds the latency of a published message.
_POLL_INTERVAL = 0.01


class _RequestHandler(TCPFakeRequestHandler):
    """fakeredis's handler, except that an error reply keeps the connection open.

    The stock handler closes the connection after any error reply. Real Redis does
    not, and redis-py relies on that: ``EVALSHA`` → ``NOSCRIPT`` → ``SCRIPT LOAD`` on
    the same connection is how dramatiq's broker and every registered Lua script start.
    """

    def handle(self) -> None:
        """Relay commands to the fake server and write every reply, errors included."""
        while not self.server._shutdown_event.is_set():
            try:
                if self.current_client.can_read():
                    # Take the raw reply: read_response() would raise error replies.
                    responses = self.current_client.get_socket().responses
                    assert responses is not None  # set while the connection is open
                    self.writer.dump(responses.get())
                    continue
                data = self.rfile.readline()
                if data == b"":
                    readable, _, _ = select.select([self.connection], [], [], _POLL_INTERVAL)
                    if not readable:
                        continue
                    data = self.rfile.readline()
                    if data == b"":
                        break  # readable yet empty: the peer closed
                self.current_client.get_socket().sendall(data)
            except (ConnectionError, OSError):
                break


class EmbeddedRedis:
    """A fakeredis TCP server on ``host:port`` (port 0 picks a free one), on a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = fakeredis.TcpFakeServer((host, port), server_version=(7, 4))
        self._server.RequestHandlerClass = _RequestHandler
        # Handler threads must not keep the process alive after shutdown.
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL clients connect to."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Serve on a daemon thread and return once the port accepts connections."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-redis", daemon=True
        )
        self._thread.start()
        wait_for_port(self.host, self.port, timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the embedded server in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6390)
    args = parser.parse_args(argv)
    server = EmbeddedRedis(args.host, args.port).start()
    print(f"embedded Redis listening on {server.url}", flush=True)
    wait_for_stop_signal()
    server.stop()


if __name__ == "__main__":
    main()
