"""A small HTTP/1.1 keep-alive WSGI server: what ``EmulatorServer`` runs the app on.

Werkzeug's development server answers every request with ``Connection: close`` (Python's
``http.server`` cannot drain a request body it did not read, so Werkzeug never reuses a
connection). Every SDK call then pays a TCP handshake, a new thread, and a status line and
headers written one ``send`` at a time: about 3.5 ms of the emulator's 5.2 ms of CPU per
create+confirm pair. This server keeps the per-request work small:

* one thread per *connection*, which serves requests until the client closes it, asks
  for ``Connection: close``, or stays idle for ``IDLE_TIMEOUT`` seconds;
* the request body is read whole before the app runs (bodies here are small form posts),
  so the next request line is always where the connection's reader stands, and an app
  that ignores a body cannot desynchronise the connection;
* the response (status line, headers, body) leaves in one ``sendall``, always framed by
  ``Content-Length``, which the server adds when the app did not;
* ``Expect: 100-continue`` and chunked request bodies are honoured; anything malformed
  gets a 400 and a closed connection.

It is not a general-purpose server: no TLS, no pipelining guarantees beyond
sequential requests on one connection, no streaming responses (bodies are collected
before sending, which suits JSON and the Stripe.js stand-in's few small files).
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

IDLE_TIMEOUT = 120.0  # seconds a kept-alive connection may sit idle
MAX_LINE = 65536  # request line or one header line
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
SERVER_SOFTWARE = "stripe-emulator"
NO_BODY_STATUSES = frozenset({204, 304})


class BadRequest(Exception):
    """The request cannot be parsed; answered with ``status`` and a closed connection."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class _DateHeader:
    """``Date: …`` for the current second, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = f"Date: {formatdate(now, usegmt=True)}\r\n"
            self._second = now
        return self._value


_date = _DateHeader()


class KeepAliveWSGIServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A listening socket that hands each accepted connection to a daemon thread."""

    daemon_threads = True
    block_on_close = False  # stop() closes the open connections itself, see close_all()
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: WSGIApp, *, access_log: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.access_log = access_log
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), _ConnectionHandler)

    @property
    def port(self) -> int:
        """The bound port (useful when binding port 0)."""
        return int(self.server_address[1])

    def track(self, sock: socket.socket, alive: bool) -> None:
        """Remember (or forget) an open connection, so close_all() can reach it."""
        with self._open_lock:
            if alive:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def close_all(self) -> None:
        """Shut down every open connection; their threads then see EOF and end."""
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection's thread failed outside a request: log it, keep serving."""
        log.exception("stripe emulator: connection from %s failed", client_address)


class _ConnectionHandler(socketserver.BaseRequestHandler):
    """Serves the requests of one connection, in order, until it closes."""

    server: KeepAliveWSGIServer
    request: socket.socket

    def handle(self) -> None:
        """Read requests until the connection closes or asks to."""
        sock = self.request
        self.server.track(sock, True)
        try:
            with contextlib.suppress(OSError):
                # Responses leave in one write, but a 100 Continue precedes them.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(IDLE_TIMEOUT)
            host, port = self.server.server_address[:2]
            self.base_environ: dict[str, Any] = {
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "SERVER_SOFTWARE": SERVER_SOFTWARE,
                "SCRIPT_NAME": "",
                "REMOTE_ADDR": str(self.client_address[0]),
                "REMOTE_PORT": int(self.client_address[1]),
                "SERVER_NAME": str(host),
                "SERVER_PORT": str(port),
            }
            with cast(BinaryIO, sock.makefile("rb", 65536)) as rfile:
                while self._serve_one(rfile):
                    pass
        except OSError:
            pass  # reset, timed out, or shut down by close_all(): the connection is over
        finally:
            self.server.track(sock, False)

    # --- one request ---------------------------------------------------------------

    def _serve_one(self, rfile: BinaryIO) -> bool:
        """Serve one request; False when the connection should close."""
        try:
            request = self._read_request(rfile)
        except BadRequest as exc:
            self._send_plain(exc.status)
            return False
        if request is None:
            return False
        environ, keep_alive = request
        status, headers, body = self._call_app(environ)
        if status is None:
            self._send_plain("500 Internal Server Error")
            return False
        self._send(environ, status, headers, body, keep_alive)
        return keep_alive

    def _read_request(self, rfile: BinaryIO) -> tuple[dict[str, Any], bool] | None:
        """The next request's WSGI environ and whether to keep the connection; None at EOF."""
        line = rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # tolerate blank lines between requests (RFC 9112)
            line = rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_LINE:
            raise BadRequest("414 URI Too Long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            raise BadRequest("400 Bad Request")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest("505 HTTP Version Not Supported")

        environ = self.base_environ.copy()
        self._read_headers(rfile, environ)

        # The target: origin form (/path?query), or absolute form whose host wins.
        if target.startswith(("http://", "https://")):
            url = urlsplit(target)
            environ["HTTP_HOST"] = url.netloc
            path, query = url.path, url.query
        else:
            path, _, query = target.partition("?")
        # As Werkzeug does: percent-decoded UTF-8, carried in a latin-1 str (PEP 3333).
        if "%" in path or not path.isascii():
            path = unquote(path).encode().decode("latin-1")
        if not query.isascii():
            query = query.encode().decode("latin-1")
        environ["REQUEST_METHOD"] = method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = query
        environ["REQUEST_URI"] = environ["RAW_URI"] = target
        environ["SERVER_PROTOCOL"] = version

        connection = environ.get("HTTP_CONNECTION", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection

        environ["wsgi.input"] = io.BytesIO(self._read_body(rfile, environ, version))
        return environ, keep_alive

    @staticmethod
    def _read_headers(rfile: BinaryIO, environ: dict[str, Any]) -> None:
        """Header lines into ``HTTP_*`` keys (repeated headers joined with commas)."""
        for _ in range(MAX_HEADERS + 1):
            line = rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return
            if not line:
                raise OSError("connection closed inside the headers")
            if len(line) > MAX_LINE:
                raise BadRequest("431 Request Header Fields Too Large")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip() or line[0] in b" \t":
                raise BadRequest("400 Bad Request")  # incl. obsolete line folding
            if "_" in name:
                continue  # as Werkzeug: X_Foo would collide with X-Foo in the environ
            key = name.upper().replace("-", "_")
            value = value.strip()
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
                if key in environ:
                    value = f"{environ[key]},{value}"
            environ[key] = value
        raise BadRequest("431 Request Header Fields Too Large")

    def _read_body(self, rfile: BinaryIO, environ: dict[str, Any], version: str) -> bytes:
        """The whole request body (de-chunked); CONTENT_LENGTH is set to its length."""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length_header = environ.get("CONTENT_LENGTH", "")
        if not chunked and not length_header:
            return b""
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue" and version == "HTTP/1.1":
            self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            body = _read_chunked(rfile)
            # The app sees a plain body of known length.
            del environ["HTTP_TRANSFER_ENCODING"]
        else:
            if not length_header.isdigit():
                raise BadRequest("400 Bad Request")
            length = int(length_header)
            if length > MAX_BODY:
                raise BadRequest("413 Content Too Large")
            body = rfile.read(length)
            if len(body) < length:
                raise OSError("connection closed inside the body")
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def _call_app(
        self, environ: dict[str, Any]
    ) -> tuple[str | None, list[tuple[str, str]], list[bytes]]:
        """Run the app; its status, headers and body chunks (status None if it raised)."""
        response: list[Any] = [None, []]
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is None and response[0] is not None:
                raise AssertionError("start_response called twice")
            response[0], response[1] = status, headers
            return chunks.append  # WSGI's legacy write(): collected like the body

        try:
            result = self.server.app(environ, start_response)
            try:
                for data in result:
                    if data:
                        chunks.append(data)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("stripe emulator: the WSGI app failed")
            return None, [], []
        return response[0], response[1], chunks

    # --- writing -------------------------------------------------------------------

    def _send(
        self,
        environ: dict[str, Any],
        status: str,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        keep_alive: bool,
    ) -> None:
        """Status line, headers and body in one write."""
        code = int(status[:3])
        body = b"".join(chunks)
        lines = [f"HTTP/1.1 {status}\r\nServer: {SERVER_SOFTWARE}\r\n"]
        has_length = has_date = False
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                has_length = True
            elif lower == "date":
                has_date = True
            elif lower in ("connection", "transfer-encoding", "keep-alive"):
                continue  # hop-by-hop: this server frames and manages the connection
            lines.append(f"{name}: {value}\r\n")
        bodiless = environ["REQUEST_METHOD"] == "HEAD" or code in NO_BODY_STATUSES or code < 200
        if not has_length and not bodiless:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if not has_date:
            lines.append(_date.get())
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif environ["SERVER_PROTOCOL"] == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        self.request.sendall(head if bodiless else head + body)
        if self.server.access_log:
            log.info(
                '%s "%s %s %s" %s %s',
                environ["REMOTE_ADDR"],
                environ["REQUEST_METHOD"],
                environ["REQUEST_URI"],
                environ["SERVER_PROTOCOL"],
                code,
                len(body),
            )

    def _send_plain(self, status: str) -> None:
        """A bodiless error answer that closes the connection."""
        with contextlib.suppress(OSError):
            self.request.sendall(
                f"HTTP/1.1 {status}\r\n{_date.get()}Content-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
            )


def _read_chunked(rfile: BinaryIO) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, trailers skipped."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = rfile.readline(MAX_LINE + 1)
        if not size_line:
            raise OSError("connection closed inside a chunked body")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("400 Bad Request") from None
        total += size
        if total > MAX_BODY:
            raise BadRequest("413 Content Too Large")
        if size == 0:
            break
        data = rfile.read(size)
        if len(data) < size or rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n"):
            raise BadRequest("400 Bad Request")
        parts.append(data)
    for _ in range(MAX_HEADERS + 1):  # trailers, up to the blank line
        line = rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n", b""):
            return b"".join(parts)
    raise BadRequest("431 Request Header Fields Too Large")
